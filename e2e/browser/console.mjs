// End-to-end test of the web console in headless Chromium: sign in at the OIDC issuer, create
// a project, an app and a pipeline through the UI, wait for the pipeline to be active, send
// events to the app's endpoint and watch the console's event count reach them.
//
//   CONSOLE_URL=http://127.0.0.1:3000 LOGIN=admin-user PROJECT_ID=shop APP_ID=shop_web \
//   EVENTS=5 TIMEOUT_SECONDS=240 ARTIFACTS_DIR=/tmp/artifacts node console.mjs
//
// Prints `CONSOLE E2E OK` on stdout and exits 0 when every step passed; logs each step to
// stderr with a timestamp. On failure: a screenshot in $ARTIFACTS_DIR (when set), the page's
// URL and text, the browser console and failed API calls on stderr, exit 1.
// The element ids used here are listed at the top of services/console/web/src/main.jsx.
import crypto from 'node:crypto';
import {
  expectOrError, fail, log, openBrowser, reportFailure, required, signIn, startBudget, step, textOf, until,
} from './harness.mjs';

const consoleUrl = required('CONSOLE_URL').replace(/\/+$/, '');
const login = required('LOGIN');
const projectId = required('PROJECT_ID');
const appId = required('APP_ID');
// A custom enricher plugin's component (the page-category example), uploaded on the Plugins
// page and ticked in the wizard.
const pluginModule = required('PLUGIN_MODULE');
const eventTotal = Number(process.env.EVENTS || 5);
const timeoutSeconds = Number(process.env.TIMEOUT_SECONDS || 240);
startBudget(timeoutSeconds);
const artifactsDir = process.env.ARTIFACTS_DIR;
const consoleOrigin = new URL(consoleUrl).origin;

/** A CAoA web-SDK `_page_view` event. */
function pageView() {
  const now = Date.now();
  return {
    event_type: '_page_view',
    event_id: crypto.randomUUID(),
    app_id: appId,
    unique_id: crypto.randomUUID(),
    device_id: crypto.randomUUID(),
    platform: 'Web',
    make: '',
    locale: 'en-US',
    screen_height: 800,
    screen_width: 1280,
    zone_offset: 0,
    system_language: 'en',
    country_code: 'US',
    sdk_version: '0.12.6',
    sdk_name: 'aws-solution-clickstream-sdk',
    host_name: '127.0.0.1',
    app_version: '',
    app_package_name: '',
    timestamp: now,
    user: {},
    attributes: {
      _session_id: 's1',
      _session_start_timestamp: now,
      _session_duration: 1000,
      _session_number: 1,
      _page_title: 't',
      _page_url: 'http://127.0.0.1/',
      _latest_referrer: '',
      _latest_referrer_host: '',
    },
  };
}

const { browser, page, browserLog } = await openBrowser(consoleOrigin);

