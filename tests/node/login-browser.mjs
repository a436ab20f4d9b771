// A person signing in for `kubeoidc login` in Debian's Chromium: given the URL the plugin printed (an
// authorization URL whose redirect goes to the plugin's loopback server, or the device verification
// page with the code filled in), go through the provider's pages and report where the browser ended.
//
// Reads {executablePath, url, username, password} as JSON on stdin; prints {finalUrl, text} or {failed}.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];
const STEP_TIMEOUT_MS = 15_000;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const { executablePath, url, username, password } = await readStdin();
const userDataDir = await mkdtemp(join(tmpdir(), 'kubeoidc-login-chromium-'));
// The provider's certificate comes from the test's own CA; what trusts it is under test elsewhere
// (kube-apiserver, kubeoidc login), so the browser is told to accept it.
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: CHROMIUM_ARGS,
  ignoreHTTPSErrors: true,
  timeout: STEP_TIMEOUT_MS,
});
context.setDefaultTimeout(STEP_TIMEOUT_MS);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  if (new URL(page.url()).pathname.endsWith('/device')) {
    // The code came in the link: the person only confirms it (RFC 8628 section 5.4).
    await Promise.all([
      page.waitForURL((next) => next.pathname.endsWith('/login')),
      page.click('button[type=submit]'),
    ]);
  }
  await page.waitForURL((next) => next.pathname.endsWith('/login'));
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((next) => next.pathname.endsWith('/consent')),
    page.click('button[type=submit]'),
  ]);
  await page.click('button[value=allow]');
  // The end: the plugin's loopback page, or the provider's page saying the device is connected.
  await page.waitForFunction(() =>
    /Signed in|Signing in failed|Device connected|Device refused/.test(document.body?.innerText ?? ''),
  );
  console.log(JSON.stringify({ finalUrl: page.url(), text: await page.locator('body').innerText() }));
} catch (error) {
  console.log(JSON.stringify({ failed: String(error) }));
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true });
}
