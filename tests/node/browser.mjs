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
  // Nothing but the loopback provider is resolved: a request that escapes interception fails at once
  // instead of waiting on DNS.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

// Bounds every wait: a page that never comes fails the step instead of hanging the test.
const STEP_TIMEOUT_MS = 10_000;

// What the client's callback shows: the test reads the URL, not the page.
const APP_PAGE = '<!doctype html><title>Application</title><p>Signed in.</p>';

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
  const page = context.pages()[0] ?? (await context.newPage());
  const calls = [];
  const posts = [];
  const waiters = [];
  // What a person would see go wrong: script errors, console errors (a CSP violation is one), and
  // requests that failed. Expected to stay empty.
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // Browsers ask every origin for /favicon.ico on their own; neither the provider nor the fake client
  // serves one, and that is no fault.
  const isFavicon = (url) => url && new URL(url).pathname === '/favicon.ico';
  page.on('console', (message) => {
    const { url } = message.location();
    if (message.type() === 'error' && !isFavicon(url)) problems.push(`console: ${message.text()} (${url})`);
  });
  page.on('requestfailed', (request) => {
    if (isFavicon(request.url())) return;
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  // Chromium's own interception (CDP Fetch), not page.route: Playwright never routes the hops of a
  // redirect chain (see page.route's documentation), and the provider reaches the client only by
  // redirecting. Only requests to the client's origin pause here; everything else is untouched.
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', async (event) => {
    const isPage = event.resourceType === 'Document';
    if (isPage) {
      calls.push(event.request.url);
      // A form-posted authorization response (response_mode=form_post) arrives in the body.
      if (event.request.method === 'POST') posts.push({ url: event.request.url, body: event.request.postData ?? '' });
      for (const resolve of waiters.splice(0)) resolve(event.request.url);
    }
    await cdp
      .send('Fetch.fulfillRequest', {
        requestId: event.requestId,
        responseCode: isPage ? 200 : 404,
        responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }],
        body: Buffer.from(isPage ? APP_PAGE : '').toString('base64'),
      })
      .catch(() => {}); // the page may be gone already (closing)
  });
  await cdp.send('Fetch.enable', {
    patterns: [{ urlPattern: `${clientOrigin}/*`, requestStage: 'Request' }],
  });

  /** Run `action` (which leads the browser to the client) and return the URL the client was sent. */
  async function untilClient(action) {
    let timer;
    const reached = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('the browser never reached the client')), STEP_TIMEOUT_MS);
      waiters.push(resolve);
    });
    try {
      await action();
      return await reached;
    } finally {
      clearTimeout(timer);
      reached.catch(() => {}); // when the action failed first, its error is the one reported
    }
  }

  async function close() {
    await context.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true });
  }

  return { context, page, calls, posts, problems, untilClient, close };
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
    // The password form's button: upstream identity sources add buttons of their own above it.
    page.click('form:has(#password) button[type=submit]'),
  ]);
  pages.consent = await describePage(page);
  pages.consent.scopes = await page.locator('ul.scopes li').evaluateAll((items) =>
    items.map((item) => ({ scope: item.dataset.scope, description: item.textContent })),
  );
  if (screenshotDir) {
    pages.consent.screenshot = join(screenshotDir, 'consent.png');
    await page.screenshot({ path: pages.consent.screenshot, fullPage: true });
  }

  const callbackUrl = await browser.untilClient(() => page.click('button[value=allow]'));
  return { callbackUrl, pages };
}

/** Send the browser to `url` and return where on the client it lands, with no page in between. */
export async function followToClient(browser, url) {
  return browser.untilClient(() => browser.page.goto(url));
}
