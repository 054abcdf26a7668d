// The clickstream web console: a single-page app over the console service's REST API
// (docs/control-plane.md). Built by build.mjs into dist/ and served by the console service,
// which answers any unknown non-/api path with index.html (history routing, no hash).
//
// Stable hooks for browser tests (e2e/browser/console.mjs relies on the starred ones):
//   sign-in     #sign-in-page, *#sign-in (button "Sign in"), #sign-in-message
//   top bar     #topbar, #nav-projects, #nav-plugins, *#me-subject, #me-roles, #sign-out,
//               *#auth-off (banner when auth/config says enabled: false)
//   errors      every API error is in a visible `.error` element; a form field's error is
//               `#<control id>-error` (class `error field-error`) next to the field
//   /           #projects (table, rows [data-project-id]), #no-projects, *#new-project-form,
//               inputs *#new-project-id [name=id], *#new-project-name [name=name],
//               #new-project-description [name=description], #new-project-environment
//               [name=environment], *#create-project, #new-project-error; after creation the
//               app goes to /projects/{id}
//   /projects/{id}  *#project-title, #project-id-value, #delete-project (+ #confirm-/#cancel-),
//               #pipeline-section, *#pipeline-link or *#create-pipeline, #apps (rows
//               [data-app-id], links a[href="/apps/{app}"]), *#new-app-form, inputs
//               *#new-app-id [name=id], #new-app-name, #new-app-description,
//               *#new-app-platform [name=platform] (select), #new-app-timezone [name=timezone],
//               *#create-app, #new-app-error, #app-created (with a link to the new app)
//   /apps/{app}     *#app-id, *#app-endpoint, #app-platform, *#event-count (text: the number,
//               "…" before the first answer; refreshed every 5 s), #metadata-link,
//               *#snippet-web, #snippet-android, #snippet-ios-config, #snippet-swift
//               (each with #copy-<name>), #delete-app
//   /pipelines/new?project={id}  #wizard-steps, *#wizard-step-title [data-step=ingestion|
//               processing|modeling|reporting|review], *#wizard-next, #wizard-back,
//               *#wizard-create, #wizard-error, #review-spec. Spec controls are named by the
//               spec path and their id is the path with . and _ as -:
//               *#ingestion-sink [name="ingestion.sink"], #ingestion-s3-buffer-max-bytes,
//               #ingestion-s3-buffer-max-age-seconds, #ingestion-kafka-topic,
//               #ingestion-kafka-partitions, #ingestion-kinesis-stream,
//               #ingestion-kinesis-shard-count, #processing-enabled (checkbox),
//               #processing-schedule (select interval|cron),
//               *#processing-schedule-interval-seconds (+ *#…-error), #processing-schedule-cron,
//               #processing-buffer-seconds, #processing-data-freshness-hours,
//               #enricher-<id> / #plugin-<id> (checkboxes), #processing-transformer, #processing-retention-days,
//               *#modeling-engine (select duckdb|redshift), #modeling-athena,
//               *#reporting-enabled (checkbox)
//   /pipelines/{id} *#pipeline-phase (text: exactly the phase), *#pipeline-message,
//               #pipeline-levels, #workflow-url, #runs-url ("Runs in Temporal UI"),
//               #update-pipeline → #pipeline-update-form (same spec controls), #save-pipeline,
//               #cancel-update, #pipeline-update-error; #retry-pipeline (when failed);
//               #delete-pipeline → #confirm-delete-pipeline; #pipeline-action-error
//   /plugins        #plugins (rows [data-plugin-id]), #new-plugin-form, #new-plugin-id,
//               #new-plugin-name, #new-plugin-kind, #new-plugin-module-uri, #new-plugin-config,
//               #upload-module-<id> (file input),
//               #new-plugin-description, #create-plugin, #delete-plugin-<id> (+ #confirm-…)
//   /apps/{app}/metadata  #metadata-events, #metadata-parameters, #metadata-user-attributes,
//               inputs [name=display_name|description][data-kind][data-name],
//               #save-display-names, #display-names-saved, #scanned-at
//   reporting (e2e/browser/reporting.mjs relies on all of these; docs/reporting.md)
//     /apps/{app}     #dashboards-link, #explore-link
//     /apps/{app}/dashboards[/{page}]?from=&to=&filters=  (page: overview, acquisition,
//               engagement, retention, device, details, realtime; none → overview)
//               #dashboard-nav with a[data-page=<page>] (a.current = this page), inputs
//               #range-from, #range-to (type=date; change applies; errors #range-from-error,
//               #range-to-error, the server's `range` on #range-to-error), #dashboard-status,
//               filters editor (below, no prefix) + #apply-filters, #dashboard-error (.error),
//               #explore-link-dashboards. #dashboard [data-page][data-state=loading|ready|
//               error][data-from][data-to][data-filters] (range and `filters` parameter of
//               the answer on screen), in it one
//               #panel-<id> per panel [data-state=loading|ready|empty|error][data-chart=kpi|
//               line|bar|table|cohort][data-rows=<rows>] with h2.panel-title, and
//               table.panel-table (the panel's rows, cells exactly as the API sent them, null
//               empty; inside a collapsed <details> except for `table` panels: read it with
//               textContent). kpi: #kpi-<column> (text: exactly the number); line/bar:
//               div.chart#chart-<id> (ECharts canvas); cohort: table.cohort-grid#cohort-<id>
//               (tr[data-cohort], td[data-offset][data-returned]). Realtime: refreshed every 10 s.
//     filters editor (prefix "" on dashboards, "exploration-" on explore): #<p>filters
//               (fieldset), #<p>add-filter, rows #<p>filter-<n> with #<p>filter-<n>-field
//               (select of "column:<name>" | "event_parameter:<name>" | "user_attribute:<name>"),
//               #<p>filter-<n>-operator, #<p>filter-<n>-values (`in`: comma-separated),
//               #<p>remove-filter-<n>; errors #<p>filter-<n>-values-error …, #<p>filters-error
//     /apps/{app}/explore[?saved=<id>]  #exploration-form, #exploration-type (event, funnel,
//               path, retention, attribution), #exploration-from, #exploration-to (the
//               server's `range` error: #exploration-to-error); controls are named by their
//               request field and each has #<id>-error:
//               event: #event-events (fieldset) with checkboxes #event-event-<name>,
//                 #event-measure (count|users|sum), #event-sum-parameter ("" = event_value),
//                 #event-granularity, #event-group-by ("" = none, else as a filter field)
//               funnel: #funnel-steps (+ -error), #funnel-step-<n> (n from 0),
//                 #remove-funnel-step-<n>, #add-funnel-step, #funnel-window-value,
//                 #funnel-window-unit (minutes|hours|days), #funnel-group-by
//               path: #path-node, #path-split (session|gap), #path-gap-minutes, #path-start,
//                 #path-max-steps, #path-top-flows
//               retention: #retention-start-event, #retention-return-event,
//                 #retention-granularity, #retention-periods
//               attribution: #attribution-conversion-event, #attribution-touchpoints
//                 (fieldset) with checkboxes #attribution-touchpoint-<name>, #attribution-model
//                 (first_touch|last_touch|linear|position_based|time_decay),
//                 #attribution-half-life-hours, #attribution-window-value,
//                 #attribution-window-unit, #attribution-value-parameter ("" = event_value)
//               #run-exploration, #export-csv (downloads <name or type>-<from>-<to>.csv),
//               #export-error; #exploration-name, #save-exploration (PUT when a saved one is
//               open), #save-exploration-as-new, #exploration-saved (notice), #save-error;
//               #saved-explorations (ul) with li[data-saved=<id>] holding a[data-saved-id=<id>]
//               (opens and runs it), #download-saved-<id>, #delete-saved-<id> (+ #confirm-…),
//               #no-saved-explorations; #catalog-empty.
//               #exploration-result [data-state=idle|loading|ready|empty|error][data-run=<n>,
//               +1 per run][data-type], #exploration-error, #result-chart (ECharts),
//               table#result-table (raw rows, as on the dashboards), funnel: #funnel-conversion,
//               retention: table.cohort-grid#retention-cohorts, attribution: #attribution-total
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setToken, setUnauthorizedHandler } from './api.js';
import { CALLBACK_PATH, completeSignIn, createUserManager, loadAuthConfig, signIn, storedUser } from './auth.js';
import { Link, navigate, useLocation } from './router.jsx';
import { ErrorBox, permissions, SessionContext } from './ui.jsx';
import { ProjectsPage } from './pages/projects.jsx';
import { ProjectPage } from './pages/project.jsx';
import { AppPage } from './pages/app.jsx';
import { MetadataPage } from './pages/metadata.jsx';
import { PluginsPage } from './pages/plugins.jsx';
import { NewPipelinePage } from './pages/pipeline_new.jsx';
import { PipelinePage } from './pages/pipeline.jsx';

