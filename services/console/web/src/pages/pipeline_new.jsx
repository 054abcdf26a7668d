// `/pipelines/new?project={id}`: the creation wizard. Each step checks its own fields before
// moving on; the server's 400 `fields` send the user back to the step that has the field.
import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { defaultDraft, mapServerFields, SECTIONS, specFromDraft, stepOf, STEPS, validateDraft } from '../spec.jsx';
import { ErrorBox, useApi } from '../ui.jsx';

const REVIEW = STEPS.length; // the last step, after the four spec sections

export function NewPipelinePage({ projectId }) {
  const plugins = useApi('/plugins');
  const [draft, setDraft] = useState(null);
  const [step, setStep] = useState(0);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  // The draft starts once the plugin list is known (every built-in enricher on), or failed.
  useEffect(() => {
    if (draft || plugins.loading) return;
    const builtIns = (plugins.data || []).filter((plugin) => plugin.built_in).map((plugin) => plugin.id);
    setDraft(defaultDraft(builtIns));
  }, [plugins.loading]);

  if (!projectId) return <div class="error">Open the wizard from a project page (the URL needs <code>?project=</code>).</div>;
  if (!draft) return <p>Loading…</p>;

  const set = (path, value) => {
    setDraft((old) => ({ ...old, [path]: value }));
    setErrors((old) => (old[path] ? { ...old, [path]: undefined } : old));
  };

  const next = () => {
    const problems = validateDraft(draft, [STEPS[step].key]);
    setErrors(problems);
    if (Object.keys(problems).length === 0) setStep(step + 1);
  };

  const create = async () => {
    setError(null);
    // Everything again: a field may have been changed by going back.
    const problems = validateDraft(draft, STEPS.map((s) => s.key));
    if (Object.keys(problems).length > 0) {
      setErrors(problems);
      setStep(Math.min(...Object.keys(problems).map(stepOf)));
      return;
    }
    setBusy(true);
    try {
      const pipeline = await api('POST', '/pipelines', { project_id: projectId, spec: specFromDraft(draft) });
      navigate(`/pipelines/${encodeURIComponent(pipeline.id)}`);
    } catch (failure) {
      const { matched, unmatched } = mapServerFields(failure.fields);
      failure.unmatchedFields = unmatched;
      setErrors(matched);
      setError(failure);
      const steps = Object.keys(matched).map(stepOf).filter((index) => index >= 0);
      if (steps.length > 0) setStep(Math.min(...steps));
    } finally {
      setBusy(false);
    }
  };

  const Section = SECTIONS[step];
  const stepWithErrors = new Set(Object.keys(errors).filter((path) => errors[path]).map(stepOf));
  return (
    <section>
      <p class="crumbs"><Link href={`/projects/${encodeURIComponent(projectId)}`}>{projectId}</Link> / new pipeline</p>
      <h1>New pipeline for {projectId}</h1>
      <ol class="steps" id="wizard-steps">
        {[...STEPS, { key: 'review', title: 'Review' }].map((s, index) => (
          <li key={s.key} class={[index === step ? 'current' : '', stepWithErrors.has(index) ? 'invalid' : ''].join(' ')}
            aria-current={index === step ? 'step' : undefined}>{s.title}</li>
        ))}
      </ol>
      <div class="card">
        <h2 id="wizard-step-title" data-step={step < REVIEW ? STEPS[step].key : 'review'}>
          {step < REVIEW ? STEPS[step].title : 'Review'}
        </h2>
        {step < REVIEW
          ? <Section draft={draft} set={set} errors={errors} plugins={plugins.data || []} />
          : <Review draft={draft} projectId={projectId} />}
        {plugins.error && step === 1 && <ErrorBox error={plugins.error} />}
        <ErrorBox error={error} id="wizard-error" />
        {error && error.status === 409 && (
          <p><Link href={`/pipelines/pipeline-${seg(projectId)}`}>Open the existing pipeline</Link></p>
        )}
        <div class="actions">
          {step > 0 && <button type="button" id="wizard-back" class="secondary" onClick={() => setStep(step - 1)}>Back</button>}
          {step < REVIEW && <button type="button" id="wizard-next" onClick={next}>Next</button>}
          {step === REVIEW && <button type="button" id="wizard-create" disabled={busy} onClick={create}>Create pipeline</button>}
        </div>
      </div>
    </section>
  );
}

function Review({ draft, projectId }) {
  const spec = specFromDraft(draft);
  const schedule = spec.processing.schedule.cron ? `cron ${spec.processing.schedule.cron}` : `every ${spec.processing.schedule.interval_seconds} s`;
  return (
    <div id="review">
      <ul class="summary">
        <li>Project: <strong>{projectId}</strong> (pipeline <code>pipeline-{projectId}</code>)</li>
        <li>Ingestion: <strong>{spec.ingestion.sink}</strong></li>
        <li>Processing: <strong>{spec.processing.enabled ? schedule : 'off'}</strong>, enrichers {spec.processing.enrichers.join(', ') || 'none'}, plugins {spec.processing.plugins.join(', ') || 'none'}</li>
        <li>Modeling: <strong>{spec.modeling.engine}</strong>{spec.modeling.athena ? ' + Athena' : ''}</li>
        <li>Reporting: <strong>{spec.reporting.enabled ? 'on' : 'off'}</strong></li>
      </ul>
      <pre id="review-spec">{JSON.stringify(spec, null, 2)}</pre>
    </div>
  );
}
