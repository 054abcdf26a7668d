// End-to-end test of the console's reporting pages in headless Chromium: every dashboard page
// renders (each panel ready or empty, none in error) with the expected key figures, and the
// Explore page runs one exploration of each type through its form with the expected numbers,
// saves one, opens it again from the saved list after a reload, and exports a CSV.
//
//   CONSOLE_URL=http://127.0.0.1:3000 APP_ID=shop_web FROM=2026-11-02 TO=2026-11-15 \
//   EXPECT='{"kpis": {...}, "event": {...}, ...}' TIMEOUT_SECONDS=240 ARTIFACTS_DIR=/tmp/a \
//   [LOGIN=admin-user] [RENDER_BUDGET_MS=5000] node reporting.mjs
//
// LOGIN is needed only when the console has authentication on (as in console.mjs, the issuer's
// dev login form is filled); with auth off (#auth-off) there is nothing to sign in to.
// RENDER_BUDGET_MS (optional) fails the run when a dashboard page takes longer to settle.
//
// EXPECT (JSON; every section optional; numbers compared as numbers, 1e-6 tolerance):
//   kpis:        {"<column>": n, …}   the overview's #kpi-<column> texts. With both `events`
//                and `page_views`, a filter event_name = _page_view must make events = page_views.
//   event:       {events: [names], measure: "count"|"users"|"sum", sum_parameter?: name,
//                granularity: "day"|"week"|"month", total: n}  total = sum of `value` rows
//   funnel:      {steps: [names], window_seconds: n, users: [n per step]}  (ungrouped)
//   path:        {node: "event"|"page"|"screen", start?: node, max_steps?: n,
//                gap_minutes?: n (else split by session), flows: [[step, source, target, paths]]}
//                every listed flow must be a row
//   retention:   {start_event, return_event, granularity, periods,
//                rows: [[cohort, cohort_users, period_offset, returned_users]]} each must be a row
//   attribution: {conversion_event, touchpoints: [names], model: "first_touch"|"last_touch"|
//                "linear"|"position_based"|"time_decay", half_life_seconds?: n, window_seconds,
//                credited: {"<touchpoint>": credited_conversions}}  (a missing row counts as 0)
// A missing section still runs that exploration with the form's defaults where it can and
// only checks that it does not fail.
//
// Prints `dashboard <page>: <ms> ms` per dashboard page (click on the page's tab in
// #dashboard-nav → every panel settled, checked every animation frame) and `REPORTING E2E OK` on stdout when every step passed; logs each step to
// stderr. On failure: a screenshot in $ARTIFACTS_DIR, the page's URL and text, the browser
// console and failed API calls on stderr, exit 1.
// The element ids used here are listed at the top of services/console/web/src/main.jsx.
import { mkdir, readFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import {
  expectOrError, fail, log, openBrowser, remaining, reportFailure, required, signIn, startBudget, step, textOf, until, visibleErrors,
} from './harness.mjs';

const consoleUrl = required('CONSOLE_URL').replace(/\/+$/, '');
const appId = required('APP_ID');
const from = required('FROM');
const to = required('TO');
const login = process.env.LOGIN || '';
const timeoutSeconds = Number(process.env.TIMEOUT_SECONDS || 240);
startBudget(timeoutSeconds);
const artifactsDir = process.env.ARTIFACTS_DIR;
const renderBudgetMs = process.env.RENDER_BUDGET_MS ? Number(process.env.RENDER_BUDGET_MS) : null;
const consoleOrigin = new URL(consoleUrl).origin;
let expect;
try {
  expect = JSON.parse(process.env.EXPECT || '{}');
} catch (error) {
  console.error(`EXPECT is not JSON: ${error.message}`);
  process.exit(2);
}
for (const [name, value] of [['FROM', from], ['TO', to]]) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    console.error(`${name} must be YYYY-MM-DD, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
}

const DASHBOARD_PAGES = ['overview', 'acquisition', 'engagement', 'retention', 'device', 'details', 'realtime'];

/** Same number (1e-6 tolerance), same text, or null for an empty cell. */
function same(cell, expected) {
  if (expected === null) return cell === '' || cell === null;
  if (typeof expected === 'number') return cell !== '' && cell !== null && Math.abs(Number(cell) - expected) < 1e-6;
  return String(cell) === String(expected);
}

/** `table#result-table` → `{columns, rows}` of cell texts ('' for null). */
async function resultTable(page) {
  return page.locator('table#result-table').evaluate((table) => ({
    columns: [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim()),
    rows: [...table.querySelectorAll('tbody tr')]
      .filter((tr) => !tr.querySelector('td.empty'))
      .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())),
  }));
}

