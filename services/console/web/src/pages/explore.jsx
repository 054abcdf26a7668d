// `/apps/{app}/explore` (Analytics Studio): build one of the five explorations of
// docs/reporting.md with a form, run it, chart it, export it as CSV, and save it. A saved
// exploration opens with `?saved=<id>` (or from the list), fills the form and runs.
//
// The form keeps one state per exploration type (switching type loses nothing) and turns it
// into the request body in `buildQuery`, which also does the checks the server would refuse
// anyway, so that mistakes show next to their control before any request.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, apiText, downloadText, seg } from '../api.js';
import { Chart, barOption, groupedBarOption, lineOption, pointsLineOption, sankeyOption } from '../charts.jsx';
import { Link, navigate, useLocation } from '../router.jsx';
import { ConfirmButton, ErrorBox, Field, FieldError, useApi, useSession } from '../ui.jsx';
import {
  CohortGrid, DataTable, EventSelect, FieldSelect, FiltersEditor, errorsByControl, fieldFromApi, fieldToApi,
  filterErrorsByPath, filterProblems, filtersFromApi, filtersToApi, useCatalog,
} from '../reporting.jsx';
import { addDays, cellText, cohortGrid, column, funnelGroups, localToday, percentText, rangeProblems, retentionCurve } from '../tables.js';

const TYPES = [
  ['event', 'Events over time'],
  ['funnel', 'Funnel'],
  ['path', 'Paths'],
  ['retention', 'Retention'],
  ['attribution', 'Attribution'],
];

const UNITS = { minutes: 60, hours: 3600, days: 86400 };
const MAX_WINDOW_SECONDS = 90 * 86400; // reporting/src/check.rs

const MODELS = [
  ['first_touch', 'First touch'],
  ['last_touch', 'Last touch'],
  ['linear', 'Linear'],
  ['position_based', 'Position based (40/20/40)'],
  ['time_decay', 'Time decay'],
];

/** The form's values per type, as typed (numbers stay text until the query is built). */
function defaultForms() {
  return {
    event: { events: [], measure: 'count', sum_parameter: '', granularity: 'day', group_by: '' },
    funnel: { steps: ['', ''], window_value: '1', window_unit: 'days', group_by: '' },
    path: { node: 'event', split: 'session', gap_minutes: '30', start: '', max_steps: '5', top_flows: '20' },
    retention: { start_event: '', return_event: '', granularity: 'week', periods: '4' },
    attribution: { conversion_event: '', touchpoints: [], model: 'linear', half_life_hours: '24', window_value: '7', window_unit: 'days', value_parameter: '' },
  };
}

/** Seconds → the largest unit that divides them (minutes with decimals as a last resort). */
function windowOf(seconds) {
  for (const unit of ['days', 'hours', 'minutes']) {
    if (seconds % UNITS[unit] === 0) return { value: String(seconds / UNITS[unit]), unit };
  }
  return { value: String(seconds / 60), unit: 'minutes' };
}

/** A whole number in [low, high] from typed text, else null. */
function whole(text, low, high) {
  const number = Number(text);
  return Number.isInteger(number) && number >= low && number <= high ? number : null;
}

/** `value × unit` in whole seconds, null when not in [1, max]. */
function seconds(value, unit, max) {
  const number = Math.round(Number(value) * UNITS[unit]);
  return Number.isFinite(number) && number >= 1 && number <= max ? number : null;
}

/** Form → `{body, problems}`; problems are keyed by the API's JSON paths, as the server's. */
function buildQuery(type, range, form, filterRows) {
  const problems = { ...rangeProblems(range), ...filterProblems(filterRows) };
  const body = { type, range: { from: range.from, to: range.to }, filters: filtersToApi(filterRows) };
  const need = (path, ok, why) => {
    if (!ok) problems[path] = why;
  };
  switch (type) {
    case 'event': {
      body.events = form.events;
      body.measure = form.measure === 'sum' ? { sum: { event_parameter: form.sum_parameter || null } } : form.measure;
      body.granularity = form.granularity;
      body.group_by = fieldToApi(form.group_by);
      need('events', form.events.length <= 20, 'choose at most 20 events (none: every event)');
      break;
    }
    case 'funnel': {
      body.steps = form.steps;
      body.window_seconds = seconds(form.window_value, form.window_unit, MAX_WINDOW_SECONDS);
      body.group_by = fieldToApi(form.group_by);
      need('steps', form.steps.length >= 2 && form.steps.length <= 10, 'a funnel has 2 to 10 steps');
      form.steps.forEach((step, index) => need(`steps[${index}]`, step !== '', 'choose an event'));
      need('window_seconds', body.window_seconds !== null, 'between 1 minute and 90 days');
      break;
    }
    case 'path': {
      const gap = seconds(form.gap_minutes, 'minutes', 86400);
      body.node = form.node;
      body.split = form.split === 'gap' ? { gap: { gap_seconds: gap } } : 'session';
      body.start = form.start.trim() || null;
      body.max_steps = whole(form.max_steps, 2, 10);
      body.top_flows_per_step = whole(form.top_flows, 1, 100);
      if (form.split === 'gap') need('split.gap.gap_seconds', gap !== null, 'between 1 minute and 1 day (1440 minutes)');
      need('max_steps', body.max_steps !== null, 'a whole number from 2 to 10');
      need('top_flows_per_step', body.top_flows_per_step !== null, 'a whole number from 1 to 100');
      break;
    }
    case 'retention': {
      body.start_event = form.start_event;
      body.return_event = form.return_event;
      body.granularity = form.granularity;
      body.periods = whole(form.periods, 1, 52);
      need('start_event', form.start_event !== '', 'choose an event');
      need('return_event', form.return_event !== '', 'choose an event');
      need('periods', body.periods !== null, 'a whole number from 1 to 52');
      break;
    }
    case 'attribution': {
      const halfLife = seconds(form.half_life_hours, 'hours', MAX_WINDOW_SECONDS);
      body.conversion_event = form.conversion_event;
      body.touchpoints = form.touchpoints;
      body.model = form.model === 'time_decay' ? { time_decay: { half_life_seconds: halfLife } } : form.model;
      body.window_seconds = seconds(form.window_value, form.window_unit, MAX_WINDOW_SECONDS);
      body.value_parameter = form.value_parameter || null;
      need('conversion_event', form.conversion_event !== '', 'choose an event');
      need('touchpoints', form.touchpoints.length >= 1 && form.touchpoints.length <= 20, 'choose 1 to 20 touch-point events');
      if (form.model === 'time_decay') need('model.time_decay.half_life_seconds', halfLife !== null, 'between 1 second and 90 days');
      need('window_seconds', body.window_seconds !== null, 'between 1 minute and 90 days');
      break;
    }
    default:
      problems.type = 'choose an exploration type';
  }
  return { body, problems };
}

