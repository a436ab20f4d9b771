// Signing in to an application through kubeoidc and an upstream OpenID Provider, in Chromium:
//
//   app (openid-client) -> kubeoidc /authorize -> kubeoidc login page -> "Sign in with <upstream>"
//   -> the upstream's login and consent pages -> kubeoidc /callback -> kubeoidc consent -> app callback
//
// then the app redeems the code (ID token signature checked against kubeoidc's JWKS) and reads userinfo.
// Afterwards the browser replays the upstream's callback, brings a forged `state`, and tries an upstream
// that is down: each is recorded as the page kubeoidc showed (status and text).
//
//   node upstream-signin.mjs     (configuration as one JSON object on stdin; one JSON result on stdout)
//
// No token, code or secret is printed: only claims, statuses and page texts.

import * as client from 'openid-client';

import { openBrowser } from './browser.mjs';

async function readConfig() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** Where the browser lands after `action`, with the status and visible text of that page. */
async function pageAfter(page, action) {
  const response = await action();
  const text = await page.locator('body').innerText();
  return { status: response?.status() ?? null, path: new URL(page.url()).pathname, text };
}

async function main() {
  const cfg = await readConfig();
  const browser = await openBrowser({ executablePath: cfg.chromium, clientOrigin: cfg.clientOrigin });
  const { page } = browser;
  const result = {};
  try {
    const app = await client.discovery(
      new URL(cfg.issuer),
      cfg.clientId,
      { token_endpoint_auth_method: 'client_secret_basic' },
      client.ClientSecretBasic(cfg.clientSecret),
      { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks], timeout: 10 },
    );
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const authorizationUrl = client.buildAuthorizationUrl(app, {
      redirect_uri: cfg.redirectUri,
      scope: cfg.scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });

    // The upstream's answer to kubeoidc, as the browser carried it (to replay it later).
    let upstreamCallback = null;
    page.on('request', (request) => {
      if (request.url().startsWith(`${cfg.issuer}/callback?`)) upstreamCallback = request.url();
    });

    await page.goto(authorizationUrl.href);
    await page.waitForURL((url) => url.pathname.endsWith('/login'));
    result.loginPage = {
      text: await page.locator('main').innerText(),
      buttons: await page.locator('form.upstream button').allInnerTexts(),
      passwordForm: (await page.locator('#password').count()) > 0,
    };

    await Promise.all([
      page.waitForURL((url) => url.origin === cfg.upstreamIssuer),
      page.click(`form.upstream button[value="${cfg.source}"]`),
    ]);
    await page.fill('input[name=login]', cfg.upstreamLogin);
    await page.fill('input[name=password]', 'any password');
    await page.click('button.login-submit');
    // The upstream's consent page ("Continue"), then kubeoidc's own consent page.
    await page.waitForURL((url) => url.origin === cfg.upstreamIssuer && url.pathname.startsWith('/interaction'));
    await Promise.all([
      page.waitForURL((url) => url.origin !== cfg.upstreamIssuer && url.pathname.endsWith('/consent')),
      page.click('button.login-submit'),
    ]);
    const callbackUrl = await browser.untilClient(() => page.click('button[value=allow]'));

    const tokens = await client.authorizationCodeGrant(app, new URL(callbackUrl), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    result.idToken = tokens.claims();
    result.userinfo = await client.fetchUserInfo(app, tokens.access_token, result.idToken.sub);
    // What went wrong on the way, before the error pages below (which are errors on purpose).
    result.browserProblems = [...browser.problems];

    // The same upstream answer again: its state was spent.
    result.replay = await pageAfter(page, () => page.goto(upstreamCallback));
    // An answer with a state kubeoidc never issued.
    const forged = new URL(upstreamCallback);
    forged.searchParams.set('state', 'forged-state-value');
    result.forged = await pageAfter(page, () => page.goto(forged.href));

    // An upstream that does not answer: the button leads to kubeoidc's error page, not a 500.
    if (cfg.downSource) {
      const again = client.buildAuthorizationUrl(app, {
        redirect_uri: cfg.redirectUri,
        scope: cfg.scope,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        prompt: 'login',
      });
      await page.goto(again.href);
      await page.waitForURL((url) => url.pathname.endsWith('/login'));
      result.down = await pageAfter(page, async () => {
        const [response] = await Promise.all([
          page.waitForNavigation(),
          page.click(`form.upstream button[value="${cfg.downSource}"]`),
        ]);
        return response;
      });
    }
  } catch (error) {
    result.failed = `${error?.constructor?.name}: ${error?.message}`;
    result.at = page.url();
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
