// The pipeline spec form (PipelineSpec in docs/control-plane.md), shared by the creation
// wizard (one section per step) and the update editor (all sections at once).
//
// The draft is flat and keyed by the spec's dotted paths (`processing.schedule.interval_seconds`)
// so that client-side errors and the server's 400 `fields` land on the same field. Numbers stay
// text in the draft: an invalid entry is kept (and reported) instead of turning into NaN.
// Control ids are the path with `.` and `_` turned into `-`; errors are `<id>-error`.
import { Field } from './ui.jsx';
import { cronError, nonNegativeIntegerError, positiveIntegerError } from './validate.js';

export const STEPS = [
  { key: 'ingestion', title: 'Ingestion' },
  { key: 'processing', title: 'Processing' },
  { key: 'modeling', title: 'Modeling' },
  { key: 'reporting', title: 'Reporting' },
];

/** Used when `GET /plugins` fails, so the wizard still works. */
const FALLBACK_ENRICHERS = ['page_url', 'traffic_source', 'user_agent', 'ip_geo'];
export const DEFAULT_INTERVAL_SECONDS = 60;
const MIN_INTERVAL_SECONDS = 10;

export const idOf = (path) => path.replace(/[._]/g, '-');

/** The draft of a new pipeline: every built-in enricher on, ETL every 60 s, DuckDB, reporting on. */
export function defaultDraft(builtInEnrichers) {
  return {
    'ingestion.sink': 's3',
    'ingestion.s3_buffer.max_bytes': '1000000',
    'ingestion.s3_buffer.max_age_seconds': '2',
    'ingestion.kafka.topic': '',
    'ingestion.kafka.partitions': '3',
    'ingestion.kinesis.stream': '',
    'ingestion.kinesis.shard_count': '1',
    'processing.enabled': true,
    'processing.schedule': 'interval', // which of the two schedule forms
    'processing.schedule.interval_seconds': String(DEFAULT_INTERVAL_SECONDS),
    'processing.schedule.cron': '*/15 * * * *',
    'processing.buffer_seconds': '5',
    'processing.data_freshness_hours': '72',
    'processing.enrichers': builtInEnrichers && builtInEnrichers.length ? [...builtInEnrichers] : [...FALLBACK_ENRICHERS],
    'processing.plugins': [],
    'processing.transformer': '',
    'processing.retention_days': '365',
    'modeling.engine': 'duckdb',
    'modeling.athena': false,
    'reporting.enabled': true,
  };
}

/** A stored spec back into a draft (for "Update"); missing parts keep the defaults. */
export function draftFromSpec(spec) {
  const draft = defaultDraft(spec?.processing?.enrichers || []);
  const text = (value, fallback) => (value === undefined || value === null ? fallback : String(value));
  const ingestion = spec?.ingestion || {};
  const processing = spec?.processing || {};
  const schedule = processing.schedule || {};
  draft['ingestion.sink'] = ingestion.sink || 's3';
  draft['ingestion.s3_buffer.max_bytes'] = text(ingestion.s3_buffer?.max_bytes, draft['ingestion.s3_buffer.max_bytes']);
  draft['ingestion.s3_buffer.max_age_seconds'] = text(ingestion.s3_buffer?.max_age_seconds, draft['ingestion.s3_buffer.max_age_seconds']);
  draft['ingestion.kafka.topic'] = text(ingestion.kafka?.topic, '');
  draft['ingestion.kafka.partitions'] = text(ingestion.kafka?.partitions, draft['ingestion.kafka.partitions']);
  draft['ingestion.kinesis.stream'] = text(ingestion.kinesis?.stream, '');
  draft['ingestion.kinesis.shard_count'] = text(ingestion.kinesis?.shard_count, draft['ingestion.kinesis.shard_count']);
  draft['processing.enabled'] = processing.enabled !== false;
  if (schedule.cron !== undefined && schedule.cron !== null) {
    draft['processing.schedule'] = 'cron';
    draft['processing.schedule.cron'] = schedule.cron;
  } else {
    draft['processing.schedule.interval_seconds'] = text(schedule.interval_seconds, draft['processing.schedule.interval_seconds']);
  }
  draft['processing.buffer_seconds'] = text(processing.buffer_seconds, draft['processing.buffer_seconds']);
  draft['processing.data_freshness_hours'] = text(processing.data_freshness_hours, draft['processing.data_freshness_hours']);
  draft['processing.enrichers'] = [...(processing.enrichers || [])];
  draft['processing.plugins'] = [...(processing.plugins || [])];
  draft['processing.transformer'] = processing.transformer || '';
  draft['processing.retention_days'] = text(processing.retention_days, draft['processing.retention_days']);
  draft['modeling.engine'] = spec?.modeling?.engine || 'duckdb';
  draft['modeling.athena'] = Boolean(spec?.modeling?.athena);
  draft['reporting.enabled'] = spec?.reporting?.enabled !== false;
  return draft;
}