/** A saved (or any) request body → the form's state; unknown parts keep their defaults. */
function formFromQuery(query) {
  const forms = defaultForms();
  const type = TYPES.some(([name]) => name === query?.type) ? query.type : 'event';
  const form = forms[type];
  const q = query || {};
  switch (type) {
    case 'event':
      form.events = Array.isArray(q.events) ? q.events : [];
      if (q.measure && typeof q.measure === 'object' && q.measure.sum) {
        form.measure = 'sum';
        form.sum_parameter = q.measure.sum.event_parameter || '';
      } else if (typeof q.measure === 'string') form.measure = q.measure;
      form.granularity = q.granularity || 'day';
      form.group_by = fieldFromApi(q.group_by);
      break;
    case 'funnel': {
      form.steps = Array.isArray(q.steps) ? q.steps : ['', ''];
      const window = windowOf(Number(q.window_seconds) || 86400);
      form.window_value = window.value;
      form.window_unit = window.unit;
      form.group_by = fieldFromApi(q.group_by);
      break;
    }
    case 'path':
      form.node = q.node || 'event';
      if (q.split && typeof q.split === 'object' && q.split.gap) {
        form.split = 'gap';
        form.gap_minutes = String(Number(q.split.gap.gap_seconds) / 60);
      }
      form.start = q.start || '';
      form.max_steps = String(q.max_steps ?? 5);
      form.top_flows = String(q.top_flows_per_step ?? 20);
      break;
    case 'retention':
      form.start_event = q.start_event || '';
      form.return_event = q.return_event || '';
      form.granularity = q.granularity || 'week';
      form.periods = String(q.periods ?? 4);
      break;
    case 'attribution': {
      form.conversion_event = q.conversion_event || '';
      form.touchpoints = Array.isArray(q.touchpoints) ? q.touchpoints : [];
      if (q.model && typeof q.model === 'object' && q.model.time_decay) {
        form.model = 'time_decay';
        form.half_life_hours = String(Number(q.model.time_decay.half_life_seconds) / 3600);
      } else if (typeof q.model === 'string') form.model = q.model;
      const window = windowOf(Number(q.window_seconds) || 7 * 86400);
      form.window_value = window.value;
      form.window_unit = window.unit;
      form.value_parameter = q.value_parameter || '';
      break;
    }
    default:
  }
  const range = q.range && q.range.from && q.range.to ? { from: q.range.from, to: q.range.to } : null;
  return { type, form, range, filters: filtersFromApi(q.filters) };
}

