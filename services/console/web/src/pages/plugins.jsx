// `/plugins`: built-in enrichers and custom plugins; operators add and delete custom ones.
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { ConfirmButton, ErrorBox, Field, splitFieldErrors, useApi, useForm, useSession } from '../ui.jsx';
import { pluginIdError } from '../validate.js';

export function PluginsPage() {
  const { canOperate } = useSession();
  const plugins = useApi('/plugins');
  const [error, setError] = useState(null);

  const remove = async (id) => {
    setError(null);
    try {
      await api('DELETE', `/plugins/${seg(id)}`);
      plugins.reload();
    } catch (failure) {
      setError(failure); // e.g. 409 for a built-in, or a plugin a pipeline uses
    }
  };

  const list = plugins.data || [];
  return (
    <section>
      <h1>Plugins</h1>
      <p class="hint">Built-in enrichers run in the ETL when a pipeline enables them; custom plugins are modules the ETL loads.</p>
      <ErrorBox error={plugins.error} />
      <ErrorBox error={error} />
      {plugins.loading ? <p>Loading…</p> : (
        <table id="plugins">
          <thead><tr><th>Id</th><th>Name</th><th>Kind</th><th>Module</th><th>Description</th><th /></tr></thead>
          <tbody>
            {list.map((plugin) => (
              <tr key={plugin.id} data-plugin-id={plugin.id}>
                <td><code>{plugin.id}</code></td>
                <td>{plugin.name}</td>
                <td>{plugin.kind}{plugin.built_in ? ' (built-in)' : ''}</td>
                <td><code>{plugin.module_uri || ''}</code></td>
                <td>{plugin.description}</td>
                <td>
                  {canOperate && !plugin.built_in && (
                    <ConfirmButton id={`delete-plugin-${plugin.id}`} label="Delete" question={`Delete ${plugin.id}?`} onConfirm={() => remove(plugin.id)} />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canOperate && <NewPluginForm onCreated={plugins.reload} />}
    </section>
  );
}

const PLUGIN_FIELDS = ['id', 'name', 'description', 'kind', 'module_uri'];

function NewPluginForm({ onCreated }) {
  const empty = { id: '', name: '', kind: 'transformer', module_uri: '', description: '' };
  const form = useForm(empty);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    const id = form.values.id.trim();
    const problems = {};
    const idProblem = pluginIdError(id);
    if (idProblem) problems.id = idProblem;
    if (!form.values.module_uri.trim()) problems.module_uri = 'Enter where the module is, e.g. s3://bucket/plugins/my.wasm.';
    if (Object.keys(problems).length > 0) {
      form.setErrors(problems);
      return;
    }
    setBusy(true);
    try {
      const body = { ...form.values, id, name: form.values.name.trim() || id, module_uri: form.values.module_uri.trim() };
      await api('POST', '/plugins', body);
      form.setValues(empty);
      onCreated();
    } catch (failure) {
      const fields = splitFieldErrors(failure, PLUGIN_FIELDS);
      if (failure.status === 409) fields.id = failure.message;
      form.setErrors(fields);
      // A 409 (the id is taken) is said next to the id; anything else in the box.
      if (failure.status !== 409) setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="new-plugin-form" class="card" onSubmit={submit} noValidate>
      <h2>New custom plugin</h2>
      <Field label="Id" id="new-plugin-id" error={form.errors.id}>
        <input id="new-plugin-id" {...form.bind('id')} autocomplete="off" />
      </Field>
      <Field label="Name" id="new-plugin-name" error={form.errors.name}>
        <input id="new-plugin-name" {...form.bind('name')} />
      </Field>
      <Field label="Kind" id="new-plugin-kind" error={form.errors.kind}>
        <select id="new-plugin-kind" {...form.bind('kind')}>
          <option value="transformer">transformer</option>
          <option value="enrichment">enrichment</option>
        </select>
      </Field>
      <Field label="Module URI" id="new-plugin-module-uri" error={form.errors.module_uri} hint="An s3://, file:// or https:// URL of the plugin's module.">
        <input id="new-plugin-module-uri" {...form.bind('module_uri')} />
      </Field>
      <Field label="Description" id="new-plugin-description" error={form.errors.description}>
        <input id="new-plugin-description" {...form.bind('description')} />
      </Field>
      <ErrorBox error={error} id="new-plugin-error" />
      <button type="submit" id="create-plugin" disabled={busy}>Create plugin</button>
    </form>
  );
}
