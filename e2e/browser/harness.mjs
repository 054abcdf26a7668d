// What the console's browser tests (console.mjs, reporting.mjs) share: the required
// environment, one time budget per run, step logging on stderr, waits that fail with a
// message, and the console's conventions (errors in visible `.error` elements).

/** A check that failed: reported with its message alone (no stack). */
export class Failure extends Error {}
export const fail = (message) => {
  throw new Failure(message);
};

/** An environment variable the script cannot run without (exit 2 when missing). */
export function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

let deadline = Date.now() + 240_000;
let currentStep = 'setup';

/**
 * Starts the run's budget: every wait gets what is left of it, and a run still going a minute
 * after it (something hung outside a wait) exits 1.
 */
export function startBudget(timeoutSeconds) {
  deadline = Date.now() + timeoutSeconds * 1000;
  setTimeout(() => {
    console.error(`${stamp()} hard timeout: still running ${timeoutSeconds + 60} s after the start`);
    process.exit(1);
  }, (timeoutSeconds + 60) * 1000).unref();
}

export const remaining = () => Math.max(1000, deadline - Date.now());

export function stamp() {
  return new Date().toISOString();
}

export function log(message) {
  console.error(`${stamp()} [${currentStep}] ${message}`);
}

export function step(name) {
  currentStep = name;
  log('start');
}

/** The step running now (named in failure reports and screenshots). */
export const currentStepName = () => currentStep;

/** Waits until `condition()` returns a truthy value (polled), failing with `what` on timeout. */
export async function until(what, condition, { interval = 250, timeout = remaining() } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** The visible text of the first match, or null. */
export async function textOf(page, selector) {
  const locator = page.locator(selector).first();
  if ((await locator.count()) === 0 || !(await locator.isVisible())) return null;
  return (await locator.textContent()).trim();
}

/** The texts of every visible `.error` element on the page. */
export async function visibleErrors(page) {
  return page.locator('.error:visible').allTextContents();
}

/** Waits for `okSelector`; fails early with the page's error text if `.error` shows up first. */
export async function expectOrError(page, what, okSelector) {
  await until(what, async () => {
    if (await page.locator(okSelector).first().isVisible()) return true;
    const errors = await visibleErrors(page);
    if (errors.length > 0) fail(`${what}: the console shows an error: ${errors.join(' | ')}`);
    return false;
  });
}

/**
 * Headless Chromium on a new page; `browserLog` collects the console's messages, uncaught
 * errors and API answers of 400 and more from `consoleOrigin` (printed when a run fails).
 */
export async function openBrowser(consoleOrigin, { acceptDownloads = false } = {}) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads });
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
  return { browser, page, browserLog };
}

/**
 * Reports a failed run on stderr: the step and the reason, a screenshot in `artifactsDir`
 * (named `<name>-failure-<step number>.png`), the page's URL and text, and the browser log.
 */
export async function reportFailure(error, { page, browserLog, artifactsDir, name }) {
  console.error(`${stamp()} [${currentStep}] FAILED: ${error instanceof Failure ? error.message : error.stack || error}`);
  try {
    if (artifactsDir) {
      const { mkdir } = await import('node:fs/promises');
      const path = await import('node:path');
      await mkdir(artifactsDir, { recursive: true });
      const file = path.join(artifactsDir, `${name}-failure-${currentStep.split(' ')[0]}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.error(`screenshot: ${file}`);
    }
    console.error(`page URL: ${page.url()}`);
    console.error(`page text:\n${await page.evaluate(() => document.body ? document.body.innerText : '')}`);
  } catch (evidenceError) {
    console.error(`could not capture the page: ${evidenceError.message}`);
  }
  if (browserLog.length > 0) console.error(`browser log:\n${browserLog.join('\n')}`);
}

/**
 * Opens the console and signs in at the test issuer as `login` (its login form: any
 * password), coming back with `#me-subject` = `login`; with authentication off (`#auth-off`)
 * there is nothing to sign in to.
 */
export async function signIn(page, consoleUrl, login) {
  const consoleOrigin = new URL(consoleUrl).origin;
  await page.goto(consoleUrl);
  await until('the sign-in page or the console', async () =>
    (await page.locator('#sign-in').isVisible()) || (await page.locator('#topbar').isVisible()));
  if (await page.locator('#auth-off').isVisible()) {
    log('authentication is off (development configuration): nothing to sign in to');
    return;
  }
  if (!login) fail('the console asks for a sign-in but LOGIN is not set');
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
      const issuerError = page.locator('#oidc-error, .error').first();
      if ((await issuerError.count()) > 0 && (await issuerError.isVisible())) fail(`the issuer shows an error: ${await issuerError.textContent()}`);
    }
    return false;
  });
  await expectOrError(page, 'the top bar with the signed-in subject', '#me-subject');
  const subject = await textOf(page, '#me-subject');
  if (subject !== login) fail(`the top bar shows subject ${JSON.stringify(subject)}, expected ${JSON.stringify(login)}`);
  log(`signed in as ${subject} (roles: ${await textOf(page, '#me-roles')})`);
}
