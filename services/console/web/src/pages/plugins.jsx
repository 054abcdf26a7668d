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
      <p class="hint">Built-in enrichers run in the ETL when a pipeline enables them; custom plugins are WebAssembly components (docs/plugins.md) that run after them, in a sandbox.</p>
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
                <td>
                  {plugin.built_in ? '' : plugin.module_sha256 ? <code title={plugin.module_uri}>{plugin.module_sha256.slice(0, 12)}</code> : (plugin.module_uri ? <code>{plugin.module_uri}</code> : <em>no module yet</em>)}
                  {canOperate && !plugin.built_in && <ModuleUpload id={plugin.id} onUploaded={plugins.reload} onError={setError} />}
                </td>
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

/** Uploads a module (a .wasm component) for a plugin; the server checks it before keeping it. */
function ModuleUpload({ id, onUploaded, onError }) {
  const [busy, setBusy] = useState(false);
  const upload = async (event) => {
    // Kept now: the event's currentTarget is gone once the handler awaits.
    const input = event.currentTarget;
    const file = input.files[0];
    if (!file) return;
    setBusy(true);
    onError(null);
    try {
      await api('PUT', `/plugins/${seg(id)}/module`, file);
      onUploaded();
    } catch (failure) {
      onError(failure); // e.g. 400: not a component, or not the plugin's world
    } finally {
      setBusy(false);
      input.value = '';
    }
  };
  return (
    <label class="upload">
      {' '}Upload .wasm
      <input type="file" id={`upload-module-${id}`} accept=".wasm,application/wasm" disabled={busy} onChange={upload} />
    </label>
  );
}

const PLUGIN_FIELDS = ['id', 'name', 'description', 'kind', 'module_uri', 'config'];

function NewPluginForm({ onCreated }) {
  const empty = { id: '', name: '', kind: 'enrichment', module_uri: '', config: '', description: '' };
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
          <option value="enrichment">enrichment</option>
          <option value="transformer">transformer</option>
        </select>
      </Field>
      <Field label="Module path on the workers (optional)" id="new-plugin-module-uri" error={form.errors.module_uri} hint="Leave empty and upload the .wasm once the plugin exists, or give file:///path/to/plugin.wasm.">
        <input id="new-plugin-module-uri" {...form.bind('module_uri')} />
      </Field>
      <Field label="Configuration" id="new-plugin-config" error={form.errors.config} hint="Text handed to the plugin with every batch.">
        <textarea id="new-plugin-config" {...form.bind('config')} />
      </Field>
      <Field label="Description" id="new-plugin-description" error={form.errors.description}>
        <input id="new-plugin-description" {...form.bind('description')} />
      </Field>
      <ErrorBox error={error} id="new-plugin-error" />
      <button type="submit" id="create-plugin" disabled={busy}>Create plugin</button>
    </form>
  );
}