/** The draft as the API's PipelineSpec. */
export function specFromDraft(draft) {
  const number = (path) => Number(String(draft[path]).trim());
  return {
    ingestion: {
      sink: draft['ingestion.sink'],
      s3_buffer: { max_bytes: number('ingestion.s3_buffer.max_bytes'), max_age_seconds: number('ingestion.s3_buffer.max_age_seconds') },
      kafka: { topic: draft['ingestion.kafka.topic'].trim(), partitions: number('ingestion.kafka.partitions') },
      kinesis: { stream: draft['ingestion.kinesis.stream'].trim(), shard_count: number('ingestion.kinesis.shard_count') },
    },
    processing: {
      enabled: draft['processing.enabled'],
      schedule: draft['processing.schedule'] === 'cron'
        ? { cron: draft['processing.schedule.cron'].trim().split(/\s+/).join(' ') }
        : { interval_seconds: number('processing.schedule.interval_seconds') },
      buffer_seconds: number('processing.buffer_seconds'),
      data_freshness_hours: number('processing.data_freshness_hours'),
      enrichers: draft['processing.enrichers'],
      plugins: draft['processing.plugins'],
      transformer: draft['processing.transformer'] || null,
      retention_days: number('processing.retention_days'),
    },
    modeling: { engine: draft['modeling.engine'], athena: draft['modeling.athena'] },
    reporting: { enabled: draft['reporting.enabled'] },
  };
}

/** Client-side errors of the given steps' fields, keyed by path (empty: all good). */
export function validateDraft(draft, stepKeys) {
  const errors = {};
  const check = (path, problem) => {
    if (problem) errors[path] = problem;
  };
  if (stepKeys.includes('ingestion')) {
    const sink = draft['ingestion.sink'];
    if (sink === 's3') {
      check('ingestion.s3_buffer.max_bytes', positiveIntegerError(draft['ingestion.s3_buffer.max_bytes']));
      check('ingestion.s3_buffer.max_age_seconds', positiveIntegerError(draft['ingestion.s3_buffer.max_age_seconds']));
    } else if (sink === 'kafka') {
      check('ingestion.kafka.partitions', positiveIntegerError(draft['ingestion.kafka.partitions']));
    } else if (sink === 'kinesis') {
      check('ingestion.kinesis.shard_count', positiveIntegerError(draft['ingestion.kinesis.shard_count']));
    }
  }
  if (stepKeys.includes('processing')) {
    if (draft['processing.schedule'] === 'cron') {
      check('processing.schedule.cron', cronError(draft['processing.schedule.cron']));
    } else {
      check('processing.schedule.interval_seconds', positiveIntegerError(draft['processing.schedule.interval_seconds'], MIN_INTERVAL_SECONDS));
    }
    check('processing.buffer_seconds', nonNegativeIntegerError(draft['processing.buffer_seconds']));
    check('processing.data_freshness_hours', positiveIntegerError(draft['processing.data_freshness_hours']));
    check('processing.retention_days', positiveIntegerError(draft['processing.retention_days']));
  }
  // Reporting reads the modeled data, which only exists when processing runs.
  if (stepKeys.includes('reporting') && draft['reporting.enabled'] && !draft['processing.enabled']) {
    errors['reporting.enabled'] = 'Reporting needs processing: enable processing too (Processing step).';
  }
  return errors;
}

