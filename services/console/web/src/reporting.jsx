// Building blocks shared by the dashboards and the Explore page: the app's catalog (names a
// query may use), field pickers, the filters editor, result tables, the cohort grid, and the
// mapping of the server's 400 `fields` (JSON paths) onto form controls.
import { useEffect, useState } from 'preact/hooks';
import { api, seg } from './api.js';
import { FieldError } from './ui.jsx';
import { cellText, cohortGrid, percent, percentText } from './tables.js';

// ---- catalog ----------------------------------------------------------------------------

// One catalog request per app and browser tab: the dashboards and Explore share it, and
// switching dashboard pages does not ask again. A failed request is forgotten so that the
// next page retries.
const catalogs = new Map();

const names = (list) => (list || []).map((item) => (typeof item === 'string' ? item : item?.name)).filter((name) => typeof name === 'string');

function loadCatalog(appId) {
  if (!catalogs.has(appId)) {
    const loading = api('GET', `/apps/${seg(appId)}/catalog`).then((data) => ({
      events: names(data?.events),
      event_parameters: names(data?.event_parameters),
      user_attributes: names(data?.user_attributes),
      columns: names(data?.columns),
    }));
    loading.catch(() => catalogs.delete(appId));
    catalogs.set(appId, loading);
  }
  return catalogs.get(appId);
}

const EMPTY_CATALOG = { events: [], event_parameters: [], user_attributes: [], columns: [] };

/** `{catalog, error}`: the catalog is empty (never null) until it arrives. */
export function useCatalog(appId) {
  const [state, setState] = useState({ catalog: EMPTY_CATALOG, error: null, loaded: false });
  useEffect(() => {
    let current = true;
    loadCatalog(appId).then(
      (catalog) => current && setState({ catalog, error: null, loaded: true }),
      (error) => current && setState({ catalog: EMPTY_CATALOG, error, loaded: true }),
    );
    return () => {
      current = false;
    };
  }, [appId]);
  return state;
}

// ---- fields -----------------------------------------------------------------------------

// A field in a <select> is `kind:name` (kind: column, event_parameter, user_attribute); the
// API's form is `{"<kind>": "<name>"}`.
const FIELD_KINDS = [
  ['column', 'columns', 'Columns'],
  ['event_parameter', 'event_parameters', 'Event parameters'],
  ['user_attribute', 'user_attributes', 'User attributes'],
];

export function fieldToApi(value) {
  if (!value) return null;
  const split = value.indexOf(':');
  return { [value.slice(0, split)]: value.slice(split + 1) };
}

export function fieldFromApi(field) {
  if (!field || typeof field !== 'object') return '';
  const [kind] = Object.keys(field);
  return kind ? `${kind}:${field[kind]}` : '';
}

/**
 * A field picker over the catalog, grouped by kind. A value the catalog does not list (a
 * saved query, or the catalog still loading) stays selectable so it is not silently lost.
 */
export function FieldSelect({ id, name, catalog, value, onChange, none, invalid }) {
  const known = FIELD_KINDS.some(([kind, list]) => catalog[list].some((item) => `${kind}:${item}` === value));
  return (
    <select id={id} name={name} value={value} aria-invalid={invalid ? 'true' : undefined} onChange={(event) => onChange(event.currentTarget.value)}>
      {none !== undefined && <option value="">{none}</option>}
      {value && !known && <option value={value}>{value.replace(':', ': ')} (not in the catalog)</option>}
      {FIELD_KINDS.map(([kind, list, label]) => catalog[list].length > 0 && (
        <optgroup key={kind} label={label}>
          {catalog[list].map((item) => <option key={item} value={`${kind}:${item}`}>{item}</option>)}
        </optgroup>
      ))}
    </select>
  );
}

/** An event picker; like FieldSelect it keeps a value the catalog does not list. */
export function EventSelect({ id, name, events, value, onChange, none = '— choose an event —' }) {
  return (
    <select id={id} name={name} value={value} onChange={(event) => onChange(event.currentTarget.value)}>
      <option value="">{none}</option>
      {value && !events.includes(value) && <option value={value}>{value} (not in the catalog)</option>}
      {events.map((item) => <option key={item} value={item}>{item}</option>)}
    </select>
  );
}

// ---- filters ----------------------------------------------------------------------------

export const OPERATORS = [
  ['equals', 'equals'],
  ['not_equals', 'does not equal'],
  ['in', 'is one of'],
  ['contains', 'contains'],
  ['greater_than', '>'],
  ['less_than', '<'],
  ['is_null', 'is not set'],
  ['is_not_null', 'is set'],
];

