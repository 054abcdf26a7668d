// Small building blocks shared by the pages: session context, error display, form fields,
// data loading and polling.
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';

/** `{me, authEnabled, canOperate, canAdmin, signOut}`, provided by the app shell. */
export const SessionContext = createContext(null);
export const useSession = () => useContext(SessionContext);

/** Role checks mirror the server's table (the server enforces them anyway; we only hide). */
export function permissions(roles) {
  const lower = (roles || []).map((role) => String(role).toLowerCase());
  return {
    canOperate: lower.includes('admin') || lower.includes('operator'),
    canAdmin: lower.includes('admin'),
  };
}

/** An API error in a visible `.error` box; 403 says plainly that the role is missing. */
export function ErrorBox({ error, id }) {
  const session = useSession();
  if (!error) return null;
  const text = error.status === 403
    ? `Not allowed (403): ${error.message}. Your roles: ${(session?.me?.roles || []).join(', ') || 'none'}.`
    : error.message || String(error);
  const unmatched = Object.entries(error.unmatchedFields || {});
  return (
    <div class="error" role="alert" id={id}>
      {text}
      {unmatched.length > 0 && (
        <ul>{unmatched.map(([field, why]) => <li key={field}><code>{field}</code>: {why}</li>)}</ul>
      )}
    </div>
  );
}

/** The message next to one form field (client-side validation or the server's `fields`). */
export function FieldError({ id, message }) {
  if (!message) return null;
  return <span id={id} class="error field-error" role="alert">{message}</span>;
}

/** A labelled form control with its error; `id` names the control, `${id}-error` its error. */
export function Field({ label, id, error, hint, children }) {
  return (
    <div class={error ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      {children}
      {hint && <small class="hint">{hint}</small>}
      <FieldError id={`${id}-error`} message={error} />
    </div>
  );
}

/**
 * GETs `path` (null: nothing to load) and keeps `{data, error, loading, reload}`. A 404 is an
 * error like any other; pages that expect it (e.g. no pipeline yet) check `error.status`.
 */
export function useApi(path) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const generation = useRef(0);
  const reload = useCallback(async () => {
    if (!path) return;
    const mine = ++generation.current; // a later load wins over a slower earlier one
    try {
      const data = await api('GET', path);
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState((old) => ({ data: old.data, error, loading: false }));
    }
  }, [path]);
  useEffect(() => {
    setState({ data: null, error: null, loading: true });
    reload();
  }, [reload]);
  return { ...state, reload };
}

/**
 * Runs `task` now and then every `ms` after the previous run finished (no overlapping
 * requests when the API is slow); stops when the component unmounts or `deps` change.
 */
export function usePoll(task, ms, deps) {
  useEffect(() => {
    let stopped = false;
    let timer = null;
    const run = async () => {
      try {
        await task();
      } finally {
        if (!stopped) timer = setTimeout(run, ms);
      }
    };
    run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
}

/** A code block with a Copy button (clipboard when allowed, else the text gets selected). */
export function CopyBlock({ id, title, text }) {
  const [copied, setCopied] = useState(false);
  const pre = useRef(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      // No clipboard permission (e.g. plain HTTP on a non-local host): select for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(pre.current);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
  };
  return (
    <div class="snippet">
      <div class="snippet-head">
        <span>{title}</span>
        <button type="button" id={`copy-${id}`} class="secondary" onClick={copy}>{copied ? 'Copied' : 'Copy'}</button>
      </div>
      <pre id={`snippet-${id}`} ref={pre}><code>{text}</code></pre>
    </div>
  );
}

/** RFC 3339 → the browser's local date and time. */
export function When({ value }) {
  if (!value) return <span>—</span>;
  const date = new Date(value);
  return <time datetime={value} title={value}>{Number.isNaN(date.getTime()) ? value : date.toLocaleString()}</time>;
}

/** Copies the server's 400 `fields` onto known form fields; the rest stays on the error box. */
export function splitFieldErrors(error, known) {
  const matched = {};
  const unmatched = {};
  for (const [field, why] of Object.entries(error?.fields || {})) {
    if (known.includes(field)) matched[field] = why;
    else unmatched[field] = why;
  }
  if (error) error.unmatchedFields = unmatched;
  return matched;
}

/**
 * Form state: `values`, per-field `errors`, and `bind(name)` giving an input its `name`,
 * `value` and handler (editing a field clears its error). Checkboxes use `bindChecked`.
 */
export function useForm(initial) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const setValue = (name, value) => {
    setValues((old) => ({ ...old, [name]: value }));
    setErrors((old) => (old[name] ? { ...old, [name]: undefined } : old));
  };
  const bind = (name) => ({
    name,
    value: values[name],
    // `input` for text fields, `change` for selects (both fire for selects in browsers).
    onInput: (event) => setValue(name, event.currentTarget.value),
    onChange: (event) => setValue(name, event.currentTarget.value),
  });
  const bindChecked = (name) => ({
    name,
    type: 'checkbox',
    checked: Boolean(values[name]),
    onChange: (event) => setValue(name, event.currentTarget.checked),
  });
  return { values, setValues, setValue, errors, setErrors, bind, bindChecked };
}

/** A button that asks once more inline before doing something destructive. */
export function ConfirmButton({ id, label, question, onConfirm, disabled }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking) {
    return <button type="button" id={id} class="danger" disabled={disabled} onClick={() => setAsking(true)}>{label}</button>;
  }
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return (
    <span class="confirm">
      {question}{' '}
      <button type="button" id={`confirm-${id}`} class="danger" disabled={busy} onClick={confirm}>Yes, {label.toLowerCase()}</button>{' '}
      <button type="button" id={`cancel-${id}`} class="secondary" disabled={busy} onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}
