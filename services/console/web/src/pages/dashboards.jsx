// `/apps/{app}/dashboards/{page}`: the reporting dashboards (docs/reporting.md). One request
// per page answers every panel; the range and filters live in the URL (`?from=&to=&filters=`)
// so that a dashboard can be linked, reloaded, and keeps them when switching pages.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Chart, barOption, lineOption } from '../charts.jsx';
import { Link, navigate, useLocation } from '../router.jsx';
import { ErrorBox, FieldError } from '../ui.jsx';
import { CohortGrid, DataTable, FiltersEditor, errorsByControl, filterErrorsByPath, filterProblems, filtersFromApi, filtersToApi, useCatalog } from '../reporting.jsx';
import { addDays, cellText, column, localToday, rangeProblems } from '../tables.js';

const REALTIME_REFRESH_MS = 10000;

/**
 * The pages and their panels as the contract lists them: the layout shown while the first
 * answer is on its way (so the page does not jump), and the panels tests can wait for. The
 * server's answer is authoritative: its panels and titles replace these.
 */
export const DASHBOARD_PAGES = {
  overview: ['Overview', [['kpis', 'Key figures', 'kpi'], ['active_users', 'Active and new users', 'line'], ['events', 'Events and sessions', 'line'], ['top_events', 'Top events', 'bar']]],
  acquisition: ['Acquisition', [['new_users_by_source', 'New users by source', 'bar'], ['users_by_channel', 'Users by channel', 'bar'], ['users_by_country', 'Users by country', 'bar'], ['new_users', 'New users', 'line']]],
  engagement: ['Engagement', [['views', 'Views', 'line'], ['top_pages', 'Top pages', 'table'], ['top_screens', 'Top screens', 'table'], ['entry_pages', 'Entry pages', 'bar'], ['exit_pages', 'Exit pages', 'bar']]],
  retention: ['Retention', [['cohorts', 'Weekly cohorts', 'cohort'], ['new_vs_returning', 'New and returning users', 'line'], ['active_users_rolling', 'Daily, weekly and monthly active users', 'line'], ['stickiness', 'Stickiness', 'line']]],
  device: ['Device', [['platform', 'Platform', 'bar'], ['operating_system', 'Operating system', 'bar'], ['browser', 'Browser', 'bar'], ['model', 'Device model', 'bar'], ['resolution', 'Screen resolution', 'bar'], ['app_version', 'App version', 'bar']]],
  details: ['Details', [['user_attributes', 'User attributes', 'table'], ['event_parameters', 'Event parameters', 'table']]],
  realtime: ['Realtime', [['kpis', 'Last 30 minutes', 'kpi'], ['events_per_minute', 'Events per minute', 'line'], ['top_events', 'Top events', 'bar']]],
};