const takesNoValue = (operator) => operator === 'is_null' || operator === 'is_not_null';

/** A new filter row of the editor (values as typed: one text, comma-separated for `in`). */
export const newFilter = () => ({ field: 'column:event_name', operator: 'equals', values: '' });

function splitValues(row) {
  if (takesNoValue(row.operator)) return [];
  if (row.operator === 'in') return row.values.split(',').map((value) => value.trim()).filter((value) => value !== '');
  return [row.values];
}

export function filtersToApi(rows) {
  return rows.map((row) => ({ field: fieldToApi(row.field), operator: row.operator, values: splitValues(row) }));
}

export function filtersFromApi(conditions) {
  return (Array.isArray(conditions) ? conditions : []).map((condition) => ({
    field: fieldFromApi(condition.field),
    operator: condition.operator || 'equals',
    values: (condition.values || []).join(condition.operator === 'in' ? ', ' : ''),
  }));
}

/** The checks of reporting/src/check.rs that need no catalog, keyed by the same paths. */
export function filterProblems(rows) {
  const problems = {};
  if (rows.length > 20) problems.filters = 'give at most 20 filters';
  rows.forEach((row, index) => {
    const path = `filters[${index}]`;
    if (!row.field) problems[`${path}.field`] = 'choose a field';
    const values = splitValues(row);
    if (takesNoValue(row.operator)) return;
    // equals / not_equals may compare with the empty text on purpose; the others need text.
    if (row.operator === 'in') {
      if (values.length === 0 || values.length > 100) problems[`${path}.values`] = 'give 1 to 100 values, separated by commas';
    } else if (row.operator === 'greater_than' || row.operator === 'less_than') {
      if (values[0].trim() === '' || !Number.isFinite(Number(values[0]))) problems[`${path}.values`] = 'must be a number';
    } else if (row.operator === 'contains' && values[0] === '') {
      problems[`${path}.values`] = 'give the text to look for';
    }
  });
  return problems;
}

/**
 * The filters editor: one row per condition (field, operator, values), ids prefixed with
 * `prefix` (`""` on the dashboards, `"exploration-"` on Explore): `#<prefix>add-filter`,
 * `#<prefix>filter-<n>-field|operator|values`, `#<prefix>remove-filter-<n>`. `errors` are
 * keyed by API path (`filters[0].values`).
 */