/**
 * Decides between the sign-in page and the console. States: `loading`, `failed` (auth config
 * unreadable), `signed-out` (auth on, no usable token), `ready`.
 */
function Boot() {
  const [state, setState] = useState({ kind: 'loading' });

  const start = async () => {
    setState({ kind: 'loading' });
    let config;
    try {
      config = await loadAuthConfig();
    } catch (error) {
      setState({ kind: 'failed', error });
      return;
    }
    if (!config.enabled) {
      // Dev stack: the API treats every request as an admin; there is nothing to sign in to.
      setToken(null);
      if (location.pathname === CALLBACK_PATH) navigate('/', { replace: true });
      setState({ kind: 'ready', config, userManager: null });
      return;
    }
    const userManager = createUserManager(config);
    // A 401 from any call (expired or revoked token) ends the session in this tab.
    setUnauthorizedHandler(() => {
      userManager.removeUser();
      setToken(null);
      setState({ kind: 'signed-out', config, userManager, message: 'Your session has ended; sign in again.' });
    });
    if (location.pathname === CALLBACK_PATH) {
      try {
        const { user, returnTo } = await completeSignIn(userManager);
        setToken(user.id_token);
        navigate(returnTo, { replace: true });
        setState({ kind: 'ready', config, userManager });
      } catch (error) {
        history.replaceState(null, '', '/');
        setState({ kind: 'signed-out', config, userManager, message: `Sign-in did not complete: ${error.message}` });
      }
      return;
    }
    const user = await storedUser(userManager);
    if (user) {
      setToken(user.id_token);
      setState({ kind: 'ready', config, userManager });
    } else {
      setState({ kind: 'signed-out', config, userManager });
    }
  };

  useEffect(() => {
    start();
  }, []);

  if (state.kind === 'loading') return <p class="boot">Loading…</p>;
  if (state.kind === 'failed') {
    return (
      <main class="narrow">
        <h1>clickstream</h1>
        <ErrorBox error={state.error} />
        <button type="button" onClick={start}>Try again</button>
      </main>
    );
  }
  if (state.kind === 'signed-out') return <SignInPage userManager={state.userManager} message={state.message} />;
  return <Shell config={state.config} userManager={state.userManager} />;
}

