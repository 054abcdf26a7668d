// `/apps/{app_id}/metadata`: what the last metadata scan found (events, event parameters, user
// attributes), each with an editable display name and description. Display names are keyed by
// kind and name, so a parameter shared by several events has one display name.
import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Link } from '../router.jsx';
import { ErrorBox, useApi } from '../ui.jsx';

const key = (kind, name) => `${kind}:${name}`;

export function MetadataPage({ appId }) {
  const metadata = useApi(`/apps/${seg(appId)}/metadata`);
  // `{kind:name → {display_name, description}}` as edited, and as last saved (to send changes only).
  const [edits, setEdits] = useState({});
  const [saved, setSaved] = useState({});
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(false);

  const data = metadata.data;
  const events = data?.events || [];
  const parameters = data?.event_parameters || data?.parameters || [];
  const attributes = data?.user_attributes || [];

  useEffect(() => {
    if (!data) return;
    const initial = {};
    const remember = (kind, row) => {
      initial[key(kind, row.name)] = { display_name: row.display_name || '', description: row.description || '' };
    };
    events.forEach((row) => remember('event', row));
    parameters.forEach((row) => remember('parameter', row));
    attributes.forEach((row) => remember('user_attribute', row));
    setEdits(initial);
    setSaved(initial);
  }, [data]);

  const edit = (kind, name, field, value) => {
    setNotice(null);
    setEdits((old) => ({ ...old, [key(kind, name)]: { ...old[key(kind, name)], [field]: value } }));
  };

  const changed = Object.entries(edits).filter(([k, value]) => {
    const before = saved[k] || {};
    return value.display_name !== before.display_name || value.description !== before.description;
  });

  const save = async () => {
    setError(null);
    setNotice(null);
    setBusy(true);
    try {
      const body = changed.map(([k, value]) => {
        const split = k.indexOf(':');
        return { kind: k.slice(0, split), name: k.slice(split + 1), display_name: value.display_name, description: value.description };
      });
      await api('PUT', `/apps/${seg(appId)}/metadata/display-names`, body);
      setSaved(edits);
      setNotice(`Saved ${body.length} display name${body.length === 1 ? '' : 's'}.`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  const editors = (kind, name, rowId) => {
    const value = edits[key(kind, name)] || { display_name: '', description: '' };
    return [
      <td key="dn"><input id={`display-name-${rowId}`} name="display_name" data-kind={kind} data-name={name} value={value.display_name} onInput={(e) => edit(kind, name, 'display_name', e.currentTarget.value)} /></td>,
      <td key="desc"><input id={`description-${rowId}`} name="description" data-kind={kind} data-name={name} value={value.description} onInput={(e) => edit(kind, name, 'description', e.currentTarget.value)} /></td>,
    ];
  };

  return (
    <section>
      <p class="crumbs"><Link href={`/apps/${encodeURIComponent(appId)}`}>{appId}</Link> / metadata</p>
      <h1>Metadata of {appId}</h1>
      <ErrorBox error={metadata.error} />
      {metadata.loading && <p>Loading…</p>}
      {data && (
        <p class="hint" id="scanned-at">
          {data.scanned_at_ms ? `Last scan: ${new Date(data.scanned_at_ms).toLocaleString()}` : 'No metadata scan has run for this app yet.'}
        </p>
      )}

      <h2>Events</h2>
      <table id="metadata-events">
        <thead><tr><th>Name</th><th>Total</th><th>Platforms</th><th>SDKs</th><th>Display name</th><th>Description</th></tr></thead>
        <tbody>
          {events.map((row) => (
            <tr key={row.name} data-name={row.name}>
              <td><code>{row.name}</code></td>
              <td>{row.total}</td>
              <td>{(row.platforms || []).join(', ')}</td>
              <td>{(row.sdks || []).join(', ')}</td>
              {editors('event', row.name, `event-${row.name}`)}
            </tr>
          ))}
          {events.length === 0 && <tr><td colSpan={6} class="empty">No events found yet.</td></tr>}
        </tbody>
      </table>

      <h2>Event parameters</h2>
      <table id="metadata-parameters">
        <thead><tr><th>Event</th><th>Parameter</th><th>Type</th><th>Top values</th><th>Display name</th><th>Description</th></tr></thead>
        <tbody>
          {parameters.map((row) => (
            <tr key={`${row.event_name}/${row.name}`} data-event={row.event_name} data-name={row.name}>
              <td><code>{row.event_name}</code></td>
              <td><code>{row.name}</code></td>
              <td>{row.value_type}</td>
              <td><TopValues values={row.top_values} /></td>
              {editors('parameter', row.name, `parameter-${row.event_name}-${row.name}`)}
            </tr>
          ))}
          {parameters.length === 0 && <tr><td colSpan={6} class="empty">No parameters found yet.</td></tr>}
        </tbody>
      </table>

      <h2>User attributes</h2>
      <table id="metadata-user-attributes">
        <thead><tr><th>Name</th><th>Type</th><th>Top values</th><th>Display name</th><th>Description</th></tr></thead>
        <tbody>
          {attributes.map((row) => (
            <tr key={row.name} data-name={row.name}>
              <td><code>{row.name}</code></td>
              <td>{row.value_type}</td>
              <td><TopValues values={row.top_values} /></td>
              {editors('user_attribute', row.name, `user_attribute-${row.name}`)}
            </tr>
          ))}
          {attributes.length === 0 && <tr><td colSpan={5} class="empty">No user attributes found yet.</td></tr>}
        </tbody>
      </table>

      <div class="actions">
        <button type="button" id="save-display-names" disabled={busy || changed.length === 0} onClick={save}>
          Save display names{changed.length > 0 ? ` (${changed.length})` : ''}
        </button>
        {notice && <span class="ok" id="display-names-saved">{notice}</span>}
      </div>
      <ErrorBox error={error} />
    </section>
  );
}

function TopValues({ values }) {
  if (!values || values.length === 0) return <span>—</span>;
  return <span class="top-values">{values.map((v) => `${v.value ?? '(null)'} ×${v.count}`).join(', ')}</span>;
}