// The server's 400 `fields` (and ours) → control ids; what matches nothing goes to the
// result's error box. A save's errors may come as `query.<path>`: the prefix is dropped.
const COMMON_RULES = [
  [/^type$/, 'exploration-type'],
  [/^range\.from$/, 'exploration-from'],
  [/^range(\.to)?$/, 'exploration-to'],
  [/^name$/, 'exploration-name'],
];
const TYPE_RULES = {
  event: [
    [/^events(\[\d+\])?$/, 'event-events'],
    [/^measure\.sum/, 'event-sum-parameter'],
    [/^measure$/, 'event-measure'],
    [/^granularity$/, 'event-granularity'],
    [/^group_by/, 'event-group-by'],
  ],
  funnel: [
    [/^steps\[(\d+)\]$/, (found) => `funnel-step-${found[1]}`],
    [/^steps$/, 'funnel-steps'],
    [/^window_seconds$/, 'funnel-window-value'],
    [/^group_by/, 'funnel-group-by'],
  ],
  path: [
    [/^node$/, 'path-node'],
    [/^split\.gap/, 'path-gap-minutes'],
    [/^split$/, 'path-split'],
    [/^start$/, 'path-start'],
    [/^max_steps$/, 'path-max-steps'],
    [/^top_flows_per_step$/, 'path-top-flows'],
  ],
  retention: [
    [/^start_event$/, 'retention-start-event'],
    [/^return_event$/, 'retention-return-event'],
    [/^granularity$/, 'retention-granularity'],
    [/^periods$/, 'retention-periods'],
  ],
  attribution: [
    [/^conversion_event$/, 'attribution-conversion-event'],
    [/^touchpoints(\[\d+\])?$/, 'attribution-touchpoints'],
    [/^model\.time_decay/, 'attribution-half-life-hours'],
    [/^model$/, 'attribution-model'],
    [/^window_seconds$/, 'attribution-window-value'],
    [/^value_parameter$/, 'attribution-value-parameter'],
  ],
};

function mapErrors(fields, type) {
  const stripped = Object.fromEntries(Object.entries(fields || {}).map(([path, why]) => [path.replace(/^query\./, ''), why]));
  return errorsByControl(stripped, [...COMMON_RULES, ...(TYPE_RULES[type] || [])], 'exploration-');
}

/** Which controls an edit of the form clears the errors of. */
const FILTER_CONTROL = /^exploration-filter/;