function SignInPage({ userManager, message }) {
  const [error, setError] = useState(null);
  const go = async () => {
    setError(null);
    try {
      // Come back to the page the user wanted (the callback path itself is no destination).
      const here = location.pathname === CALLBACK_PATH ? '/' : location.pathname + location.search;
      await signIn(userManager, here);
    } catch (failure) {
      setError(failure); // e.g. the provider's discovery document is unreachable
    }
  };
  return (
    <main class="narrow" id="sign-in-page">
      <h1>clickstream</h1>
      <p>Sign in to use the console.</p>
      {message && <p class="notice" id="sign-in-message">{message}</p>}
      <button type="button" id="sign-in" onClick={go}>Sign in</button>
      {error && <div class="error" role="alert">Cannot start sign-in: {error.message}</div>}
    </main>
  );
}

/** The signed-in console: top bar, optional auth-off banner, and the current page. */
function Shell({ config, userManager }) {
  const [me, setMe] = useState(null);
  const [meError, setMeError] = useState(null);
  useEffect(() => {
    api('GET', '/me').then(setMe, setMeError);
  }, []);

  const signOut = async () => {
    try {
      await userManager.signoutRedirect(); // ends the provider's session, comes back to /
    } catch {
      // No end_session_endpoint at the provider: forget the token locally.
      await userManager.removeUser();
      location.assign('/');
    }
  };

  const session = { me, authEnabled: Boolean(config.enabled), ...permissions(me && me.roles) };
  return (
    <SessionContext.Provider value={session}>
      <header id="topbar">
        <Link href="/" class="brand">clickstream</Link>
        <nav>
          <Link id="nav-projects" href="/">Projects</Link>
          <Link id="nav-plugins" href="/plugins">Plugins</Link>
        </nav>
        <div class="who">
          {me && <>
            <span id="me-subject">{me.subject}</span>
            <span id="me-roles" class="roles">{(me.roles || []).join(', ') || 'no roles'}</span>
          </>}
          {userManager && <button type="button" id="sign-out" class="secondary" onClick={signOut}>Sign out</button>}
        </div>
      </header>
      {!config.enabled && (
        <div id="auth-off" class="banner" role="status">Authentication is off (development configuration)</div>
      )}
      <main>
        <ErrorBox error={meError} />
        {me && !session.canOperate && <p class="notice" id="read-only">Read-only access: your roles do not allow changes.</p>}
        <Routes />
      </main>
    </SessionContext.Provider>
  );
}