function columnOf(table, name) {
  const index = table.columns.indexOf(name);
  if (index < 0) fail(`table#result-table has no column ${JSON.stringify(name)}; columns: ${table.columns.join(', ')}`);
  return index;
}

const show = (table) => [table.columns.join(','), ...table.rows.map((row) => row.join(','))].join('\n  ');

/** Window seconds → `[value, unit]` of the form (the largest unit that divides them). */
function windowControls(seconds) {
  if (seconds % 86400 === 0) return [String(seconds / 86400), 'days'];
  if (seconds % 3600 === 0) return [String(seconds / 3600), 'hours'];
  return [String(seconds / 60), 'minutes'];
}

const byId = (id) => `[id="${id}"]`; // ids built from event names: no CSS escaping needed

const { browser, page, browserLog } = await openBrowser(consoleOrigin, { acceptDownloads: true });
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(error.message));

/** An uncaught exception in the console is a failure of the step that caused it. */
function noPageErrors() {
  if (pageErrors.length > 0) fail(`the console threw: ${pageErrors.join(' | ')}`);
}

// ---- dashboards ---------------------------------------------------------------------------

/**
 * Waits (checking every frame, so the time is exact) until `#dashboard` shows `name` with
 * every panel ready or empty and, except on realtime, the answer for FROM..TO (and for the
 * filters when `filtered` says whether some are applied). Returns the panels' summary.
 */
async function dashboardSettled(name, { filtered = false } = {}) {
  const handle = await page.waitForFunction(({ name, from, to, filtered }) => {
    const board = document.querySelector('#dashboard');
    if (!board || board.dataset.page !== name) return false;
    const panels = [...board.querySelectorAll(':scope > section.panel')];
    const errors = [...document.querySelectorAll('.error')].filter((element) => element.offsetParent !== null).map((element) => element.textContent.trim());
    if (board.dataset.state === 'error' || panels.some((panel) => panel.dataset.state === 'error')) return { error: errors.join(' | ') || 'a panel is in state error' };
    if (board.dataset.state !== 'ready') return false;
    if (name !== 'realtime' && (board.dataset.from !== from || board.dataset.to !== to)) return false;
    if ((board.dataset.filters || '') !== '' !== filtered) return false;
    if (panels.length === 0 || !panels.every((panel) => panel.dataset.state === 'ready' || panel.dataset.state === 'empty')) return false;
    return {
      panels: panels.map((panel) => {
        const table = panel.querySelector('table.panel-table');
        return {
          id: panel.id,
          state: panel.dataset.state,
          chart: panel.dataset.chart,
          rows: panel.dataset.rows,
          title: panel.querySelector('.panel-title')?.textContent.trim() || '',
          tableRows: table ? table.querySelectorAll('tbody tr:not(:has(td.empty))').length : null,
        };
      }),
    };
  }, { name, from, to, filtered }, { polling: 'raf', timeout: remaining() }).catch((error) => fail(`dashboard ${name} did not settle: ${error.message.split('\n')[0]}`));
  const outcome = await handle.jsonValue();
  if (outcome.error) fail(`dashboard ${name}: ${outcome.error}`);
  return outcome.panels;
}

/** Titles, tables matching data-rows, and (ECharts paints a frame later) a canvas per chart. */
async function checkPanels(name, panels) {
  for (const panel of panels) {
    const what = `dashboard ${name}, ${panel.id}`;
    if (!panel.title) fail(`${what}: no title`);
    if (panel.tableRows === null) fail(`${what}: no table.panel-table`);
    if (String(panel.tableRows) !== String(panel.rows)) fail(`${what}: data-rows=${panel.rows} but table.panel-table has ${panel.tableRows} rows`);
    if (panel.state === 'ready' && (panel.chart === 'line' || panel.chart === 'bar')) {
      await until(`${what}: the chart's canvas`, async () => (await page.locator(`#${panel.id} .chart canvas`).count()) > 0, { interval: 100, timeout: 5000 });
    }
  }
}

async function checkKpis(kpis) {
  for (const [name, expected] of Object.entries(kpis)) {
    const text = await page.locator(`#kpi-${name}`).textContent().catch(() => null);
    if (text === null) fail(`overview: no #kpi-${name} (expected ${expected})`);
    if (!same(text.trim(), expected)) fail(`overview: #kpi-${name} shows ${JSON.stringify(text.trim())}, expected ${expected}`);
  }
  log(`key figures as expected: ${JSON.stringify(kpis)}`);
}

