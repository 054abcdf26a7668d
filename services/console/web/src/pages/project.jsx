// `/projects/{id}`: one project, its apps (+ "New app"), and its pipeline.
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { ConfirmButton, ErrorBox, Field, splitFieldErrors, useApi, useForm, useSession, When } from '../ui.jsx';
import { appIdError, timezoneError } from '../validate.js';

export const PLATFORMS = ['web', 'android', 'ios', 'flutter', 'react_native', 'wechat_miniprogram'];

export function ProjectPage({ projectId }) {
  const { canOperate, canAdmin } = useSession();
  const project = useApi(`/projects/${seg(projectId)}`);
  const apps = useApi(`/projects/${seg(projectId)}/apps`);
  const [deleteError, setDeleteError] = useState(null);

  if (project.loading) return <p>Loading…</p>;
  if (!project.data) return <ErrorBox error={project.error} />;
  const p = project.data;

  const deleteProject = async () => {
    setDeleteError(null);
    try {
      await api('DELETE', `/projects/${seg(projectId)}`);
      navigate('/');
    } catch (failure) {
      setDeleteError(failure); // 409 while a pipeline exists, 403 for non-admins
    }
  };

  return (
    <section>
      <p class="crumbs"><Link href="/">Projects</Link> / {p.id}</p>
      <h1 id="project-title">{p.name || p.id}</h1>
      <dl class="facts">
        <dt>Id</dt><dd id="project-id-value">{p.id}</dd>
        <dt>Environment</dt><dd>{p.environment}</dd>
        <dt>Description</dt><dd>{p.description || '—'}</dd>
        <dt>Created</dt><dd><When value={p.created_at} /></dd>
      </dl>
      {canAdmin && (
        <p>
          <ConfirmButton id="delete-project" label="Delete project" question="Delete this project and its apps?" onConfirm={deleteProject} />
        </p>
      )}
      <ErrorBox error={deleteError} />

      <PipelineSection projectId={p.id} />

      <h2>Apps</h2>
      <ErrorBox error={apps.error} />
      {apps.loading ? <p>Loading…</p> : <AppTable apps={apps.data || []} />}
      {canOperate && <NewAppForm projectId={p.id} onCreated={apps.reload} />}
    </section>
  );
}

/** The project's pipeline (one per project, id `pipeline-<project>`), or a way to create it. */
function PipelineSection({ projectId }) {
  const { canOperate } = useSession();
  const pipeline = useApi(`/pipelines/pipeline-${seg(projectId)}`);
  if (pipeline.loading) return <div class="card"><h2>Pipeline</h2><p>Loading…</p></div>;
  const missing = pipeline.error && pipeline.error.status === 404;
  const data = pipeline.data;
  const phase = data && data.status && data.status.phase;
  return (
    <div class="card" id="pipeline-section">
      <h2>Pipeline</h2>
      {pipeline.error && !missing && <ErrorBox error={pipeline.error} />}
      {data && (
        <p>
          <Link id="pipeline-link" href={`/pipelines/${encodeURIComponent(data.id)}`}>{data.id}</Link>{' '}
          <span class={`phase phase-${phase}`}>{phase}</span>
        </p>
      )}
      {(missing || phase === 'deleted') && (
        <div>
          {missing && <p class="empty">This project has no pipeline yet: events are collected but not processed.</p>}
          {canOperate && (
            <button type="button" id="create-pipeline" onClick={() => navigate(`/pipelines/new?project=${encodeURIComponent(projectId)}`)}>
              Create pipeline
            </button>
          )}
        </div>
      )}
    </div>
  );
}

function AppTable({ apps }) {
  if (apps.length === 0) return <p class="empty" id="no-apps">No apps yet.</p>;
  return (
    <table id="apps">
      <thead><tr><th>App id</th><th>Name</th><th>Platform</th><th>Time zone</th><th>Endpoint</th></tr></thead>
      <tbody>
        {apps.map((app) => (
          <tr key={app.id} data-app-id={app.id}>
            <td><Link href={`/apps/${encodeURIComponent(app.id)}`}>{app.id}</Link></td>
            <td>{app.name}</td>
            <td>{app.platform}</td>
            <td>{app.timezone}</td>
            <td><code>{app.endpoint}</code></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The browser's time zone, the natural default for a new app. */
function browserTimezone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Every IANA name the browser knows, for the time zone suggestions. */
function knownTimezones() {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return [];
  }
}

const APP_FIELDS = ['id', 'name', 'description', 'platform', 'timezone'];

function NewAppForm({ projectId, onCreated }) {
  const empty = { id: '', name: '', description: '', platform: 'web', timezone: browserTimezone() };
  const form = useForm(empty);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    setCreated(null);
    const id = form.values.id.trim();
    const timezone = form.values.timezone.trim();
    const problems = {};
    const idProblem = appIdError(id);
    if (idProblem) problems.id = idProblem;
    const timezoneProblem = timezoneError(timezone);
    if (timezoneProblem) problems.timezone = timezoneProblem;
    if (Object.keys(problems).length > 0) {
      form.setErrors(problems);
      return;
    }
    setBusy(true);
    try {
      const body = { ...form.values, id, timezone, name: form.values.name.trim() || id };
      const app = await api('POST', `/projects/${seg(projectId)}/apps`, body);
      setCreated(app);
      form.setValues(empty);
      onCreated();
    } catch (failure) {
      const fields = splitFieldErrors(failure, APP_FIELDS);
      if (failure.status === 409) fields.id = failure.message; // app ids are unique across projects
      form.setErrors(fields);
      // A 409 (the id is taken) is said next to the id; anything else in the box.
      if (failure.status !== 409) setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="new-app-form" class="card" onSubmit={submit} noValidate>
      <h2>New app</h2>
      <Field label="App id" id="new-app-id" error={form.errors.id} hint="The SDK's appId: letters, digits and _, starting with a letter; unique across projects.">
        <input id="new-app-id" {...form.bind('id')} autocomplete="off" maxLength={127} />
      </Field>
      <Field label="Name" id="new-app-name" error={form.errors.name}>
        <input id="new-app-name" {...form.bind('name')} />
      </Field>
      <Field label="Description" id="new-app-description" error={form.errors.description}>
        <input id="new-app-description" {...form.bind('description')} />
      </Field>
      <Field label="Platform" id="new-app-platform" error={form.errors.platform}>
        <select id="new-app-platform" {...form.bind('platform')}>
          {PLATFORMS.map((platform) => <option key={platform} value={platform}>{platform}</option>)}
        </select>
      </Field>
      <Field label="Time zone" id="new-app-timezone" error={form.errors.timezone} hint="IANA name; days in reports follow it.">
        <input id="new-app-timezone" list="timezones" {...form.bind('timezone')} autocomplete="off" />
        <datalist id="timezones">{knownTimezones().map((zone) => <option key={zone} value={zone} />)}</datalist>
      </Field>
      <ErrorBox error={error} id="new-app-error" />
      {created && (
        <p class="ok" id="app-created">
          App <Link href={`/apps/${encodeURIComponent(created.id)}`}>{created.id}</Link> created.
        </p>
      )}
      <button type="submit" id="create-app" disabled={busy}>Create app</button>
    </form>
  );
}