export function FiltersEditor({ prefix, catalog, rows, onChange, errors = {} }) {
  const update = (index, change) => onChange(rows.map((row, at) => (at === index ? { ...row, ...change } : row)));
  return (
    <fieldset class="group filters" id={`${prefix}filters`}>
      <legend>Filters</legend>
      {rows.length === 0 && <p class="hint">No filters: every event counts.</p>}
      {rows.map((row, index) => {
        const id = `${prefix}filter-${index}`;
        const path = `filters[${index}]`;
        return (
          <div class="filter-row" id={id} key={index}>
            <div class={errors[`${path}.field`] ? 'field invalid' : 'field'}>
              <label for={`${id}-field`}>Field</label>
              <FieldSelect id={`${id}-field`} name={`${path}.field`} catalog={catalog} value={row.field} onChange={(field) => update(index, { field })} />
              <FieldError id={`${id}-field-error`} message={errors[`${path}.field`]} />
            </div>
            <div class={errors[`${path}.operator`] ? 'field invalid' : 'field'}>
              <label for={`${id}-operator`}>Operator</label>
              <select id={`${id}-operator`} name={`${path}.operator`} value={row.operator} onChange={(event) => update(index, { operator: event.currentTarget.value })}>
                {OPERATORS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
              </select>
              <FieldError id={`${id}-operator-error`} message={errors[`${path}.operator`]} />
            </div>
            <div class={errors[`${path}.values`] ? 'field invalid' : 'field'}>
              <label for={`${id}-values`}>{row.operator === 'in' ? 'Values (comma-separated)' : 'Value'}</label>
              <input id={`${id}-values`} name={`${path}.values`} value={takesNoValue(row.operator) ? '' : row.values} disabled={takesNoValue(row.operator)}
                onInput={(event) => update(index, { values: event.currentTarget.value })} />
              <FieldError id={`${id}-values-error`} message={errors[`${path}.values`]} />
            </div>
            <button type="button" class="secondary" id={`${prefix}remove-filter-${index}`} onClick={() => onChange(rows.filter((_, at) => at !== index))}>Remove</button>
          </div>
        );
      })}
      <FieldError id={`${prefix}filters-error`} message={errors.filters} />
      <button type="button" class="secondary" id={`${prefix}add-filter`} onClick={() => onChange([...rows, newFilter()])}>Add filter</button>
    </fieldset>
  );
}

// ---- server errors → controls -----------------------------------------------------------

/**
 * Splits errors keyed by API path over the controls: `rules` is a list of `[regex, control
 * id or (match) => control id]`; the first rule matching a path takes it. Returns `{byControl, unmatched}`; unmatched
 * paths belong on the page's error box. Paths of the filters editor map to its own ids.
 */
export function errorsByControl(fields, rules, filterPrefix) {
  const byControl = {};
  const unmatched = {};
  for (const [path, why] of Object.entries(fields || {})) {
    const filter = /^filters\[(\d+)\]\.(field|operator|values)/.exec(path);
    let control = null;
    if (filter) control = `${filterPrefix}filter-${filter[1]}-${filter[2]}`;
    else if (path === 'filters') control = `${filterPrefix}filters`;
    else {
      for (const [pattern, target] of rules) {
        const found = pattern.exec(path);
        if (found) {
          control = typeof target === 'function' ? target(found) : target;
          break;
        }
      }
    }
    if (control) byControl[control] = byControl[control] ? `${byControl[control]}; ${why}` : why;
    else unmatched[path] = why;
  }
  return { byControl, unmatched };
}

/** The filters editor takes its errors by path; turn control-keyed errors back for it. */
export function filterErrorsByPath(byControl, prefix) {
  const errors = {};
  for (const [control, why] of Object.entries(byControl)) {
    const found = new RegExp(`^${prefix}filter-(\\d+)-(field|operator|values)$`).exec(control);
    if (found) errors[`filters[${found[1]}].${found[2]}`] = why;
    else if (control === `${prefix}filters`) errors.filters = why;
  }
  return errors;
}

// ---- tables -----------------------------------------------------------------------------

/**
 * A result as an HTML table. Cells hold the numbers exactly as the API sent them (tests read
 * them); null is an empty cell with class `null`.
 */
export function DataTable({ table, id, className, limit }) {
  const rows = limit ? table.rows.slice(0, limit) : table.rows;
  return (
    <div class="table-scroll">
      <table id={id} class={className} data-rows={table.rows.length}>
        <thead><tr>{table.columns.map((name) => <th key={name}>{name}</th>)}</tr></thead>
        <tbody>
          {rows.map((row, index) => (
            <tr key={index}>{row.map((value, at) => <td key={at} class={value === null || value === undefined ? 'null' : typeof value === 'number' ? 'num' : undefined}>{cellText(value)}</td>)}</tr>
          ))}
          {table.rows.length === 0 && <tr><td colSpan={Math.max(1, table.columns.length)} class="empty">No rows.</td></tr>}
        </tbody>
      </table>
      {limit && table.rows.length > limit && <p class="hint">First {limit} of {table.rows.length} rows.</p>}
    </div>
  );
}

/**
 * The cohort grid: a row per cohort (with its size), a column per period offset, each cell
 * the users who came back and their share of the cohort. Offsets a cohort has not reached
 * are blank. The cell's shade follows the share.
 */
export function CohortGrid({ table, id }) {
  const grid = cohortGrid(table);
  return (
    <div class="table-scroll">
      <table class="cohort-grid" id={id}>
        <thead>
          <tr><th>Cohort</th><th>Users</th>{grid.offsets.map((offset) => <th key={offset}>+{offset}</th>)}</tr>
        </thead>
        <tbody>
          {grid.cohorts.map((cohort) => (
            <tr key={cohort.cohort} data-cohort={cohort.cohort}>
              <th scope="row">{cohort.cohort}</th>
              <td class="num">{cohort.users}</td>
              {grid.offsets.map((offset) => {
                if (!cohort.returned.has(offset)) return <td key={offset} class="unreached" />;
                const returned = cohort.returned.get(offset);
                const share = percent(returned, cohort.users);
                return (
                  <td key={offset} data-offset={offset} data-returned={returned} style={{ background: `rgba(31, 111, 235, ${((share || 0) / 100) * 0.6 + 0.04})` }}>
                    <span class="returned">{returned}</span> <small>{percentText(share)}</small>
                  </td>
                );
              })}
            </tr>
          ))}
          {grid.cohorts.length === 0 && <tr><td colSpan={2} class="empty">No cohorts in this range.</td></tr>}
        </tbody>
      </table>
    </div>
  );
}