// ---- explore ------------------------------------------------------------------------------

/** Runs the form's exploration; returns the result table (fails on any error shown). */
async function runExploration(what) {
  const before = Number(await page.locator('#exploration-result').getAttribute('data-run'));
  const started = Date.now();
  await page.locator('#run-exploration').click();
  await until(`the result of the ${what} exploration`, async () => {
    const fieldErrors = await page.locator('.field-error:visible').allTextContents();
    if (fieldErrors.length > 0) fail(`${what}: the form refused the query: ${fieldErrors.join(' | ')}`);
    const result = page.locator('#exploration-result');
    const run = Number(await result.getAttribute('data-run'));
    const state = await result.getAttribute('data-state');
    if (run <= before) return false;
    if (state === 'error') fail(`${what}: the exploration failed: ${(await visibleErrors(page)).join(' | ')}`);
    return state === 'ready' || state === 'empty';
  }, { interval: 100 });
  noPageErrors();
  const table = await resultTable(page);
  log(`${what}: ${table.rows.length} rows in ${Date.now() - started} ms`);
  return table;
}

async function chooseType(type) {
  await page.locator('#exploration-type').selectOption(type);
  await page.locator('#exploration-type').evaluate((select, type) => select.value === type || Promise.reject(new Error(`type ${type} not selected`)), type);
}

/** Checks exactly the checkboxes of `names` in the fieldset (fails on a name not offered). */
async function checkOnly(fieldset, idPrefix, names) {
  for (const box of await page.locator(`${fieldset} input[type=checkbox]:checked`).all()) await box.uncheck();
  for (const name of names) {
    const box = page.locator(byId(`${idPrefix}${name}`));
    if ((await box.count()) === 0) fail(`no checkbox #${idPrefix}${name}: the catalog does not offer event ${JSON.stringify(name)}`);
    await box.check();
  }
}

async function selectEvent(selector, name) {
  const options = await page.locator(`${selector} option`).evaluateAll((list) => list.map((option) => option.value));
  if (!options.includes(name)) fail(`${selector} does not offer ${JSON.stringify(name)} (offers: ${options.filter(Boolean).join(', ')})`);
  await page.locator(selector).selectOption(name);
}

async function setWindow(prefix, seconds) {
  const [value, unit] = windowControls(seconds);
  await page.locator(`#${prefix}-window-unit`).selectOption(unit);
  await page.locator(`#${prefix}-window-value`).fill(value);
}

async function setFunnelSteps(steps) {
  const count = () => page.locator('select[id^="funnel-step-"]').count();
  while ((await count()) < steps.length) await page.locator('#add-funnel-step').click();
  while ((await count()) > Math.max(steps.length, 2)) await page.locator(`#remove-funnel-step-${(await count()) - 1}`).click();
  for (const [index, name] of steps.entries()) await selectEvent(`#funnel-step-${index}`, name);
}

/** Users per step of the ungrouped rows of a funnel result (0 for a step without a row). */
function funnelUsers(table, steps) {
  const group = columnOf(table, 'group_value');
  const stepColumn = columnOf(table, 'step');
  const users = columnOf(table, 'users');
  return steps.map((_, index) => {
    const row = table.rows.find((r) => r[group] === '' && Number(r[stepColumn]) === index + 1);
    return row ? Number(row[users]) : 0;
  });
}

