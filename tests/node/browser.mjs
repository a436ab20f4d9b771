// A real browser for the relying-party tests: Debian's Chromium driven by playwright-core.
//
// The browser walks the provider's own pages (login, consent, logout) like a person would. The
// client's redirect URIs point at hosts that do not exist (https://app.example.test/...): every request
// to the client's origin is answered here, in the browser, and its URL recorded — that URL is what a
// real application would receive on its callback.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

// Without the last flags Chromium tries to reach Google's services at start and stalls offline.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Bounds every wait: a page that never comes fails the step instead of hanging the test.
const STEP_TIMEOUT_MS = 10_000;

/**
 * A fresh Chromium profile (its own user-data-dir, so no cookie survives from another run) whose
 * requests to `clientOrigin` are fulfilled locally and recorded in `calls`.
 */
export async function openBrowser({ executablePath, clientOrigin }) {
  const userDataDir = await mkdtemp(join(tmpdir(), 'kubeoidc-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: STEP_TIMEOUT_MS,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const calls = [];
  const waiters = [];
  await context.route(
    (url) => url.origin === clientOrigin,
    async (route) => {
      const url = route.request().url();
      calls.push(url);
      for (const resolve of waiters.splice(0)) resolve(url);
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>app</title>' });
    },
  );
  const page = context.pages()[0] ?? (await context.newPage());

  /** The next request the client's origin receives (a redirect back from the provider). */
  function nextClientCall() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the browser never reached the client')), STEP_TIMEOUT_MS);
      waiters.push((url) => {
        clearTimeout(timer);
        resolve(url);
      });
    });
  }

  async function close() {
    await context.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true });
  }

  return { context, page, calls, nextClientCall, close };
}

/** What a page shows: enough to assert in Python that the right client and scopes are on it. */
async function describePage(page) {
  return {
    path: new URL(page.url()).pathname,
    title: await page.title(),
    text: await page.locator('main').innerText(),
    clientName: await page.locator('.client-name').innerText(),
    clientDescription: await page.locator('.client-description').innerText(),
  };
}

/**
 * Sign in through the provider's login and consent pages, starting at `authorizationUrl`, and return
 * the URL the browser was finally sent to on the client (the authorization response).
 */
export async function signIn(browser, { authorizationUrl, username, password, screenshotDir }) {
  const { page } = browser;
  const pages = {};
  await page.goto(authorizationUrl);
  await page.waitForURL((url) => url.pathname.endsWith('/login'));
  pages.login = await describePage(page);
  if (screenshotDir) {
    pages.login.screenshot = join(screenshotDir, 'login.png');
    await page.screenshot({ path: pages.login.screenshot, fullPage: true });
  }

  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((url) => url.pathname.endsWith('/consent')),
    page.click('button[type=submit]'),
  ]);
  pages.consent = await describePage(page);
  pages.consent.scopes = await page.locator('ul.scopes li').evaluateAll((items) =>
    items.map((item) => ({ scope: item.dataset.scope, description: item.textContent })),
  );
  if (screenshotDir) {
    pages.consent.screenshot = join(screenshotDir, 'consent.png');
    await page.screenshot({ path: pages.consent.screenshot, fullPage: true });
  }

  const callback = browser.nextClientCall();
  await page.click('button[value=allow]');
  return { callbackUrl: await callback, pages };
}

/** Send the browser to `url` and return where on the client it lands, with no page in between. */
export async function followToClient(browser, url) {
  const callback = browser.nextClientCall();
  await browser.page.goto(url);
  return await callback;
}