let exitCode = 0;
try {
  // 1. Sign in at the issuer and come back signed in.
  step('1 sign-in');
  await signIn(page, consoleUrl, login);

  // 2. Create the project; an invalid id first must be refused next to the field.
  step('2 project');
  await page.locator('#nav-projects').click();
  await expectOrError(page, 'the new project form', '#new-project-form');
  await page.locator('#new-project-id').fill('Bad Id');
  await page.locator('#create-project').click();
  await until('the validation error for "Bad Id"', () => textOf(page, '#new-project-id-error'), { timeout: 10000 });
  log(`invalid id refused: ${await textOf(page, '#new-project-id-error')}`);
  await page.locator('#new-project-id').fill(projectId);
  await page.locator('#new-project-name').fill(`E2E ${projectId}`);
  await page.locator('#create-project').click();
  await expectOrError(page, `the page of project ${projectId}`, '#project-title');
  if (new URL(page.url()).pathname !== `/projects/${projectId}`) fail(`expected /projects/${projectId}, at ${page.url()}`);
  log(`project ${projectId} created`);

  // 3. Create the app, open its page, check the web snippet, read the endpoint.
  step('3 app');
  await expectOrError(page, 'the new app form', '#new-app-form');
  await page.locator('#new-app-id').fill(appId);
  await page.locator('#new-app-name').fill(`E2E ${appId}`);
  await page.locator('#new-app-platform').selectOption('web');
  await page.locator('#create-app').click();
  const appLink = `#apps a[href="/apps/${appId}"]`;
  await expectOrError(page, `app ${appId} in the project's app list`, appLink);
  await page.locator(appLink).click();
  await expectOrError(page, 'the app page', '#app-endpoint');
  const shownAppId = await textOf(page, '#app-id');
  if (shownAppId !== appId) fail(`the app page shows appId ${JSON.stringify(shownAppId)}, expected ${JSON.stringify(appId)}`);
  const endpoint = await textOf(page, '#app-endpoint');
  if (!/^https?:\/\//.test(endpoint || '')) fail(`the app page shows no endpoint URL: ${JSON.stringify(endpoint)}`);
  const webSnippet = await textOf(page, '#snippet-web');
  for (const expected of [appId, endpoint, 'ClickstreamAnalytics.init']) {
    if (!webSnippet || !webSnippet.includes(expected)) fail(`the web snippet lacks ${JSON.stringify(expected)}:\n${webSnippet}`);
  }
  log(`app ${appId} sends to ${endpoint}`);

  // 3b. Register a custom plugin and upload its module: a core module is refused with the
  // server's reason, the component is taken and its digest shown.
  step('3b plugin');
  await page.locator('#nav-plugins').click();
  await expectOrError(page, 'the new plugin form', '#new-plugin-form');
  await page.locator('#new-plugin-id').fill('page_category');
  await page.locator('#new-plugin-kind').selectOption('enrichment');
  await page.locator('#new-plugin-config').fill('/products=product');
  await page.locator('#create-plugin').click();
  const pluginRow = '[data-plugin-id="page_category"]';
  await expectOrError(page, 'the plugin in the list', pluginRow);
  await page.locator('#upload-module-page_category').setInputFiles({ name: 'core.wasm', mimeType: 'application/wasm', buffer: Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) });
  const refusal = await until('the refused upload\'s reason', async () => {
    const shown = await page.locator('.error').allTextContents();
    return shown.find((text) => text.includes('core WebAssembly module'));
  }, { timeout: 20000 });
  log(`core module refused: ${refusal.slice(0, 120)}`);
  await page.locator('#upload-module-page_category').setInputFiles(pluginModule);
  const digest = await until('the uploaded module\'s digest', async () => {
    const row = (await textOf(page, pluginRow)) || '';
    return row.includes('no module yet') ? null : row.match(/[0-9a-f]{12}/)?.[0];
  }, { timeout: 30000 });
  log(`plugin module uploaded: ${digest}`);
  // Back to the app's page, where the pipeline wizard starts from the project link.
  await page.goto(`${consoleUrl}/apps/${encodeURIComponent(appId)}`);
  await expectOrError(page, 'the app page', '#app-endpoint');

  // 4. Create the pipeline with the wizard; an interval of 0 must be refused first.
  step('4 pipeline wizard');
  await page.locator(`a[href="/projects/${projectId}"]`).first().click();
  await expectOrError(page, 'the "Create pipeline" button', '#create-pipeline');
  await page.locator('#create-pipeline').click();
  const atStep = (name) => expectOrError(page, `wizard step ${name}`, `#wizard-step-title[data-step=${name}]`);
  await atStep('ingestion');
  await page.locator('#ingestion-sink').selectOption('s3');
  await page.locator('#wizard-next').click();
  await atStep('processing');
  await page.locator('#processing-schedule').selectOption('interval');
  await page.locator('#processing-schedule-interval-seconds').fill('0');
  await page.locator('#wizard-next').click();
  await until('the error for interval 0', () => textOf(page, '#processing-schedule-interval-seconds-error'), { timeout: 10000 });
  if (!(await page.locator('#wizard-step-title[data-step=processing]').isVisible())) fail('the wizard moved on with an interval of 0');
  log(`interval 0 refused: ${await textOf(page, '#processing-schedule-interval-seconds-error')}`);
  await page.locator('#processing-schedule-interval-seconds').fill('10');
  await page.locator('#plugin-page_category').check();
  await page.locator('#wizard-next').click();
  await atStep('modeling');
  await page.locator('#modeling-engine').selectOption('duckdb');
  await page.locator('#wizard-next').click();
  await atStep('reporting');
  await page.locator('#reporting-enabled').check();
  await page.locator('#wizard-next').click();
  await atStep('review');
  const reviewedSpec = (await textOf(page, '#review-spec')).replace(/\s+/g, ' ');
  log(`spec: ${reviewedSpec}`);
  if (!reviewedSpec.includes('page_category')) fail('the reviewed spec does not run the plugin');
  await page.locator('#wizard-create').click();
  await expectOrError(page, 'the pipeline page', '#pipeline-phase');
  log(`pipeline created: ${page.url()}`);

  // 5. Wait for the lifecycle workflow to deploy it.
  step('5 pipeline active');
  let lastPhase = null;
  await until('phase "active"', async () => {
    const phase = await textOf(page, '#pipeline-phase');
    if (phase !== lastPhase) {
      log(`phase ${phase}: ${await textOf(page, '#pipeline-message')}`);
      lastPhase = phase;
    }
    if (phase === 'failed') fail(`the pipeline failed: ${await textOf(page, '#pipeline-message')}`);
    return phase === 'active';
  }, { interval: 1000 });

  // 6. Send events to the app's endpoint, as the web SDK does.
  step('6 send events');
  const events = Array.from({ length: eventTotal }, pageView);
  const target = `${endpoint}?appId=${encodeURIComponent(appId)}&platform=Web&event_bundle_sequence_id=1&upload_timestamp=${Date.now()}`;
  const response = await fetch(target, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  const answer = await response.text();
  if (response.status !== 200) fail(`POST ${target} → ${response.status}: ${answer}`);
  log(`sent ${eventTotal} events → 200 ${answer.slice(0, 200)}`);

  // 7. The ETL loads them; the app page's count (refreshed every 5 s) reaches EVENTS.
  step('7 event count');
  await page.goto(`${consoleUrl}/apps/${encodeURIComponent(appId)}`);
  await expectOrError(page, 'the app page', '#event-count');
  let lastCount = null;
  await until(`#event-count to show ${eventTotal}`, async () => {
    const count = await textOf(page, '#event-count');
    if (count !== lastCount) {
      log(`event count ${count}`);
      lastCount = count;
    }
    if (/^\d+$/.test(count || '') && Number(count) > eventTotal) fail(`the count went past ${eventTotal}: ${count}`);
    return count === String(eventTotal);
  }, { interval: 1000 });

  step('8 done');
  console.log('CONSOLE E2E OK');
} catch (error) {
  exitCode = 1;
  await reportFailure(error, { page, browserLog, artifactsDir, name: 'console-e2e' });
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
