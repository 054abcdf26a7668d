// Serves a page using the CAoA web SDK on its own origin, opens it in headless Chromium and
// checks what happens to the SDK's requests to the collector.
//   COLLECTOR_URL=http://127.0.0.1:8080/collect APP_ID=demo-app node run.mjs
//   EXPECT_BLOCKED=1 …   the collector does not allow this origin: no request may succeed
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const collectorUrl = process.env.COLLECTOR_URL;
const appId = process.env.APP_ID;
const expectBlocked = process.env.EXPECT_BLOCKED === '1';
if (!collectorUrl || !appId) throw new Error('COLLECTOR_URL and APP_ID are required');

const bundle = await esbuild.build({
  entryPoints: [path.join(here, 'page-entry.js')],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  write: false,
  define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
  logLevel: 'error',
});
const script = bundle.outputFiles[0].contents;
const page = '<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body><h1>Shop</h1><script src="/app.js"></script></body></html>';

const server = http.createServer((request, response) => {
  if (request.url.startsWith('/app.js')) {
    response.writeHead(200, { 'content-type': 'text/javascript' });
    response.end(script);
  } else {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(page);
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failure = null;
try {
  const tab = await browser.newPage();
  const messages = [];
  tab.on('console', (message) => messages.push(message.text()));
  const accepted = [];
  tab.on('response', (response) => {
    if (response.url().startsWith(collectorUrl) && response.request().method() === 'POST' && response.status() === 200) accepted.push(response.url());
  });
  await tab.goto(`${origin}/?appId=${encodeURIComponent(appId)}&endpoint=${encodeURIComponent(collectorUrl)}`);
  await tab.waitForFunction(() => window.clickstreamRecorded === true, null, { timeout: 15000 });
  const deadline = Date.now() + (expectBlocked ? 5000 : 20000);
  while (Date.now() < deadline && (expectBlocked || accepted.length === 0)) await new Promise((resolve) => setTimeout(resolve, 200));
  if (expectBlocked && accepted.length > 0) failure = `requests from ${origin} were accepted although the origin is not allowed`;
  if (!expectBlocked && accepted.length === 0) failure = `no request from ${origin} got a 200; console:\n${messages.join('\n')}`;
  console.log(JSON.stringify({ origin, accepted: accepted.length, expectBlocked }));
} finally {
  await browser.close();
  server.close();
}
if (failure) {
  console.error(failure);
  process.exit(1);
}