// The reporting pages bring ECharts along: they are separate chunks (build.mjs splits the
// bundle), fetched on the first visit so that the rest of the console stays small. Loaded
// modules are kept, so later visits render at once.
const lazyPages = {
  dashboards: { load: () => import('./pages/dashboards.jsx'), name: 'DashboardsPage' },
  explore: { load: () => import('./pages/explore.jsx'), name: 'ExplorePage' },
};
const loadedPages = new Map();

function LazyPage({ module: key, ...props }) {
  const [, setLoaded] = useState(0);
  const [error, setError] = useState(null);
  const Page = loadedPages.get(key);
  useEffect(() => {
    if (Page) return undefined;
    let current = true;
    const { load, name } = lazyPages[key];
    load().then(
      (module) => {
        loadedPages.set(key, module[name]);
        if (current) setLoaded((n) => n + 1);
      },
      // Typically a new deployment replaced the chunk this tab knows about.
      (failure) => current && setError(new Error(`Cannot load this page (${failure.message}); reload the console.`)),
    );
    return () => {
      current = false;
    };
  }, [key, Page]);
  if (Page) return <Page {...props} />;
  if (error) return <ErrorBox error={error} />;
  return <p>Loading…</p>;
}

/** Path → page. Ids in paths are URL-decoded before they reach the pages. */
function Routes() {
  const { path, query } = useLocation();
  const match = (pattern) => {
    const found = pattern.exec(path);
    return found && found.slice(1).map(decodeURIComponent);
  };
  let m;
  if (path === '/' || path === '') return <ProjectsPage />;
  if (path === '/plugins') return <PluginsPage />;
  if (path === '/pipelines/new') return <NewPipelinePage projectId={query.get('project')} key={query.get('project')} />;
  if ((m = match(/^\/projects\/([^/]+)\/?$/))) return <ProjectPage projectId={m[0]} key={m[0]} />;
  if ((m = match(/^\/apps\/([^/]+)\/metadata\/?$/))) return <MetadataPage appId={m[0]} key={m[0]} />;
  // One dashboards page component per app: switching pages keeps the range inputs and filters.
  if ((m = match(/^\/apps\/([^/]+)\/dashboards\/?$/))) return <LazyPage module="dashboards" appId={m[0]} page="overview" key={`dashboards/${m[0]}`} />;
  if ((m = match(/^\/apps\/([^/]+)\/dashboards\/([^/]+)\/?$/))) return <LazyPage module="dashboards" appId={m[0]} page={m[1]} key={`dashboards/${m[0]}`} />;
  if ((m = match(/^\/apps\/([^/]+)\/explore\/?$/))) return <LazyPage module="explore" appId={m[0]} key={`explore/${m[0]}`} />;
  if ((m = match(/^\/apps\/([^/]+)\/?$/))) return <AppPage appId={m[0]} key={m[0]} />;
  if ((m = match(/^\/pipelines\/([^/]+)\/?$/))) return <PipelinePage pipelineId={m[0]} key={m[0]} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>Nothing lives at <code>{path}</code>. <Link href="/">Back to the projects</Link>.</p>
    </section>
  );
}

render(<Boot />, document.getElementById('app'));
