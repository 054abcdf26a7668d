// `/apps/{app_id}`: where the app sends events, SDK snippets to copy, and a live event count.
import { useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { ConfirmButton, CopyBlock, ErrorBox, useApi, usePoll, useSession, When } from '../ui.jsx';

const COUNT_REFRESH_MS = 5000;

export function AppPage({ appId }) {
  const { canOperate } = useSession();
  const app = useApi(`/apps/${seg(appId)}`);
  const [deleteError, setDeleteError] = useState(null);

  if (app.loading) return <p>Loading…</p>;
  if (!app.data) return <ErrorBox error={app.error} />;
  const a = app.data;

  const deleteApp = async () => {
    setDeleteError(null);
    try {
      await api('DELETE', `/apps/${seg(appId)}`);
      navigate(`/projects/${encodeURIComponent(a.project_id)}`);
    } catch (failure) {
      setDeleteError(failure);
    }
  };

  return (
    <section>
      <p class="crumbs">
        <Link href="/">Projects</Link> / <Link href={`/projects/${encodeURIComponent(a.project_id)}`}>{a.project_id}</Link> / {a.id}
      </p>
      <h1>{a.name || a.id}</h1>
      <dl class="facts">
        <dt>App id</dt><dd><code id="app-id">{a.id}</code></dd>
        <dt>Endpoint</dt><dd><code id="app-endpoint">{a.endpoint}</code></dd>
        <dt>Platform</dt><dd id="app-platform">{a.platform}</dd>
        <dt>Time zone</dt><dd>{a.timezone}</dd>
        <dt>Description</dt><dd>{a.description || '—'}</dd>
        <dt>Created</dt><dd><When value={a.created_at} /></dd>
      </dl>
      <EventCount appId={a.id} />
      <p class="links">
        <Link id="dashboards-link" href={`/apps/${encodeURIComponent(a.id)}/dashboards`}>Dashboards</Link>
        <Link id="explore-link" href={`/apps/${encodeURIComponent(a.id)}/explore`}>Explore (Analytics Studio)</Link>
        <Link id="metadata-link" href={`/apps/${encodeURIComponent(a.id)}/metadata`}>Events, parameters and user attributes (metadata)</Link>
      </p>

      <h2>SDK setup</h2>
      <Snippets appId={a.id} endpoint={a.endpoint} />

      {canOperate && (
        <p><ConfirmButton id="delete-app" label="Delete app" question="Delete this app?" onConfirm={deleteApp} /></p>
      )}
      <ErrorBox error={deleteError} />
    </section>
  );
}

/** Distinct events in the warehouse, refreshed every 5 s (the ETL loads in the background). */
function EventCount({ appId }) {
  const [count, setCount] = useState(null);
  const [error, setError] = useState(null);
  usePoll(async () => {
    try {
      const result = await api('GET', `/apps/${seg(appId)}/events/count`);
      setCount(result.count);
      setError(null);
    } catch (failure) {
      setError(failure); // keep showing the last count; the error says why it is stale
    }
  }, COUNT_REFRESH_MS, [appId]);
  return (
    <div class="card count">
      <span>Events in the warehouse</span>
      <strong id="event-count">{count === null ? '…' : String(count)}</strong>
      <small class="hint">refreshed every {COUNT_REFRESH_MS / 1000} s</small>
      <ErrorBox error={error} />
    </div>
  );
}

/** The three SDKs' setup, with this app's appId and endpoint filled in. */
function Snippets({ appId, endpoint }) {
  const web = `import { ClickstreamAnalytics } from '@aws/clickstream-web';

ClickstreamAnalytics.init({
  appId: ${JSON.stringify(appId)},
  endpoint: ${JSON.stringify(endpoint)},
});`;
  // Android and iOS read the same amplifyconfiguration.json.
  const config = JSON.stringify({
    analytics: {
      plugins: {
        awsClickstreamPlugin: {
          appId,
          endpoint,
          isCompressEvents: true,
          autoFlushEventsInterval: 10000,
          isTrackAppExceptionEvents: false,
        },
      },
    },
  }, null, 2);
  const swift = `import Clickstream

// in application(_:didFinishLaunchingWithOptions:)
do {
    try ClickstreamAnalytics.initSDK()
} catch {
    assertionFailure("Failed to initialize ClickstreamAnalytics: \\(error)")
}`;
  return (
    <div class="snippets">
      <CopyBlock id="web" title="Web (npm install @aws/clickstream-web)" text={web} />
      <CopyBlock id="android" title="Android: app/src/main/res/raw/amplifyconfiguration.json (then ClickstreamAnalytics.init(getApplicationContext()) in Application.onCreate)" text={config} />
      <CopyBlock id="ios-config" title="iOS: amplifyconfiguration.json (add it to the app target)" text={config} />
      <CopyBlock id="swift" title="Swift: AppDelegate" text={swift} />
    </div>
  );
}
