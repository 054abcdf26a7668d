// Reading the reporting API's tables (`{columns, rows}`, docs/reporting.md) and the few
// derived figures the pages show (cohort grids, conversion rates), plus date arithmetic on
// `YYYY-MM-DD` days. No UI here, so every function is easy to check by hand.

/** The index of `name` in the table's columns, -1 when absent. */
export function column(table, name) {
  return (table?.columns || []).indexOf(name);
}

/** A cell as text: numbers exactly as sent (tests read them), null as an empty cell. */
export function cellText(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** `part / whole` in percent with one decimal, null when `whole` is 0. */
export function percent(part, whole) {
  const p = Number(part);
  const w = Number(whole);
  if (!w) return null;
  return Math.round((p / w) * 1000) / 10;
}

export const percentText = (value) => (value === null ? '—' : `${value}%`);

/**
 * Cohort table → `{offsets, cohorts: [{cohort, users, returned: Map(offset → users)}]}`.
 * Offsets a cohort has not reached yet are missing from its map (the grid leaves them blank).
 */
export function cohortGrid(table) {
  const c = column(table, 'cohort');
  const size = column(table, 'cohort_users');
  const offset = column(table, 'period_offset');
  const returned = column(table, 'returned_users');
  const cohorts = new Map();
  let maxOffset = -1;
  for (const row of table?.rows || []) {
    const key = cellText(row[c]);
    if (!cohorts.has(key)) cohorts.set(key, { cohort: key, users: Number(row[size]) || 0, returned: new Map() });
    const k = Number(row[offset]);
    cohorts.get(key).returned.set(k, Number(row[returned]) || 0);
    maxOffset = Math.max(maxOffset, k);
  }
  return {
    offsets: Array.from({ length: maxOffset + 1 }, (_, index) => index),
    cohorts: [...cohorts.values()].sort((a, b) => (a.cohort < b.cohort ? -1 : a.cohort > b.cohort ? 1 : 0)),
  };
}

/**
 * The retention curve: per offset, returned users over cohort users of the cohorts that
 * reached it (an average weighted by cohort size, so a cohort of 2 does not weigh like one
 * of 2000).
 */
export function retentionCurve(grid) {
  return grid.offsets.map((offset) => {
    let returned = 0;
    let users = 0;
    for (const cohort of grid.cohorts) {
      if (!cohort.returned.has(offset)) continue;
      returned += cohort.returned.get(offset);
      users += cohort.users;
    }
    return { offset, percent: percent(returned, users) };
  });
}

/**
 * Funnel table → one entry per group (`group: null` when not grouped), every step of
 * `stepNames` in order with its users (0 when the table has no row: nobody in that group got
 * there) and the conversion from step 1 and from the previous step.
 */
export function funnelGroups(table, stepNames) {
  const g = column(table, 'group_value');
  const s = column(table, 'step');
  const u = column(table, 'users');
  const groups = new Map();
  for (const row of table?.rows || []) {
    const key = g >= 0 ? row[g] ?? null : null;
    if (!groups.has(key)) groups.set(key, new Map());
    groups.get(key).set(Number(row[s]), Number(row[u]) || 0);
  }
  return [...groups].map(([group, users]) => {
    const steps = stepNames.map((event, index) => ({ step: index + 1, event, users: users.get(index + 1) ?? 0 }));
    return {
      group,
      steps: steps.map((step, index) => ({
        ...step,
        fromFirst: percent(step.users, steps[0].users),
        fromPrevious: percent(step.users, steps[Math.max(0, index - 1)].users),
      })),
    };
  });
}

// Days as `YYYY-MM-DD`, computed in UTC so that no daylight-saving shift moves a day.

/** Today in the browser's time zone (the server's default uses the app's; see the pages). */
export function localToday() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export function addDays(day, days) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

export const isDay = (value) => /^\d{4}-\d{2}-\d{2}$/.test(value || '') && !Number.isNaN(new Date(`${value}T00:00:00Z`).getTime());

/** Days from `from` to `to`, both included (0 when `to` is before `from`). */
export function daysIn(from, to) {
  const span = (new Date(`${to}T00:00:00Z`) - new Date(`${from}T00:00:00Z`)) / 86400000;
  return span < 0 ? 0 : span + 1;
}

/** The longest range the API accepts (docs/reporting.md). */
export const MAX_RANGE_DAYS = 366;

/** Problems of a `{from, to}` range, keyed by API path (`range`), for the range inputs. */
export function rangeProblems(range) {
  if (!isDay(range.from)) return { 'range.from': 'choose a start day' };
  if (!isDay(range.to)) return { 'range.to': 'choose an end day' };
  if (range.from > range.to) return { range: '`from` is after `to`' };
  if (daysIn(range.from, range.to) > MAX_RANGE_DAYS) return { range: `cover at most ${MAX_RANGE_DAYS} days` };
  return {};
}
