// `/pipelines/{id}`: live status (polled every 2 s: the lifecycle workflow moves it along),
// Temporal UI links, and Update / Retry / Delete.
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { draftFromSpec, mapServerFields, SECTIONS, specFromDraft, STEPS, validateDraft } from '../spec.jsx';
import { ConfirmButton, ErrorBox, useApi, usePoll, useSession, When } from '../ui.jsx';

const STATUS_REFRESH_MS = 2000;

export function PipelinePage({ pipelineId }) {
  const { canOperate } = useSession();
  const [pipeline, setPipeline] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [editing, setEditing] = useState(false);

  const refresh = async () => {
    try {
      setPipeline(await api('GET', `/pipelines/${seg(pipelineId)}`));
      setLoadError(null);
    } catch (failure) {
      setLoadError(failure);
    }
  };
  usePoll(refresh, STATUS_REFRESH_MS, [pipelineId]);

  if (!pipeline) return loadError ? <ErrorBox error={loadError} /> : <p>Loading…</p>;

  const status = pipeline.status || {};
  const phase = status.phase || 'unknown';
  const settled = phase === 'deleting' || phase === 'deleted';

  const act = async (method, path) => {
    setActionError(null);
    try {
      await api(method, path);
      await refresh();
    } catch (failure) {
      setActionError(failure);
    }
  };

  return (
    <section>
      <p class="crumbs">
        <Link href={`/projects/${encodeURIComponent(pipeline.project_id)}`}>{pipeline.project_id}</Link> / {pipeline.id}
      </p>
      <h1>Pipeline {pipeline.id}</h1>
      <div class="card status">
        <p>
          Phase: <strong id="pipeline-phase" class={`phase phase-${phase}`}>{phase}</strong>
          <small class="hint"> (refreshed every {STATUS_REFRESH_MS / 1000} s)</small>
        </p>
        <p id="pipeline-message" class={phase === 'failed' ? 'error' : 'message'}>{status.message || ''}</p>
        <p class="links">
          {pipeline.workflow_url && <a id="workflow-url" href={pipeline.workflow_url} target="_blank" rel="noopener">Lifecycle workflow in Temporal UI</a>}
          {pipeline.runs_url && <a id="runs-url" href={pipeline.runs_url} target="_blank" rel="noopener">Runs in Temporal UI</a>}
        </p>
        <ErrorBox error={loadError} />
      </div>

      <h2>Levels</h2>
      <Levels levels={status.levels || []} />

      {canOperate && !editing && (
        <div class="actions">
          {!settled && <button type="button" id="update-pipeline" onClick={() => setEditing(true)}>Update</button>}
          {phase === 'failed' && <button type="button" id="retry-pipeline" onClick={() => act('POST', `/pipelines/${seg(pipeline.id)}/retry`)}>Retry</button>}
          {!settled && (
            <ConfirmButton id="delete-pipeline" label="Delete" question="Delete this pipeline (its stacks are removed)?"
              onConfirm={() => act('DELETE', `/pipelines/${seg(pipeline.id)}`)} />
          )}
        </div>
      )}
      <ErrorBox error={actionError} id="pipeline-action-error" />

      {editing
        ? <SpecEditor pipeline={pipeline} onDone={() => { setEditing(false); refresh(); }} />
        : (
          <>
            <h2>Spec <small class="hint">version {pipeline.version}, updated <When value={pipeline.updated_at} /></small></h2>
            <pre id="pipeline-spec">{JSON.stringify(pipeline.spec, null, 2)}</pre>
          </>
        )}
      {phase === 'deleted' && <p><button type="button" class="secondary" onClick={() => navigate(`/projects/${encodeURIComponent(pipeline.project_id)}`)}>Back to the project</button></p>}
    </section>
  );
}

function Levels({ levels }) {
  if (levels.length === 0) return <p class="empty">No levels reported yet.</p>;
  return (
    <table id="pipeline-levels">
      <thead><tr><th>Level</th><th>State</th><th>Stack</th><th>Stack state</th><th>Reason</th></tr></thead>
      <tbody>
        {levels.flatMap((level) => {
          const stacks = level.stacks && level.stacks.length ? level.stacks : [null];
          return stacks.map((stack, index) => (
            <tr key={`${level.level}/${stack ? stack.name : ''}`} data-level={level.level}>
              {index === 0 && <td rowSpan={stacks.length}>{level.level}</td>}
              {index === 0 && <td rowSpan={stacks.length}><span class={`state state-${level.state}`}>{level.state}</span></td>}
              <td>{stack ? <code>{stack.name}</code> : '—'}</td>
              <td>{stack ? stack.state : ''}</td>
              <td>{stack ? stack.reason : ''}</td>
            </tr>
          ));
        })}
      </tbody>
    </table>
  );
}

/**
 * Edits the spec and PUTs it with the version read when editing began: if someone changed the
 * pipeline meanwhile, the server answers 409 and nothing is overwritten.
 */
function SpecEditor({ pipeline, onDone }) {
  const plugins = useApi('/plugins');
  const [version] = useState(pipeline.version);
  const [draft, setDraft] = useState(() => draftFromSpec(pipeline.spec));
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const set = (path, value) => {
    setDraft((old) => ({ ...old, [path]: value }));
    setErrors((old) => (old[path] ? { ...old, [path]: undefined } : old));
  };

  const save = async (event) => {
    event.preventDefault();
    setError(null);
    const problems = validateDraft(draft, STEPS.map((s) => s.key));
    setErrors(problems);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      await api('PUT', `/pipelines/${seg(pipeline.id)}`, { spec: specFromDraft(draft), version });
      onDone();
    } catch (failure) {
      const { matched, unmatched } = mapServerFields(failure.fields);
      failure.unmatchedFields = unmatched;
      if (failure.status === 409) failure.message = `${failure.message} (reload the page to edit the current version)`;
      setErrors(matched);
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form id="pipeline-update-form" class="card" onSubmit={save} noValidate>
      <h2>Update spec <small class="hint">(from version {version})</small></h2>
      {STEPS.map((step, index) => {
        const Section = SECTIONS[index];
        return (
          <fieldset key={step.key} class="group">
            <legend>{step.title}</legend>
            <Section draft={draft} set={set} errors={errors} plugins={plugins.data || []} />
          </fieldset>
        );
      })}
      <ErrorBox error={plugins.error} />
      <ErrorBox error={error} id="pipeline-update-error" />
      <div class="actions">
        <button type="submit" id="save-pipeline" disabled={busy}>Save</button>
        <button type="button" id="cancel-update" class="secondary" onClick={onDone}>Cancel</button>
      </div>
    </form>
  );
}
