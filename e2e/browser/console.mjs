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
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

const consoleUrl = required('CONSOLE_URL').replace(/\/+$/, '');
const login = required('LOGIN');
const projectId = required('PROJECT_ID');
const appId = required('APP_ID');
const eventTotal = Number(process.env.EVENTS || 5);
const timeoutSeconds = Number(process.env.TIMEOUT_SECONDS || 240);
const artifactsDir = process.env.ARTIFACTS_DIR;
const consoleOrigin = new URL(consoleUrl).origin;

// One budget for the whole run; every wait gets what is left of it.
const deadline = Date.now() + timeoutSeconds * 1000;
const remaining = () => Math.max(1000, deadline - Date.now());
// Last resort if something hangs outside a wait (the normal path fails with a screenshot).
setTimeout(() => {
  console.error(`${stamp()} hard timeout: still running ${timeoutSeconds + 60} s after the start`);
  process.exit(1);
}, (timeoutSeconds + 60) * 1000).unref();

function stamp() {
  return new Date().toISOString();
}

let currentStep = 'setup';
function log(message) {
  console.error(`${stamp()} [${currentStep}] ${message}`);
}
function step(name) {
  currentStep = name;
  log('start');
}

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message);
};

/** Waits until `condition()` returns a truthy value (polled), failing with `what` on timeout. */
async function until(what, condition, { interval = 500, timeout = remaining() } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The visible text of the first match, or null. */
async function textOf(page, selector) {
  const locator = page.locator(selector).first();
  if ((await locator.count()) === 0 || !(await locator.isVisible())) return null;
  return (await locator.textContent()).trim();
}

/** The texts of every visible `.error` element on the page. */
async function visibleErrors(page) {
  return page.locator('.error:visible').allTextContents();
}

/** Waits for `okSelector`; fails early with the page's error text if `.error` shows up first. */
async function expectOrError(page, what, okSelector) {
  await until(what, async () => {
    if (await page.locator(okSelector).first().isVisible()) return true;
    const errors = await visibleErrors(page);
    if (errors.length > 0) fail(`${what}: the console shows an error: ${errors.join(' | ')}`);
    return false;
  });
}

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

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(30000);
const browserLog = [];
page.on('console', (message) => browserLog.push(`console.${message.type()}: ${message.text()}`));
page.on('pageerror', (error) => browserLog.push(`page error: ${error.message}`));
page.on('response', (response) => {
  const url = response.url();
  if (url.startsWith(`${consoleOrigin}/api/`) && response.status() >= 400) {
    browserLog.push(`${response.request().method()} ${url} → ${response.status()}`);
  }
});

let exitCode = 0;
try {
  // 1. Sign in at the issuer and come back signed in.
  step('1 sign-in');
  await page.goto(consoleUrl);
  await until('the sign-in page or the console', async () =>
    (await page.locator('#sign-in').isVisible()) || (await page.locator('#topbar').isVisible()));
  if (await page.locator('#auth-off').isVisible()) {
    log('authentication is off (development configuration): nothing to sign in to');
  } else {
    await page.locator('#sign-in').click();
    await page.waitForURL((url) => url.origin !== consoleOrigin, { timeout: remaining() });
    log(`at the issuer: ${page.url()}`);
    await page.locator('input[name=login]').fill(login);
    await page.locator('input[name=password]').fill('any-password');
    await page.locator('button[type=submit]').first().click();
    // Back at the console, possibly after a consent page (oidc-provider's dev interactions).
    await until('the redirect back to the console', async () => {
      const url = new URL(page.url());
      if (url.origin === consoleOrigin && !url.pathname.startsWith('/auth/callback')) return true;
      if (url.origin !== consoleOrigin) {
        const consent = page.locator('form:has(input[name=prompt][value=consent]) button[type=submit], button:text-matches("^(continue|allow|accept|authorize)$", "i")').first();
        if ((await consent.count()) > 0 && (await consent.isVisible())) {
          log('accepting consent');
          await consent.click();
        }
        const issuerError = await page.locator('#oidc-error, .error').first();
        if ((await issuerError.count()) > 0 && (await issuerError.isVisible())) fail(`the issuer shows an error: ${await issuerError.textContent()}`);
      }
      return false;
    });
    await expectOrError(page, 'the top bar with the signed-in subject', '#me-subject');
    const subject = await textOf(page, '#me-subject');
    if (subject !== login) fail(`the top bar shows subject ${JSON.stringify(subject)}, expected ${JSON.stringify(login)}`);
    log(`signed in as ${subject} (roles: ${await textOf(page, '#me-roles')})`);
  }

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
  await page.locator('#wizard-next').click();
  await atStep('modeling');
  await page.locator('#modeling-engine').selectOption('duckdb');
  await page.locator('#wizard-next').click();
  await atStep('reporting');
  await page.locator('#reporting-enabled').check();
  await page.locator('#wizard-next').click();
  await atStep('review');
  log(`spec: ${(await textOf(page, '#review-spec')).replace(/\s+/g, ' ')}`);
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
  console.error(`${stamp()} [${currentStep}] FAILED: ${error instanceof Failure ? error.message : error.stack || error}`);
  try {
    if (artifactsDir) {
      await mkdir(artifactsDir, { recursive: true });
      const file = path.join(artifactsDir, `console-e2e-failure-${currentStep.split(' ')[0]}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.error(`screenshot: ${file}`);
    }
    console.error(`page URL: ${page.url()}`);
    console.error(`page text:\n${await page.evaluate(() => document.body ? document.body.innerText : '')}`);
  } catch (evidenceError) {
    console.error(`could not capture the page: ${evidenceError.message}`);
  }
  if (browserLog.length > 0) console.error(`browser log:\n${browserLog.join('\n')}`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