export function ExplorePage({ appId }) {
  const { query } = useLocation();
  const savedId = query.get('saved');
  const { canOperate } = useSession();
  const { catalog, error: catalogError, loaded: catalogLoaded } = useCatalog(appId);
  const savedList = useApi(`/apps/${seg(appId)}/explorations`);

  const [type, setType] = useState('event');
  const [range, setRange] = useState(() => ({ from: addDays(localToday(), -29), to: localToday() }));
  const [forms, setForms] = useState(defaultForms);
  const [filterRows, setFilterRows] = useState([]);
  const [errors, setErrors] = useState({}); // control id → message
  const [formError, setFormError] = useState(null); // problems no control shows
  const [result, setResult] = useState({ state: 'idle', run: 0, type: null, body: null, table: null, error: null });
  const latestRun = useRef(0);

  const [name, setName] = useState('');
  const [editing, setEditing] = useState(null); // the saved exploration in the form: {id, version}
  const editingId = useRef(null); // synchronously known, so `?saved=` does not load it twice
  const [saveState, setSaveState] = useState({ busy: false, notice: null, error: null });
  const [exportState, setExportState] = useState({ busy: false, error: null });
  const [openError, setOpenError] = useState(null);

  const clear = (...controls) => setErrors((old) => {
    if (!controls.some((control) => old[control])) return old;
    const next = { ...old };
    controls.forEach((control) => delete next[control]);
    return next;
  });
  const setForm = (change, ...controls) => {
    setForms((old) => ({ ...old, [type]: { ...old[type], ...change } }));
    clear(...controls);
  };
  const changeFilters = (rows) => {
    setFilterRows(rows);
    // Rows may have moved: their errors no longer point at the right controls.
    setErrors((old) => Object.fromEntries(Object.entries(old).filter(([control]) => !FILTER_CONTROL.test(control))));
  };

  /** Checks the form; on problems shows them and returns null, else the request body. */
  const validBody = (extra = {}) => {
    const { body, problems } = buildQuery(type, range, forms[type], filterRows);
    Object.assign(problems, extra);
    const mapped = mapErrors(problems, type);
    setErrors(mapped.byControl);
    const unmatched = Object.entries(mapped.unmatched);
    setFormError(unmatched.length > 0 ? Object.assign(new Error('Fix the query first:'), { unmatchedFields: mapped.unmatched }) : null);
    return Object.keys(problems).length === 0 ? body : null;
  };

  /** Runs `body`; a later run wins over a slower earlier one. */
  const execute = async (body) => {
    const run = ++latestRun.current;
    setResult((old) => ({ ...old, state: 'loading', run, error: null }));
    try {
      const table = await api('POST', `/apps/${seg(appId)}/explorations/run`, body);
      if (run !== latestRun.current) return;
      const rows = Array.isArray(table?.rows) ? table.rows : [];
      setResult({ state: rows.length > 0 ? 'ready' : 'empty', run, type: body.type, body, table: { columns: table?.columns || [], rows }, error: null });
    } catch (error) {
      if (run !== latestRun.current) return;
      const mapped = mapErrors(error.fields, body.type);
      setErrors(mapped.byControl);
      error.unmatchedFields = mapped.unmatched;
      setResult((old) => ({ ...old, state: 'error', run, table: null, error }));
    }
  };

  const run = (event) => {
    event?.preventDefault();
    const body = validBody();
    if (body) execute(body);
  };

  const exportCsv = async () => {
    const body = validBody();
    if (!body) return;
    setExportState({ busy: true, error: null });
    try {
      const text = await apiText('POST', `/apps/${seg(appId)}/explorations/run?format=csv`, body);
      const base = (name.trim() || body.type).replace(/[^\w.-]+/g, '_');
      downloadText(`${base}-${body.range.from}-${body.range.to}.csv`, text);
      setExportState({ busy: false, error: null });
    } catch (error) {
      const mapped = mapErrors(error.fields, body.type);
      setErrors(mapped.byControl);
      error.unmatchedFields = mapped.unmatched;
      setExportState({ busy: false, error });
    }
  };

  /** Puts a saved exploration into the form and runs it as saved. */
  const openSaved = (saved) => {
    const loaded = formFromQuery(saved.query);
    editingId.current = String(saved.id);
    setEditing({ id: String(saved.id), version: saved.version });
    setName(saved.name || '');
    setType(loaded.type);
    if (loaded.range) setRange(loaded.range);
    setForms((old) => ({ ...old, [loaded.type]: loaded.form }));
    setFilterRows(loaded.filters);
    setErrors({});
    setFormError(null);
    setSaveState({ busy: false, notice: null, error: null });
    setOpenError(null);
    execute(saved.query);
  };

  // `?saved=<id>` (a link, a reload, history): load it unless it is already in the form.
  useEffect(() => {
    if (!savedId || savedId === editingId.current) return;
    let current = true;
    editingId.current = savedId;
    api('GET', `/apps/${seg(appId)}/explorations/${seg(savedId)}`).then(
      (saved) => current && openSaved(saved),
      (error) => {
        if (!current) return;
        editingId.current = null;
        setOpenError(error);
      },
    );
    return () => {
      current = false;
    };
  }, [appId, savedId]);

  const save = async (asNew) => {
    const body = validBody(name.trim() ? {} : { name: 'give the exploration a name' });
    if (!body) return;
    setSaveState({ busy: true, notice: null, error: null });
    try {
      let saved;
      if (editing && !asNew) {
        const answer = await api('PUT', `/apps/${seg(appId)}/explorations/${seg(editing.id)}`, { name: name.trim(), query: body, version: editing.version });
        // The contract says 200; should the body be empty, the version still moved on by one.
        saved = answer && answer.id !== undefined ? answer : { id: editing.id, name: name.trim(), query: body, version: editing.version + 1 };
      } else {
        saved = await api('POST', `/apps/${seg(appId)}/explorations`, { name: name.trim(), query: body });
      }
      editingId.current = String(saved.id);
      setEditing({ id: String(saved.id), version: saved.version });
      setSaveState({ busy: false, notice: `Saved “${saved.name}” (version ${saved.version}).`, error: null });
      savedList.reload();
      navigate(`/apps/${encodeURIComponent(appId)}/explore?saved=${encodeURIComponent(saved.id)}`, { replace: true });
    } catch (error) {
      if (error.status === 409) error.message = `${error.message} — someone saved this exploration since you opened it; open it again from the list (your changes are lost) or save as a new one.`;
      const mapped = mapErrors(error.fields, type);
      setErrors(mapped.byControl);
      error.unmatchedFields = mapped.unmatched;
      setSaveState({ busy: false, notice: null, error });
    }
  };

  const deleteSaved = async (id) => {
    await api('DELETE', `/apps/${seg(appId)}/explorations/${seg(id)}`).then(
      () => {
        if (editing?.id === id) {
          editingId.current = null;
          setEditing(null);
          navigate(`/apps/${encodeURIComponent(appId)}/explore`, { replace: true });
        }
        savedList.reload();
      },
      (error) => setSaveState({ busy: false, notice: null, error }),
    );
  };

  const form = forms[type];
  const filterErrors = filterErrorsByPath(errors, 'exploration-');
  const controls = { form, setForm, catalog, errors };

  return (
    <section class="reporting explore">
      <p class="crumbs">
        <Link href={`/apps/${encodeURIComponent(appId)}`}>{appId}</Link> / explore{' '}
        · <Link href={`/apps/${encodeURIComponent(appId)}/dashboards`}>Dashboards</Link>
      </p>
      <h1>Explore</h1>
      <ErrorBox error={catalogError} />
      {catalogLoaded && !catalogError && catalog.events.length === 0 && (
        <p class="notice" id="catalog-empty">No events in this app's metadata yet: the pickers fill once the metadata scan has run.</p>
      )}
      <ErrorBox error={openError} />

      <div class="explore-layout">
        <form id="exploration-form" class="card" onSubmit={run} novalidate>
          <div class="row">
            <Field label="Exploration" id="exploration-type" error={errors['exploration-type']}>
              <select id="exploration-type" name="type" value={type} onChange={(event) => {
                setType(event.currentTarget.value);
                setErrors({});
                setFormError(null);
              }}>
                {TYPES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
              </select>
            </Field>
            <Field label="From" id="exploration-from" error={errors['exploration-from']}>
              <input type="date" id="exploration-from" name="range.from" value={range.from}
                onChange={(event) => { setRange({ ...range, from: event.currentTarget.value }); clear('exploration-from', 'exploration-to'); }} />
            </Field>
            <Field label="To" id="exploration-to" error={errors['exploration-to']}>
              <input type="date" id="exploration-to" name="range.to" value={range.to}
                onChange={(event) => { setRange({ ...range, to: event.currentTarget.value }); clear('exploration-from', 'exploration-to'); }} />
            </Field>
          </div>

          {type === 'event' && <EventForm {...controls} />}
          {type === 'funnel' && <FunnelForm {...controls} />}
          {type === 'path' && <PathForm {...controls} />}
          {type === 'retention' && <RetentionForm {...controls} />}
          {type === 'attribution' && <AttributionForm {...controls} />}

          <FiltersEditor prefix="exploration-" catalog={catalog} rows={filterRows} onChange={changeFilters} errors={filterErrors} />

          <div class="actions">
            <button type="submit" id="run-exploration" disabled={result.state === 'loading'}>Run</button>
            <button type="button" id="export-csv" class="secondary" disabled={exportState.busy} onClick={exportCsv}>Export CSV</button>
          </div>
          <ErrorBox error={formError} />
          <ErrorBox error={exportState.error} id="export-error" />

          {canOperate && (
            <div class="save-row">
              <Field label={editing ? 'Name (saved exploration)' : 'Name'} id="exploration-name" error={errors['exploration-name']}>
                <input id="exploration-name" name="name" value={name} onInput={(event) => { setName(event.currentTarget.value); clear('exploration-name'); }} />
              </Field>
              <div class="actions">
                <button type="button" id="save-exploration" disabled={saveState.busy} onClick={() => save(false)}>{editing ? 'Save changes' : 'Save'}</button>
                {editing && <button type="button" id="save-exploration-as-new" class="secondary" disabled={saveState.busy} onClick={() => save(true)}>Save as new</button>}
                {saveState.notice && <span class="ok" id="exploration-saved">{saveState.notice}</span>}
              </div>
              <ErrorBox error={saveState.error} id="save-error" />
            </div>
          )}
        </form>

        <SavedList appId={appId} list={savedList} editingId={editing?.id} canOperate={canOperate} onOpen={openSaved} onDelete={deleteSaved} />
      </div>

      <Result result={result} />
    </section>
  );
}

// ---- the forms of the five types ----------------------------------------------------------

function EventForm({ form, setForm, catalog, errors }) {
  const toggle = (name, checked) => setForm({ events: checked ? [...form.events, name] : form.events.filter((event) => event !== name) }, 'event-events');
  const events = [...catalog.events, ...form.events.filter((name) => !catalog.events.includes(name))];
  return (
    <div class="type-form">
      <fieldset class={errors['event-events'] ? 'field checks invalid' : 'field checks'} id="event-events">
        <legend>Events (none checked: every event)</legend>
        {events.map((name) => (
          <label class="check" key={name}>
            <input type="checkbox" id={`event-event-${name}`} name="events" value={name} checked={form.events.includes(name)}
              onChange={(event) => toggle(name, event.currentTarget.checked)} /> {name}
          </label>
        ))}
        <FieldError id="event-events-error" message={errors['event-events']} />
      </fieldset>
      <div class="row">
        <Field label="Measure" id="event-measure" error={errors['event-measure']}>
          <select id="event-measure" name="measure" value={form.measure} onChange={(event) => setForm({ measure: event.currentTarget.value }, 'event-measure', 'event-sum-parameter')}>
            <option value="count">Number of events</option>
            <option value="users">Users</option>
            <option value="sum">Sum of a value</option>
          </select>
        </Field>
        <Field label="Sum of" id="event-sum-parameter" error={errors['event-sum-parameter']}>
          <select id="event-sum-parameter" name="measure.sum.event_parameter" value={form.sum_parameter} disabled={form.measure !== 'sum'}
            onChange={(event) => setForm({ sum_parameter: event.currentTarget.value }, 'event-sum-parameter')}>
            <option value="">event_value</option>
            {withValue(catalog.event_parameters, form.sum_parameter).map((name) => <option key={name} value={name}>{name}</option>)}
          </select>
        </Field>
        <Field label="Granularity" id="event-granularity" error={errors['event-granularity']}>
          <GranularitySelect id="event-granularity" value={form.granularity} onChange={(granularity) => setForm({ granularity }, 'event-granularity')} />
        </Field>
        <Field label="Group by" id="event-group-by" error={errors['event-group-by']}>
          <FieldSelect id="event-group-by" name="group_by" catalog={catalog} none="— no grouping —" value={form.group_by}
            onChange={(group_by) => setForm({ group_by }, 'event-group-by')} />
        </Field>
      </div>
    </div>
  );
}

function FunnelForm({ form, setForm, catalog, errors }) {
  const setStep = (index, value) => setForm({ steps: form.steps.map((step, at) => (at === index ? value : step)) }, `funnel-step-${index}`, 'funnel-steps');
  return (
    <div class="type-form">
      <fieldset class="field steps-list" id="funnel-steps">
        <legend>Steps (2 to 10, in order)</legend>
        <ol>
          {form.steps.map((step, index) => (
            <li key={index} class={errors[`funnel-step-${index}`] ? 'invalid' : undefined}>
              <EventSelect id={`funnel-step-${index}`} name={`steps[${index}]`} events={catalog.events} value={step} onChange={(value) => setStep(index, value)} />
              <button type="button" class="secondary" id={`remove-funnel-step-${index}`} disabled={form.steps.length <= 2}
                onClick={() => setForm({ steps: form.steps.filter((_, at) => at !== index) }, 'funnel-steps')}>Remove</button>
              <FieldError id={`funnel-step-${index}-error`} message={errors[`funnel-step-${index}`]} />
            </li>
          ))}
        </ol>
        <button type="button" class="secondary" id="add-funnel-step" disabled={form.steps.length >= 10}
          onClick={() => setForm({ steps: [...form.steps, ''] }, 'funnel-steps')}>Add step</button>
        <FieldError id="funnel-steps-error" message={errors['funnel-steps']} />
      </fieldset>
      <div class="row">
        <WindowField prefix="funnel" label="Every step within" form={form} setForm={setForm} errors={errors} />
        <Field label="Group by (value at step 1)" id="funnel-group-by" error={errors['funnel-group-by']}>
          <FieldSelect id="funnel-group-by" name="group_by" catalog={catalog} none="— no grouping —" value={form.group_by}
            onChange={(group_by) => setForm({ group_by }, 'funnel-group-by')} />
        </Field>
      </div>
    </div>
  );
}

function PathForm({ form, setForm, catalog, errors }) {
  return (
    <div class="type-form">
      <div class="row">
        <Field label="Nodes" id="path-node" error={errors['path-node']}>
          <select id="path-node" name="node" value={form.node} onChange={(event) => setForm({ node: event.currentTarget.value }, 'path-node', 'path-start')}>
            <option value="event">Events</option>
            <option value="page">Pages (URL path of page views)</option>
            <option value="screen">Screens (screen views)</option>
          </select>
        </Field>
        <Field label="A path is" id="path-split" error={errors['path-split']}>
          <select id="path-split" name="split" value={form.split} onChange={(event) => setForm({ split: event.currentTarget.value }, 'path-split', 'path-gap-minutes')}>
            <option value="session">One session</option>
            <option value="gap">Events without a long gap</option>
          </select>
        </Field>
        <Field label="Gap (minutes)" id="path-gap-minutes" error={errors['path-gap-minutes']}>
          <input type="number" min="1" max="1440" step="any" id="path-gap-minutes" name="split.gap.gap_seconds" value={form.gap_minutes} disabled={form.split !== 'gap'}
            onInput={(event) => setForm({ gap_minutes: event.currentTarget.value }, 'path-gap-minutes')} />
        </Field>
      </div>
      <div class="row">
        <Field label="Start at (optional)" id="path-start" error={errors['path-start']}
          hint={form.node === 'event' ? 'an event name' : form.node === 'page' ? 'a URL path, e.g. /home' : 'a screen name'}>
          <input id="path-start" name="start" value={form.start} list={form.node === 'event' ? 'path-start-events' : undefined} placeholder="the path's first node"
            onInput={(event) => setForm({ start: event.currentTarget.value }, 'path-start')} />
          <datalist id="path-start-events">{catalog.events.map((name) => <option key={name} value={name} />)}</datalist>
        </Field>
        <Field label="Steps (2 to 10)" id="path-max-steps" error={errors['path-max-steps']}>
          <input type="number" min="2" max="10" id="path-max-steps" name="max_steps" value={form.max_steps}
            onInput={(event) => setForm({ max_steps: event.currentTarget.value }, 'path-max-steps')} />
        </Field>
        <Field label="Top flows per step (1 to 100)" id="path-top-flows" error={errors['path-top-flows']}>
          <input type="number" min="1" max="100" id="path-top-flows" name="top_flows_per_step" value={form.top_flows}
            onInput={(event) => setForm({ top_flows: event.currentTarget.value }, 'path-top-flows')} />
        </Field>
      </div>
    </div>
  );
}

function RetentionForm({ form, setForm, catalog, errors }) {
  return (
    <div class="type-form">
      <div class="row">
        <Field label="Cohort: first" id="retention-start-event" error={errors['retention-start-event']}>
          <EventSelect id="retention-start-event" name="start_event" events={catalog.events} value={form.start_event}
            onChange={(start_event) => setForm({ start_event }, 'retention-start-event')} />
        </Field>
        <Field label="Came back with" id="retention-return-event" error={errors['retention-return-event']}>
          <EventSelect id="retention-return-event" name="return_event" events={catalog.events} value={form.return_event}
            onChange={(return_event) => setForm({ return_event }, 'retention-return-event')} />
        </Field>
        <Field label="Periods of" id="retention-granularity" error={errors['retention-granularity']}>
          <GranularitySelect id="retention-granularity" value={form.granularity} onChange={(granularity) => setForm({ granularity }, 'retention-granularity')} />
        </Field>
        <Field label="Periods after (1 to 52)" id="retention-periods" error={errors['retention-periods']}>
          <input type="number" min="1" max="52" id="retention-periods" name="periods" value={form.periods}
            onInput={(event) => setForm({ periods: event.currentTarget.value }, 'retention-periods')} />
        </Field>
      </div>
    </div>
  );
}

function AttributionForm({ form, setForm, catalog, errors }) {
  const toggle = (name, checked) => setForm({ touchpoints: checked ? [...form.touchpoints, name] : form.touchpoints.filter((event) => event !== name) }, 'attribution-touchpoints');
  const touchpoints = [...catalog.events, ...form.touchpoints.filter((name) => !catalog.events.includes(name))];
  return (
    <div class="type-form">
      <div class="row">
        <Field label="Conversion" id="attribution-conversion-event" error={errors['attribution-conversion-event']}>
          <EventSelect id="attribution-conversion-event" name="conversion_event" events={catalog.events} value={form.conversion_event}
            onChange={(conversion_event) => setForm({ conversion_event }, 'attribution-conversion-event')} />
        </Field>
        <Field label="Value shared out" id="attribution-value-parameter" error={errors['attribution-value-parameter']}>
          <select id="attribution-value-parameter" name="value_parameter" value={form.value_parameter}
            onChange={(event) => setForm({ value_parameter: event.currentTarget.value }, 'attribution-value-parameter')}>
            <option value="">event_value</option>
            {withValue(catalog.event_parameters, form.value_parameter).map((name) => <option key={name} value={name}>{name}</option>)}
          </select>
        </Field>
      </div>
      <fieldset class={errors['attribution-touchpoints'] ? 'field checks invalid' : 'field checks'} id="attribution-touchpoints">
        <legend>Touch points (1 to 20)</legend>
        {touchpoints.map((name) => (
          <label class="check" key={name}>
            <input type="checkbox" id={`attribution-touchpoint-${name}`} name="touchpoints" value={name} checked={form.touchpoints.includes(name)}
              onChange={(event) => toggle(name, event.currentTarget.checked)} /> {name}
          </label>
        ))}
        <FieldError id="attribution-touchpoints-error" message={errors['attribution-touchpoints']} />
      </fieldset>
      <div class="row">
        <Field label="Model" id="attribution-model" error={errors['attribution-model']}>
          <select id="attribution-model" name="model" value={form.model} onChange={(event) => setForm({ model: event.currentTarget.value }, 'attribution-model', 'attribution-half-life-hours')}>
            {MODELS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </Field>
        <Field label="Half-life (hours)" id="attribution-half-life-hours" error={errors['attribution-half-life-hours']}>
          <input type="number" min="0" step="any" id="attribution-half-life-hours" name="model.time_decay.half_life_seconds" value={form.half_life_hours}
            disabled={form.model !== 'time_decay'} onInput={(event) => setForm({ half_life_hours: event.currentTarget.value }, 'attribution-half-life-hours')} />
        </Field>
        <WindowField prefix="attribution" label="Touch points within" form={form} setForm={setForm} errors={errors} />
      </div>
    </div>
  );
}

/** `#<prefix>-window-value` + `#<prefix>-window-unit`, sent as `window_seconds`. */
function WindowField({ prefix, label, form, setForm, errors }) {
  const id = `${prefix}-window-value`;
  return (
    <div class={errors[id] ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      <span class="inline">
        <input type="number" min="0" step="any" id={id} name="window_seconds" value={form.window_value} onInput={(event) => setForm({ window_value: event.currentTarget.value }, id)} />
        <select id={`${prefix}-window-unit`} name="window_unit" aria-label="unit" value={form.window_unit} onChange={(event) => setForm({ window_unit: event.currentTarget.value }, id)}>
          {Object.keys(UNITS).map((unit) => <option key={unit} value={unit}>{unit}</option>)}
        </select>
      </span>
      <FieldError id={`${id}-error`} message={errors[id]} />
    </div>
  );
}

function GranularitySelect({ id, value, onChange }) {
  return (
    <select id={id} name="granularity" value={value} onChange={(event) => onChange(event.currentTarget.value)}>
      <option value="day">Day</option>
      <option value="week">Week (from Monday)</option>
      <option value="month">Month</option>
    </select>
  );
}

/** The catalog's names plus `value` if the catalog does not list it (a saved query). */
const withValue = (list, value) => (value && !list.includes(value) ? [...list, value] : list);

// ---- saved explorations ---------------------------------------------------------------------

function SavedList({ appId, list, editingId, canOperate, onOpen, onDelete }) {
  const [csvError, setCsvError] = useState(null);
  const items = Array.isArray(list.data) ? list.data : [];
  const csv = async (item) => {
    setCsvError(null);
    try {
      const text = await apiText('GET', `/apps/${seg(appId)}/explorations/${seg(item.id)}/csv`);
      downloadText(`${String(item.name || item.id).replace(/[^\w.-]+/g, '_')}.csv`, text);
    } catch (error) {
      setCsvError(error);
    }
  };
  return (
    <aside class="card saved">
      <h2>Saved explorations</h2>
      <ErrorBox error={list.error} />
      <ErrorBox error={csvError} />
      {list.loading && <p>Loading…</p>}
      <ul id="saved-explorations">
        {items.map((item) => {
          const id = String(item.id);
          const href = `/apps/${encodeURIComponent(appId)}/explore?saved=${encodeURIComponent(id)}`;
          const open = (event) => {
            if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
            event.preventDefault();
            onOpen(item); // first: the page then knows this id and does not fetch it again
            navigate(href);
          };
          return (
            <li key={id} data-saved={id} class={id === editingId ? 'current' : undefined}>
              <a href={href} data-saved-id={id} onClick={open}>{item.name}</a>
              <small class="hint"> {item.query?.type} · v{item.version}{item.created_by ? ` · ${item.created_by}` : ''}</small>
              <span class="saved-actions">
                <button type="button" class="secondary small" id={`download-saved-${id}`} onClick={() => csv(item)}>CSV</button>
                {canOperate && <ConfirmButton id={`delete-saved-${id}`} label="Delete" question="Delete?" onConfirm={() => onDelete(id)} />}
              </span>
            </li>
          );
        })}
        {!list.loading && items.length === 0 && <li class="empty" id="no-saved-explorations">Nothing saved yet.</li>}
      </ul>
    </aside>
  );
}

// ---- the result ---------------------------------------------------------------------------

/**
 * `#exploration-result`: `data-state` idle | loading | ready | empty | error, `data-run` the
 * number of the latest run (tests wait for it to move), `data-type` the type that ran. The
 * chart is created on the first run and then redrawn in place; `table#result-table` always
 * holds the raw rows.
 */
function Result({ result }) {
  const { state, type, body, table } = result;
  const shown = (state === 'ready' || state === 'empty') && table;
  const option = useMemo(() => (shown && table.rows.length > 0 ? chartOption(type, body, table) : null), [shown, type, body, table]);
  return (
    <div id="exploration-result" class="card result" data-state={state} data-run={result.run} data-type={type || undefined}>
      <h2>Result</h2>
      {state === 'idle' && <p class="hint">Choose what to explore and press Run.</p>}
      {state === 'loading' && <p class="hint">Running…</p>}
      {state === 'error' && <ErrorBox error={result.error} id="exploration-error" />}
      {state === 'empty' && <p class="empty">No data for this query and range.</p>}
      {result.run > 0 && (
        <div class={option ? 'result-chart' : 'result-chart hidden'}>
          <Chart option={option} id="result-chart" height={type === 'path' ? 460 : 320} />
        </div>
      )}
      {shown && table.rows.length > 0 && <Details type={type} body={body} table={table} />}
      {shown && (
        <details class="raw" open>
          <summary>Rows</summary>
          <DataTable table={table} id="result-table" className="result-table" />
        </details>
      )}
    </div>
  );
}

function chartOption(type, body, table) {
  switch (type) {
    case 'event': {
      const event = column(table, 'event_name');
      const group = column(table, 'group_value');
      const grouped = Boolean(body.group_by);
      return lineOption(table, { seriesOf: (row) => (grouped ? `${cellText(row[event])} · ${row[group] ?? '(none)'}` : cellText(row[event])) });
    }
    case 'funnel': {
      const groups = funnelGroups(table, body.steps);
      const categories = body.steps.map((step, index) => `${index + 1}. ${step}`);
      return groupedBarOption(
        categories,
        groups.map((g) => ({ name: g.group === null ? (body.group_by ? '(none)' : 'users') : String(g.group), values: g.steps.map((step) => step.users) })),
        { labels: groups.map((g) => g.steps.map((step) => `${step.users} (${percentText(step.fromFirst)})`)) },
      );
    }
    case 'path':
      return sankeyOption(table);
    case 'retention': {
      const curve = retentionCurve(cohortGrid(table));
      return pointsLineOption(curve.map((point) => `+${point.offset}`), [{ name: 'retained (% of cohort users)', values: curve.map((point) => point.percent) }], { unit: '%' });
    }
    case 'attribution': {
      const touchpoint = column(table, 'touchpoint');
      const credited = column(table, 'credited_conversions');
      return barOption(table.rows.map((row) => row[touchpoint]), table.rows.map((row) => row[credited]), { name: 'credited conversions' });
    }
    default:
      return null;
  }
}

/** What the chart alone does not say: conversion rates, the cohort grid, totals. */
function Details({ type, body, table }) {
  if (type === 'funnel') {
    const groups = funnelGroups(table, body.steps);
    return (
      <table id="funnel-conversion" class="conversion">
        <thead><tr>{body.group_by && <th>Group</th>}<th>Step</th><th>Event</th><th>Users</th><th>From step 1</th><th>From previous</th></tr></thead>
        <tbody>
          {groups.flatMap((g) => g.steps.map((step) => (
            <tr key={`${g.group}/${step.step}`}>
              {body.group_by && <td>{g.group ?? '(none)'}</td>}
              <td>{step.step}</td><td>{step.event}</td><td class="num">{step.users}</td>
              <td class="num">{percentText(step.fromFirst)}</td><td class="num">{percentText(step.fromPrevious)}</td>
            </tr>
          )))}
        </tbody>
      </table>
    );
  }
  if (type === 'retention') return <CohortGrid table={table} id="retention-cohorts" />;
  if (type === 'attribution') {
    const total = column(table, 'total_conversions');
    return <p id="attribution-total">Conversions in the range: <strong>{cellText(table.rows[0]?.[total])}</strong> (those without a touch point in the window are credited to none).</p>;
  }
  return null;
}
