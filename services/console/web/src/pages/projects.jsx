// `/`: the projects list and the "New project" form.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { ErrorBox, Field, splitFieldErrors, useApi, useForm, useSession, When } from '../ui.jsx';
import { projectIdError } from '../validate.js';

export function ProjectsPage() {
  const { canOperate } = useSession();
  const projects = useApi('/projects');
  return (
    <section>
      <h1>Projects</h1>
      <ErrorBox error={projects.error} />
      {projects.loading ? <p>Loading…</p> : <ProjectTable projects={projects.data || []} />}
      {canOperate && <NewProjectForm onCreated={(project) => navigate(`/projects/${encodeURIComponent(project.id)}`)} />}
    </section>
  );
}

function ProjectTable({ projects }) {
  if (projects.length === 0) return <p class="empty" id="no-projects">No projects yet.</p>;
  return (
    <table id="projects">
      <thead><tr><th>Id</th><th>Name</th><th>Environment</th><th>Description</th><th>Updated</th></tr></thead>
      <tbody>
        {projects.map((project) => (
          <tr key={project.id} data-project-id={project.id}>
            <td><Link href={`/projects/${encodeURIComponent(project.id)}`}>{project.id}</Link></td>
            <td>{project.name}</td>
            <td>{project.environment}</td>
            <td>{project.description}</td>
            <td><When value={project.updated_at} /></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const PROJECT_FIELDS = ['id', 'name', 'description', 'environment'];

function NewProjectForm({ onCreated }) {
  const form = useForm({ id: '', name: '', description: '', environment: 'dev' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    const id = form.values.id.trim();
    const idProblem = projectIdError(id);
    if (idProblem) {
      form.setErrors({ id: idProblem });
      return;
    }
    setBusy(true);
    try {
      // A blank name falls back to the id: one less thing to type for a quick start.
      const body = { ...form.values, id, name: form.values.name.trim() || id };
      onCreated(await api('POST', '/projects', body));
    } catch (failure) {
      const fields = splitFieldErrors(failure, PROJECT_FIELDS);
      if (failure.status === 409) fields.id = failure.message; // the id exists already
      form.setErrors(fields);
      // A 409 (the id is taken) is said next to the id; anything else in the box.
      if (failure.status !== 409) setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="new-project-form" class="card" onSubmit={submit} noValidate>
      <h2>New project</h2>
      <Field label="Id" id="new-project-id" error={form.errors.id} hint="Lowercase letters, digits and _, starting with a letter (it names warehouse schemas).">
        <input id="new-project-id" {...form.bind('id')} autocomplete="off" maxLength={127} />
      </Field>
      <Field label="Name" id="new-project-name" error={form.errors.name}>
        <input id="new-project-name" {...form.bind('name')} />
      </Field>
      <Field label="Description" id="new-project-description" error={form.errors.description}>
        <input id="new-project-description" {...form.bind('description')} />
      </Field>
      <Field label="Environment" id="new-project-environment" error={form.errors.environment}>
        <select id="new-project-environment" {...form.bind('environment')}>
          <option value="dev">dev</option>
          <option value="test">test</option>
          <option value="prod">prod</option>
        </select>
      </Field>
      <ErrorBox error={error} id="new-project-error" />
      <button type="submit" id="create-project" disabled={busy}>Create project</button>
    </form>
  );
}