const ALL_PATHS = Object.keys(defaultDraft([]));

/**
 * The server's 400 `fields` on our paths. Names may come as `spec.processing.x`, a JSON
 * pointer `/spec/processing/x`, with list indexes (`plugins[0]`), or as a bare last segment;
 * `{matched, unmatched}` so nothing the server said gets lost.
 */
export function mapServerFields(fields) {
  const matched = {};
  const unmatched = {};
  for (const [raw, why] of Object.entries(fields || {})) {
    const path = raw
      .replace(/^\//, '').replace(/\//g, '.')
      .replace(/\[\d+\]/g, '').replace(/\.\d+(?=\.|$)/g, '')
      .replace(/^spec\./, '');
    let target = ALL_PATHS.includes(path) ? path : null;
    if (!target) {
      const last = path.split('.').pop();
      const candidates = ALL_PATHS.filter((known) => known.split('.').pop() === last || known === `processing.schedule.${last}`);
      if (candidates.length === 1) target = candidates[0];
      else if (path === 'schedule' || path === 'processing.schedule') target = 'processing.schedule';
    }
    if (target) matched[target] = matched[target] ? `${matched[target]}; ${why}` : why;
    else unmatched[raw] = why;
  }
  return { matched, unmatched };
}

/** The step a path belongs to (its first segment). */
export const stepOf = (path) => STEPS.findIndex((step) => path.startsWith(`${step.key}.`));

// ---- form sections --------------------------------------------------------------------------

function TextInput({ path, draft, set, errors, label, hint, type = 'text', disabled }) {
  const id = idOf(path);
  return (
    <Field label={label} id={id} error={errors[path]} hint={hint}>
      <input id={id} name={path} type={type} value={draft[path]} disabled={disabled}
        onInput={(event) => set(path, event.currentTarget.value)} />
    </Field>
  );
}

function Select({ path, draft, set, errors, label, options, hint }) {
  const id = idOf(path);
  return (
    <Field label={label} id={id} error={errors[path]} hint={hint}>
      <select id={id} name={path} value={draft[path]} onChange={(event) => set(path, event.currentTarget.value)}>
        {options.map(([value, text]) => <option key={value} value={value}>{text}</option>)}
      </select>
    </Field>
  );
}

function Checkbox({ path, draft, set, errors, label }) {
  const id = idOf(path);
  return (
    <div class="field checkbox">
      <label for={id}>
        <input id={id} name={path} type="checkbox" checked={draft[path]} onChange={(event) => set(path, event.currentTarget.checked)} /> {label}
      </label>
      {errors[path] && <span id={`${id}-error`} class="error field-error" role="alert">{errors[path]}</span>}
    </div>
  );
}

/** Checkboxes over a list value (`processing.enrichers`, `processing.plugins`). */
function CheckList({ path, draft, set, errors, label, items, idPrefix, empty }) {
  const chosen = draft[path];
  const toggle = (value, on) => set(path, on ? [...chosen, value] : chosen.filter((item) => item !== value));
  return (
    <fieldset id={idOf(path)} class={errors[path] ? 'field invalid' : 'field'}>
      <legend>{label}</legend>
      {items.length === 0 && <p class="hint">{empty}</p>}
      {items.map((item) => (
        <label key={item.id} class="check">
          <input type="checkbox" id={`${idPrefix}-${item.id}`} name={path} value={item.id}
            checked={chosen.includes(item.id)} onChange={(event) => toggle(item.id, event.currentTarget.checked)} />
          {' '}<code>{item.id}</code>{item.description ? ` — ${item.description}` : ''}
        </label>
      ))}
      {errors[path] && <span id={`${idOf(path)}-error`} class="error field-error" role="alert">{errors[path]}</span>}
    </fieldset>
  );
}

export function IngestionSection(props) {
  const sink = props.draft['ingestion.sink'];
  return (
    <div class="section" id="section-ingestion">
      <Select {...props} path="ingestion.sink" label="Sink" hint="Where the collector writes raw events."
        options={[['s3', 'S3 (object store)'], ['kafka', 'Kafka'], ['kinesis', 'Kinesis']]} />
      {sink === 's3' && <>
        <TextInput {...props} path="ingestion.s3_buffer.max_bytes" label="Buffer size (bytes)" type="number" hint="A batch file is written when this many bytes are buffered…" />
        <TextInput {...props} path="ingestion.s3_buffer.max_age_seconds" label="Buffer age (seconds)" type="number" hint="…or when the oldest buffered event is this old." />
      </>}
      {sink === 'kafka' && <>
        <TextInput {...props} path="ingestion.kafka.topic" label="Topic" hint="Empty: the server picks one for the project." />
        <TextInput {...props} path="ingestion.kafka.partitions" label="Partitions" type="number" />
      </>}
      {sink === 'kinesis' && <>
        <TextInput {...props} path="ingestion.kinesis.stream" label="Stream" hint="Empty: the server picks one for the project." />
        <TextInput {...props} path="ingestion.kinesis.shard_count" label="Shards" type="number" />
      </>}
    </div>
  );
}

export function ProcessingSection({ plugins, ...props }) {
  const { draft } = props;
  const builtIns = plugins.filter((plugin) => plugin.built_in);
  const custom = plugins.filter((plugin) => !plugin.built_in && plugin.kind === 'enrichment');
  const transformers = plugins.filter((plugin) => plugin.kind === 'transformer');
  // Enrichers the spec names that the plugin list does not (e.g. the list failed to load).
  const enricherItems = [...builtIns, ...draft['processing.enrichers'].filter((id) => !builtIns.some((p) => p.id === id)).map((id) => ({ id }))];
  return (
    <div class="section" id="section-processing">
      <Checkbox {...props} path="processing.enabled" label="Process events (run the ETL)" />
      <Select {...props} path="processing.schedule" label="Schedule"
        options={[['interval', 'Every N seconds'], ['cron', 'Cron expression']]} />
      {draft['processing.schedule'] === 'cron'
        ? <TextInput {...props} path="processing.schedule.cron" label="Cron" hint="5 fields: minute hour day month weekday, e.g. */15 * * * *" />
        : <TextInput {...props} path="processing.schedule.interval_seconds" label="Interval (seconds)" type="number" hint={`At least ${MIN_INTERVAL_SECONDS}.`} />}
      <TextInput {...props} path="processing.buffer_seconds" label="Buffer (seconds)" type="number" hint="How long to wait for late files before a run (0: none)." />
      <TextInput {...props} path="processing.data_freshness_hours" label="Data freshness (hours)" type="number" hint="Older events are dropped by the ETL." />
      <CheckList {...props} path="processing.enrichers" label="Enrichers" items={enricherItems} idPrefix="enricher" empty="No built-in enrichers." />
      <CheckList {...props} path="processing.plugins" label="Custom plugins" items={custom} idPrefix="plugin" empty="No custom enrichment plugins (add them on the Plugins page)." />
      <Select {...props} path="processing.transformer" label="Transformer" hint="For apps that send bodies in a format of their own (a transformer plugin turns them into events)."
        options={[['', 'None (the CAoA SDKs\' format)'], ...transformers.map((plugin) => [plugin.id, plugin.id])]} />
      <TextInput {...props} path="processing.retention_days" label="Retention (days)" type="number" />
    </div>
  );
}

export function ModelingSection(props) {
  return (
    <div class="section" id="section-modeling">
      <Select {...props} path="modeling.engine" label="Warehouse engine"
        options={[['duckdb', 'DuckDB'], ['redshift', 'Redshift']]} />
      <Checkbox {...props} path="modeling.athena" label="Athena (query the data lake tables)" />
    </div>
  );
}

export function ReportingSection(props) {
  return (
    <div class="section" id="section-reporting">
      <Checkbox {...props} path="reporting.enabled" label="Reporting (daily aggregates for dashboards)" />
    </div>
  );
}

export const SECTIONS = [IngestionSection, ProcessingSection, ModelingSection, ReportingSection];