let exitCode = 0;
try {
  // 1. Sign in (or see that authentication is off).
  step('1 sign-in');
  await signIn(page, consoleUrl, login);

  // 2. From the app page to the dashboards, then the range FROM..TO through the inputs.
  step('2 dashboards range');
  await page.goto(`${consoleUrl}/apps/${encodeURIComponent(appId)}`);
  await expectOrError(page, 'the app page with its reporting links', '#dashboards-link');
  if (!(await page.locator('#explore-link').isVisible())) fail('the app page has no #explore-link');
  await page.locator('#dashboards-link').click();
  await expectOrError(page, 'the dashboards', '#dashboard-nav');
  await page.locator('#range-from').fill(from);
  await page.locator('#range-to').fill(to);
  // The inputs refuse a range the API would refuse; then nothing is requested: say why.
  const rangeError = (await textOf(page, '#range-from-error')) || (await textOf(page, '#range-to-error'));
  if (rangeError) fail(`the range ${from}..${to} is refused: ${rangeError}`);
  const overview = await dashboardSettled('overview');
  if (!page.url().includes(`from=${from}`) || !page.url().includes(`to=${to}`)) fail(`the range is not in the address: ${page.url()}`);
  await checkPanels('overview', overview);
  if (expect.kpis) await checkKpis(expect.kpis);
  noPageErrors();

  // 3. A filter: event_name = _page_view leaves the page views only.
  if (expect.kpis && expect.kpis.events !== undefined && expect.kpis.page_views !== undefined) {
    step('3 dashboard filter');
    await page.locator('#add-filter').click();
    await page.locator('#filter-0-field').selectOption('column:event_name');
    await page.locator('#filter-0-operator').selectOption('equals');
    await page.locator('#filter-0-values').fill('_page_view');
    await page.locator('#apply-filters').click();
    await dashboardSettled('overview', { filtered: true });
    const events = (await page.locator('#kpi-events').textContent()).trim();
    if (!same(events, expect.kpis.page_views)) fail(`with the filter event_name = _page_view, #kpi-events shows ${events}, expected the page views: ${expect.kpis.page_views}`);
    log(`filtered: ${events} events, all page views`);
    await page.locator('#remove-filter-0').click();
    await page.locator('#apply-filters').click();
    const unfiltered = await dashboardSettled('overview', { filtered: false });
    await checkPanels('overview', unfiltered);
    if (expect.kpis) await checkKpis(expect.kpis);
  }

  // 4. Every page through its tab, timed from the click to the last panel settled. The
  // overview (on screen now) comes last, so that every click really loads a page.
  step('4 dashboard pages');
  const times = {};
  for (const name of [...DASHBOARD_PAGES.slice(1), DASHBOARD_PAGES[0]]) {
    const started = Date.now();
    await page.locator(`#dashboard-nav a[data-page=${name}]`).click();
    const panels = await dashboardSettled(name);
    times[name] = Date.now() - started;
    await checkPanels(name, panels);
    noPageErrors();
    console.log(`dashboard ${name}: ${times[name]} ms`);
    log(`${name} in ${times[name]} ms: ${panels.map((panel) => `${panel.id}=${panel.state}(${panel.rows})`).join(' ')}`);
    if (name === 'overview' && expect.kpis) await checkKpis(expect.kpis);
    if (renderBudgetMs !== null && times[name] > renderBudgetMs) fail(`dashboard ${name} took ${times[name]} ms to render, over RENDER_BUDGET_MS=${renderBudgetMs}`);
  }

  // 5. Explore: one exploration of each type through the form.
  step('5 explore');
  await page.goto(`${consoleUrl}/apps/${encodeURIComponent(appId)}`);
  await expectOrError(page, 'the app page', '#explore-link');
  await page.locator('#explore-link').click();
  await expectOrError(page, 'the exploration form', '#exploration-form');
  await until('the catalog in the event pickers', async () => {
    if (await page.locator('#catalog-empty').isVisible()) fail(`the catalog of ${appId} has no events: ${await textOf(page, '#catalog-empty')}`);
    const errors = await visibleErrors(page);
    if (errors.length > 0) fail(`the Explore page shows an error: ${errors.join(' | ')}`);
    return (await page.locator('#event-events input[type=checkbox]').count()) > 0;
  });
  await page.locator('#exploration-from').fill(from);
  await page.locator('#exploration-to').fill(to);

  step('5a event');
  await chooseType('event');
  const event = expect.event || {};
  await checkOnly('#event-events', 'event-event-', event.events || []);
  await page.locator('#event-measure').selectOption(event.measure || 'count');
  if (event.measure === 'sum') await page.locator('#event-sum-parameter').selectOption(event.sum_parameter || '');
  await page.locator('#event-granularity').selectOption(event.granularity || 'day');
  await page.locator('#event-group-by').selectOption('');
  const eventTable = await runExploration('event');
  if (event.total !== undefined) {
    const value = columnOf(eventTable, 'value');
    const total = eventTable.rows.reduce((sum, row) => sum + Number(row[value] || 0), 0);
    if (Math.abs(total - event.total) > 1e-6) fail(`event exploration: the values add up to ${total}, expected ${event.total}; rows:\n  ${show(eventTable)}`);
    log(`event total ${total} as expected`);
  }

  step('5b funnel');
  await chooseType('funnel');
  const funnel = expect.funnel;
  if (funnel) {
    await setFunnelSteps(funnel.steps);
    await setWindow('funnel', funnel.window_seconds);
  } else {
    const events = await page.locator('#funnel-step-0 option').evaluateAll((list) => list.map((o) => o.value).filter(Boolean));
    await setFunnelSteps([events[0], events[1] || events[0]]);
  }
  await page.locator('#funnel-group-by').selectOption('');
  const funnelTable = await runExploration('funnel');
  if (funnel) {
    const users = funnelUsers(funnelTable, funnel.steps);
    if (JSON.stringify(users) !== JSON.stringify(funnel.users)) fail(`funnel: users per step ${JSON.stringify(users)}, expected ${JSON.stringify(funnel.users)}; rows:\n  ${show(funnelTable)}`);
    log(`funnel users ${JSON.stringify(users)} as expected`);
  }

  step('5c path');
  await chooseType('path');
  const paths = expect.path || {};
  await page.locator('#path-node').selectOption(paths.node || 'event');
  if (paths.gap_minutes !== undefined) {
    await page.locator('#path-split').selectOption('gap');
    await page.locator('#path-gap-minutes').fill(String(paths.gap_minutes));
  } else {
    await page.locator('#path-split').selectOption('session');
  }
  await page.locator('#path-start').fill(paths.start || '');
  if (paths.max_steps !== undefined) await page.locator('#path-max-steps').fill(String(paths.max_steps));
  const pathTable = await runExploration('path');
  if (paths.flows) {
    const columns = ['step', 'source', 'target', 'paths'].map((name) => columnOf(pathTable, name));
    for (const flow of paths.flows) {
      if (!pathTable.rows.some((row) => columns.every((at, index) => same(row[at], flow[index])))) {
        fail(`path: no flow ${JSON.stringify(flow)} (step, source, target, paths); rows:\n  ${show(pathTable)}`);
      }
    }
    log(`path flows ${JSON.stringify(paths.flows)} found`);
  }
  if (pathTable.rows.length > 0) {
    await until('path: the sankey chart', async () => (await page.locator('#result-chart canvas').count()) > 0, { interval: 100, timeout: 5000 });
  }

  step('5d retention');
  await chooseType('retention');
  const retention = expect.retention;
  if (retention) {
    await selectEvent('#retention-start-event', retention.start_event);
    await selectEvent('#retention-return-event', retention.return_event);
    await page.locator('#retention-granularity').selectOption(retention.granularity || 'week');
    await page.locator('#retention-periods').fill(String(retention.periods));
  } else {
    const first = await page.locator('#retention-start-event option').evaluateAll((list) => list.map((o) => o.value).find(Boolean));
    await selectEvent('#retention-start-event', first);
    await selectEvent('#retention-return-event', first);
  }
  const retentionTable = await runExploration('retention');
  if (retention) {
    const columns = ['cohort', 'cohort_users', 'period_offset', 'returned_users'].map((name) => columnOf(retentionTable, name));
    for (const expected of retention.rows) {
      if (!retentionTable.rows.some((row) => columns.every((at, index) => same(row[at], expected[index])))) {
        fail(`retention: no row ${JSON.stringify(expected)} (cohort, cohort_users, period_offset, returned_users); rows:\n  ${show(retentionTable)}`);
      }
    }
    if ((await page.locator('#retention-cohorts tr[data-cohort]').count()) === 0) fail('retention: rows but no cohort grid');
    log(`retention rows ${JSON.stringify(retention.rows)} found`);
  }

  step('5e attribution');
  await chooseType('attribution');
  const attribution = expect.attribution;
  if (attribution) {
    await selectEvent('#attribution-conversion-event', attribution.conversion_event);
    await checkOnly('#attribution-touchpoints', 'attribution-touchpoint-', attribution.touchpoints);
    await page.locator('#attribution-model').selectOption(attribution.model);
    if (attribution.model === 'time_decay') await page.locator('#attribution-half-life-hours').fill(String(attribution.half_life_seconds / 3600));
    await setWindow('attribution', attribution.window_seconds);
  } else {
    const events = await page.locator('#attribution-conversion-event option').evaluateAll((list) => list.map((o) => o.value).filter(Boolean));
    await selectEvent('#attribution-conversion-event', events[events.length - 1]);
    await checkOnly('#attribution-touchpoints', 'attribution-touchpoint-', [events[0]]);
  }
  await page.locator('#attribution-value-parameter').selectOption('');
  const attributionTable = await runExploration('attribution');
  if (attribution) {
    const touchpoint = columnOf(attributionTable, 'touchpoint');
    const credited = columnOf(attributionTable, 'credited_conversions');
    for (const [name, expected] of Object.entries(attribution.credited)) {
      const row = attributionTable.rows.find((r) => r[touchpoint] === name);
      const got = row ? Number(row[credited]) : 0;
      if (Math.abs(got - expected) > 1e-6) fail(`attribution: ${name} credited with ${got} conversions, expected ${expected}; rows:\n  ${show(attributionTable)}`);
    }
    log(`attribution credits ${JSON.stringify(attribution.credited)} as expected`);
  }

  // 6. Save the funnel, reload, open it from the saved list: same form, same numbers.
  step('6 save and reopen');
  await chooseType('funnel');
  const name = `e2e funnel ${Date.now()}`;
  await page.locator('#exploration-name').fill(name);
  await page.locator('#save-exploration').click();
  await expectOrError(page, 'the "saved" notice', '#exploration-saved');
  const savedId = await until('?saved=<id> in the address', () => new URL(page.url()).searchParams.get('saved'));
  log(`saved as ${savedId}: ${await textOf(page, '#exploration-saved')}`);
  await page.goto(`${consoleUrl}/apps/${encodeURIComponent(appId)}/explore`);
  const savedLink = page.locator(`#saved-explorations a[data-saved-id="${savedId}"]`);
  await expectOrError(page, `the saved exploration in #saved-explorations`, `#saved-explorations a[data-saved-id="${savedId}"]`);
  if ((await savedLink.textContent()).trim() !== name) fail(`the saved list names it ${JSON.stringify(await savedLink.textContent())}, expected ${JSON.stringify(name)}`);
  const before = Number(await page.locator('#exploration-result').getAttribute('data-run'));
  await savedLink.click();
  await until('the saved exploration to run', async () => {
    const result = page.locator('#exploration-result');
    const state = await result.getAttribute('data-state');
    if (state === 'error') fail(`the saved exploration failed: ${(await visibleErrors(page)).join(' | ')}`);
    return Number(await result.getAttribute('data-run')) > before && (state === 'ready' || state === 'empty');
  }, { interval: 100 });
  const type = await page.locator('#exploration-type').inputValue();
  if (type !== 'funnel') fail(`the saved exploration opened as type ${type}, expected funnel`);
  if ((await page.locator('#exploration-name').inputValue()) !== name) fail('the saved exploration\'s name is not in #exploration-name');
  const reopened = await resultTable(page);
  if (JSON.stringify(reopened) !== JSON.stringify(funnelTable)) fail(`the saved funnel answers differently:\n  ${show(reopened)}\nbefore:\n  ${show(funnelTable)}`);
  if (funnel) {
    const steps = [];
    for (let index = 0; index < funnel.steps.length; index += 1) steps.push(await page.locator(`#funnel-step-${index}`).inputValue());
    if (JSON.stringify(steps) !== JSON.stringify(funnel.steps)) fail(`the saved funnel's steps are ${JSON.stringify(steps)}, expected ${JSON.stringify(funnel.steps)}`);
  }
  log('reopened from the saved list with the same steps and rows');

  // 7. CSV export of the open exploration: the header is the result's columns.
  step('7 csv');
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: remaining() }),
    page.locator('#export-csv').click(),
  ]);
  const file = await download.path();
  const csv = await readFile(file, 'utf8');
  const header = csv.split(/\r?\n/)[0];
  if (header !== reopened.columns.join(',')) fail(`the CSV starts with ${JSON.stringify(header)}, expected ${JSON.stringify(reopened.columns.join(','))}`);
  const lines = csv.split(/\r?\n/).filter((line) => line !== '').length;
  if (lines !== reopened.rows.length + 1) fail(`the CSV has ${lines - 1} data lines, the result ${reopened.rows.length} rows`);
  if (artifactsDir) {
    await mkdir(artifactsDir, { recursive: true });
    await copyFile(file, path.join(artifactsDir, download.suggestedFilename()));
  }
  log(`downloaded ${download.suggestedFilename()}: ${header}`);

  // 8. Clean up: delete the saved exploration.
  step('8 delete');
  await page.locator(byId(`delete-saved-${savedId}`)).click();
  await page.locator(byId(`confirm-delete-saved-${savedId}`)).click();
  await until('the saved exploration to leave the list', async () => (await savedLink.count()) === 0);
  noPageErrors();

  step('9 done');
  console.log('REPORTING E2E OK');
} catch (error) {
  exitCode = 1;
  await reportFailure(error, { page, browserLog, artifactsDir, name: 'reporting-e2e' });
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