/** `?from=&to=&filters=` of a dashboard URL (empty parts left out: the server's defaults). */
function dashboardSearch({ from, to, filters }) {
  const params = new URLSearchParams();
  if (from) params.set('from', from);
  if (to) params.set('to', to);
  if (filters) params.set('filters', filters);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The URL's filters (JSON of API conditions); a hand-edited, unreadable one is reported. */
function parseFilters(text) {
  if (!text) return { conditions: [], problem: null };
  try {
    const conditions = JSON.parse(text);
    if (!Array.isArray(conditions)) throw new Error('not a list');
    return { conditions, problem: null };
  } catch (error) {
    return { conditions: [], problem: `The filters in the address are not readable (${error.message}); they are ignored.` };
  }
}

/**
 * Loads one dashboard page; the realtime page again every 10 s (after the previous answer,
 * so a slow API never gets overlapping requests). Keeps the last answer of the same page on
 * screen while a new one loads. `status`: loading | ready | error.
 */
function useDashboard(appId, page, from, to, filters) {
  const [state, setState] = useState({ status: 'loading', answer: null, error: null, at: null });
  useEffect(() => {
    if (!page) return undefined; // an unknown page: nothing to ask
    let stopped = false;
    let timer = null;
    setState((old) => ({ status: 'loading', answer: old.answer?.page === page ? old.answer : null, error: null, at: old.at }));
    const path = `/apps/${seg(appId)}/dashboards/${seg(page)}${dashboardSearch({ from, to, filters })}`;
    const run = async () => {
      try {
        const answer = await api('GET', path);
        // `page` and `filters` tag the answer with what was asked (tests wait for them).
        if (!stopped) setState({ status: 'ready', answer: { ...answer, page, filters }, error: null, at: new Date() });
      } catch (error) {
        if (!stopped) setState((old) => ({ status: 'error', answer: old.answer, error, at: old.at }));
      } finally {
        if (!stopped && page === 'realtime') timer = setTimeout(run, REALTIME_REFRESH_MS);
      }
    };
    run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [appId, page, from, to, filters]);
  return state;
}

// Where the server's 400 `fields` of a dashboard request go (filters: the editor's rows).
const DASHBOARD_ERROR_RULES = [
  [/^(range\.)?from$/, 'range-from'],
  [/^(range(\.to)?|to)$/, 'range-to'],
];

export function DashboardsPage({ appId, page }) {
  const { query } = useLocation();
  const from = query.get('from') || '';
  const to = query.get('to') || '';
  const filtersParam = query.get('filters') || '';
  const known = Object.hasOwn(DASHBOARD_PAGES, page);
  const { catalog, error: catalogError } = useCatalog(appId);
  const dashboard = useDashboard(appId, known ? page : null, from, to, filtersParam);
  const applied = useMemo(() => parseFilters(filtersParam), [filtersParam]);

  // The inputs: the URL's range, else the answer's (the server's default range is in the
  // app's time zone; the browser's guess below only fills the inputs until it arrives).
  const [draft, setDraft] = useState(() => ({ from: from || addDays(localToday(), -6), to: to || localToday() }));
  const [filterRows, setFilterRows] = useState(() => filtersFromApi(applied.conditions));
  const [clientErrors, setClientErrors] = useState({});
  // The server's errors about filters name rows by position: once the rows are edited they
  // may point at the wrong row, so they are hidden until the next answer.
  const [rowsEdited, setRowsEdited] = useState(false);
  useEffect(() => setRowsEdited(false), [dashboard.error]);
  const editFilters = (rows) => {
    setFilterRows(rows);
    setRowsEdited(true);
    setClientErrors(withoutFilters);
  };
  useEffect(() => {
    const answer = dashboard.answer;
    if (from && to) setDraft({ from, to }); // e.g. back in history to another range
    else if (answer?.from && answer?.to) setDraft({ from: answer.from, to: answer.to });
  }, [dashboard.answer, from, to]);
  useEffect(() => setFilterRows(filtersFromApi(applied.conditions)), [applied]);

  const go = (change) => {
    const next = { from, to, filters: filtersParam, ...change };
    navigate(`/apps/${encodeURIComponent(appId)}/dashboards/${page}${dashboardSearch(next)}`, { replace: true });
  };

  const changeRange = (field, value) => {
    const range = { ...draft, [field]: value };
    setDraft(range);
    const problems = rangeProblems(range);
    setClientErrors((old) => ({ ...withoutRange(old), ...problems }));
    if (Object.keys(problems).length === 0) go({ from: range.from, to: range.to });
  };

  const applyFilters = () => {
    const problems = filterProblems(filterRows);
    setClientErrors((old) => ({ ...withoutFilters(old), ...problems }));
    if (Object.keys(problems).length > 0) return;
    go({ filters: filterRows.length > 0 ? JSON.stringify(filtersToApi(filterRows)) : '' });
  };

  // Client-side problems first; the server's answer to the current URL after them.
  const serverFields = Object.entries((dashboard.status === 'error' && dashboard.error?.fields) || {})
    .filter(([path]) => !(rowsEdited && path.startsWith('filters')));
  const server = errorsByControl(Object.fromEntries(serverFields), DASHBOARD_ERROR_RULES, '');
  const client = errorsByControl(clientErrors, DASHBOARD_ERROR_RULES, '');
  const byControl = { ...server.byControl, ...client.byControl };
  if (dashboard.error) dashboard.error.unmatchedFields = server.unmatched; // shown by ErrorBox
  const filterErrors = filterErrorsByPath(byControl, '');
  const realtime = page === 'realtime';

  return (
    <section class="reporting">
      <p class="crumbs">
        <Link href={`/apps/${encodeURIComponent(appId)}`}>{appId}</Link> / dashboards{' '}
        · <Link id="explore-link-dashboards" href={`/apps/${encodeURIComponent(appId)}/explore`}>Explore</Link>
      </p>
      <h1>Dashboards</h1>
      <nav id="dashboard-nav" class="tabs">
        {Object.entries(DASHBOARD_PAGES).map(([name, [title]]) => (
          <Link key={name} data-page={name} class={name === page ? 'current' : undefined} aria-current={name === page ? 'page' : undefined}
            href={`/apps/${encodeURIComponent(appId)}/dashboards/${name}${location.search}`}>{title}</Link>
        ))}
      </nav>

      <div class="card controls">
        <div class="range">
          <div class={byControl['range-from'] ? 'field invalid' : 'field'}>
            <label for="range-from">From</label>
            <input type="date" id="range-from" name="from" value={draft.from} disabled={realtime} onChange={(event) => changeRange('from', event.currentTarget.value)} />
            <FieldError id="range-from-error" message={byControl['range-from']} />
          </div>
          <div class={byControl['range-to'] ? 'field invalid' : 'field'}>
            <label for="range-to">To</label>
            <input type="date" id="range-to" name="to" value={draft.to} disabled={realtime} onChange={(event) => changeRange('to', event.currentTarget.value)} />
            <FieldError id="range-to-error" message={byControl['range-to']} />
          </div>
          <p class="hint" id="dashboard-status">
            {realtime
              ? `The last 30 minutes, whatever the range; refreshed every ${REALTIME_REFRESH_MS / 1000} s${dashboard.at ? ` (last: ${dashboard.at.toLocaleTimeString()})` : ''}.`
              : dashboard.answer ? `${dashboard.answer.from} to ${dashboard.answer.to}, days in ${dashboard.answer.timezone || 'the app’s time zone'}.` : 'Days are in the app’s time zone.'}
          </p>
        </div>
        <FiltersEditor prefix="" catalog={catalog} rows={filterRows} onChange={editFilters} errors={filterErrors} />
        <div class="actions">
          <button type="button" id="apply-filters" onClick={applyFilters}>Apply filters</button>
          {applied.conditions.length > 0 && <span class="hint">{applied.conditions.length} filter{applied.conditions.length === 1 ? '' : 's'} applied</span>}
        </div>
        {applied.problem && <div class="error" role="alert">{applied.problem}</div>}
        <ErrorBox error={catalogError} />
      </div>

      {!known ? (
        <div class="error" role="alert">No dashboard page “{page}”: choose one above.</div>
      ) : (
        <>
          <ErrorBox error={dashboard.error} id="dashboard-error" />
          <Panels page={page} dashboard={dashboard} />
        </>
      )}
    </section>
  );
}

const withoutRange = (errors) => Object.fromEntries(Object.entries(errors).filter(([path]) => !path.startsWith('range')));
const withoutFilters = (errors) => Object.fromEntries(Object.entries(errors).filter(([path]) => !path.startsWith('filters')));

/**
 * The panels of the page: the answer's when it is for this page, else the contract's layout
 * (loading). `#dashboard` carries the state and the range of the answer on screen, so tests
 * can wait for the answer to the range they asked for.
 */
function Panels({ page, dashboard }) {
  const answer = dashboard.answer?.page === page ? dashboard.answer : null;
  const panels = answer
    ? answer.panels || []
    : DASHBOARD_PAGES[page][1].map(([id, title, chart]) => ({ id, title, chart, table: null }));
  return (
    <div id="dashboard" class={`panels panels-${page}`} data-page={page} data-state={dashboard.status}
      data-from={answer?.from} data-to={answer?.to} data-filters={answer ? answer.filters : undefined}>
      {panels.map((panel) => {
        let state = dashboard.status;
        if (state === 'ready') state = panel.table && panel.table.rows.length > 0 ? 'ready' : 'empty';
        // Keyed by page: a new page disposes the old charts instead of reusing them.
        return <Panel key={`${page}/${panel.id}`} panel={panel} state={state} />;
      })}
    </div>
  );
}

/** One panel: title, the chart its kind asks for, and its data as `table.panel-table`. */
function Panel({ panel, state }) {
  const { id, title, chart, table } = panel;
  return (
    <section class="panel" id={`panel-${id}`} data-state={state} data-chart={chart}
      data-rows={table ? table.rows.length : undefined}>
      <h2 class="panel-title">{title}</h2>
      <div class="panel-body">
        <PanelChart chart={chart} table={table} id={id} />
        {/* Tables and grids say so themselves; an empty chart needs the words over it. */}
        {state === 'empty' && (chart === 'line' || chart === 'bar') && <p class="panel-note empty">No data in this range.</p>}
        {state === 'loading' && !table && <p class="panel-note">Loading…</p>}
        {state === 'error' && <p class="panel-note">Not available: see the error above.</p>}
      </div>
      {table && chart !== 'table' && (
        <details class="panel-data">
          <summary>Data</summary>
          <DataTable table={table} className="panel-table" />
        </details>
      )}
    </section>
  );
}

const EMPTY_TABLE = { columns: [], rows: [] };

function PanelChart({ chart, table, id }) {
  switch (chart) {
    case 'kpi':
      return <Kpis table={table || EMPTY_TABLE} />;
    case 'line':
      return <LinePanel table={table} id={id} />;
    case 'bar':
      return <BarPanel table={table} id={id} />;
    case 'cohort':
      return table ? <CohortGrid table={table} id={`cohort-${id}`} /> : null;
    default:
      // `table`, and any kind this console does not know yet: the table is the chart.
      return table ? <DataTable table={table} className="panel-table" /> : null;
  }
}

const humanise = (name) => name.replace(/_/g, ' ');

/** One figure per column; `#kpi-<column>`'s text is exactly the number. */
function Kpis({ table }) {
  const row = table.rows[0] || [];
  return (
    <div class="kpis">
      {table.columns.map((name, index) => (
        <div class="kpi" key={name}>
          <span class="kpi-label">{humanise(name)}</span>
          <strong id={`kpi-${name}`}>{cellText(row[index])}</strong>
        </div>
      ))}
    </div>
  );
}

function LinePanel({ table, id }) {
  const option = useMemo(() => (table ? lineOption(table) : null), [table]);
  return <Chart option={option} id={`chart-${id}`} />;
}

function BarPanel({ table, id }) {
  const option = useMemo(() => {
    if (!table) return null;
    // `label`, `value` by contract; the first and last columns if a table says otherwise.
    const label = column(table, 'label') >= 0 ? column(table, 'label') : 0;
    const value = column(table, 'value') >= 0 ? column(table, 'value') : table.columns.length - 1;
    return barOption(table.rows.map((row) => row[label]), table.rows.map((row) => row[value]), { name: table.columns[value] });
  }, [table]);
  const height = Math.max(160, Math.min(420, 36 + 26 * (table?.rows.length || 5)));
  return <Chart option={option} id={`chart-${id}`} height={height} />;
}
