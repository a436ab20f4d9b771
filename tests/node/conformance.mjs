// The OpenID Foundation's certification test plans, module by module, played by a real relying party
// (npm `openid-client` v6) and a real browser (Debian's Chromium) against a running kubeoidc provider.
//
//   node conformance.mjs <plan>      (configuration as one JSON object on stdin)
//
// Plans: `basic` (Basic OP and Config OP), `logout` (RP-Initiated Logout), `backchannel` (Back-Channel
// Logout; the logout tokens themselves are checked by the pytest receiver). One browser plays a whole
// plan, as the suite's own runner does: one user signs in once, and each module then does what the
// suite's module of that name does. The result is one JSON object, a member per module; pytest asserts
// on it. No token, code or secret is printed: only claims, headers, flags and error codes.

import * as client from 'openid-client';

import { openBrowser } from './browser.mjs';
import { attempt, describeError, jwtParts } from './results.mjs';

async function readConfig() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const AUTH = {
  client_secret_basic: (secret) => client.ClientSecretBasic(secret),
  client_secret_post: (secret) => client.ClientSecretPost(secret),
  none: () => client.None(),
};
// Request parameters that are not shown in the result: they protect this very request.
const SECRET_PARAMS = new Set(['nonce', 'state', 'code_challenge', 'id_token_hint', 'request']);

/** An openid-client Configuration for one registered client (`{clientId, secret, authMethod, ...}`). */
async function configure(cfg, app) {
  const method = app.authMethod ?? 'client_secret_basic';
  const metadata = { token_endpoint_auth_method: method, ...(app.metadata ?? {}) };
  return client.discovery(new URL(cfg.issuer), app.clientId, metadata, AUTH[method](app.secret), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: 10,
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Run `navigate` (which sends the browser to the provider) and play the user through whatever the
 * provider shows (login, consent, the form_post page) until the client is reached or an error page is
 * shown. Returns the pages seen, the callback (as openid-client takes it: a URL, or a Request for a form
 * post) or the error page.
 */
async function drive(browser, cfg, navigate, { username = cfg.username, decision = 'allow' } = {}) {
  const { page } = browser;
  const clientOrigin = new URL(cfg.clientOrigin).origin;
  const seen = [];
  const postsBefore = browser.posts.length;
  await navigate();
  for (let step = 0; step < 8; step += 1) {
    const here = new URL(page.url());
    if (here.origin === clientOrigin) {
      const post = browser.posts.slice(postsBefore).at(-1);
      if (post && post.url === page.url()) {
        const callback = new Request(post.url, {
          method: 'POST',
          body: post.body,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        return { seen, callback, callbackParams: Object.fromEntries(new URLSearchParams(post.body)) };
      }
      return { seen, callback: here, callbackParams: Object.fromEntries(here.searchParams) };
    }
    const title = await page.title();
    if (here.pathname.endsWith('/login')) {
      seen.push({ page: 'login', username: await page.inputValue('#username') });
      await page.fill('#username', username);
      await page.fill('#password', cfg.password);
      await Promise.all([page.waitForURL((u) => !u.pathname.endsWith('/login')), page.click('button[type=submit]')]);
    } else if (here.pathname.endsWith('/consent')) {
      const scopes = await page.locator('ul.scopes li').evaluateAll((items) => items.map((item) => item.dataset.scope));
      seen.push({ page: 'consent', scopes });
      await Promise.all([
        page.waitForURL((u) => !u.pathname.endsWith('/consent')),
        page.click(`button[value=${decision}]`),
      ]);
    } else if (title === 'Signing in') {
      seen.push({ page: 'form_post' });
      await page.waitForURL((u) => u.origin === clientOrigin);
    } else {
      return { seen, errorPage: { path: here.pathname, title, text: await page.locator('main').innerText() } };
    }
  }
  throw new Error(`the browser went round in circles: ${seen.map((s) => s.page).join(', ')}`);
}

/** A code flow: authorize with `params` (plus PKCE, state and nonce unless left out), then exchange. */
async function codeFlow(browser, cfg, config, params = {}, options = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = options.state ?? client.randomState();
  const nonce = options.noNonce ? undefined : client.randomNonce();
  const request = {
    redirect_uri: cfg.redirectUri,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...(nonce ? { nonce } : {}),
    ...params,
  };
  const url = client.buildAuthorizationUrl(config, request);
  // Added after: openid-client sends a request with `request` or `request_uri` as JAR/PAR, the rest
  // left out, while the suite sends them beside the usual parameters.
  for (const [name, value] of Object.entries(options.extraQuery ?? {})) url.searchParams.set(name, value);
  const navigate = options.post ? () => postAuthorizationRequest(browser, url) : () => browser.page.goto(url.href);
  const driven = await drive(browser, cfg, navigate, options);
  const result = { seen: driven.seen.map((s) => s.page), seenPages: driven.seen };
  result.request = Object.fromEntries([...url.searchParams].filter(([name]) => !SECRET_PARAMS.has(name)));
  result.authMethod = config.clientMetadata().token_endpoint_auth_method;
  result.formPosted = driven.callback instanceof Request;
  if (driven.errorPage) return { ...result, errorPage: driven.errorPage };
  result.callbackParams = Object.keys(driven.callbackParams).sort();
  result.callbackError = driven.callbackParams.error ?? null;
  result.stateEchoed = driven.callbackParams.state === state;
  if (result.callbackError) {
    result.errorDescription = driven.callbackParams.error_description ?? null;
    return result;
  }
  const exchanged = await attempt(() =>
    client.authorizationCodeGrant(config, driven.callback, {
      pkceCodeVerifier: verifier,
      expectedNonce: nonce,
      expectedState: state,
      idTokenExpected: true,
      ...(options.maxAge !== undefined ? { maxAge: options.maxAge } : {}),
    }),
  );
  if (!exchanged.ok) return { ...result, exchange: exchanged };
  const tokens = exchanged.value;
  result.nonceEchoed = nonce === undefined ? !('nonce' in tokens.claims()) : tokens.claims().nonce === nonce;
  result.idToken = tokens.claims();
  result.idTokenHeader = jwtParts(tokens.id_token).header;
  result.scope = tokens.scope;
  result.hasRefreshToken = Boolean(tokens.refresh_token);
  // Kept for the module's own next steps, never printed.
  Object.defineProperty(result, 'tokens', { value: tokens, enumerable: false });
  Object.defineProperty(result, 'callback', { value: driven.callback, enumerable: false });
  Object.defineProperty(result, 'verifier', { value: verifier, enumerable: false });
  return result;
}

/** An authorization request sent as a form POST (OIDC Core §3.1.2.1), as a page of the client would. */
async function postAuthorizationRequest(browser, url) {
  const { page } = browser;
  const endpoint = `${url.origin}${url.pathname}`;
  const escape = (value) => String(value).replaceAll('&', '&amp;').replaceAll('"', '&quot;');
  const inputs = [...url.searchParams].map(([k, v]) => `<input type="hidden" name="${k}" value="${escape(v)}">`);
  await page.setContent(`<form method="post" action="${endpoint}">${inputs.join('')}</form>`);
  await Promise.all([page.waitForNavigation(), page.evaluate(() => document.forms[0].submit())]);
}

/** Userinfo three ways (OIDC Core §5.3.1; RFC 6750 §2.1 and §2.2). */
async function userinfoWays(config, accessToken, sub) {
  const endpoint = new URL(config.serverMetadata().userinfo_endpoint);
  const get = await attempt(() => client.fetchUserInfo(config, accessToken, sub));
  const postHeader = await attempt(async () => {
    const response = await client.fetchProtectedResource(config, accessToken, endpoint, 'POST');
    return { status: response.status, body: await response.json() };
  });
  const postBody = await attempt(async () => {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: accessToken }),
    });
    return { status: response.status, body: await response.json() };
  });
  return { get, postHeader, postBody };
}

function unsignedRequestObject(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}

async function basicPlan(cfg) {
  const results = {};
  const config = await configure(cfg, cfg.clients.basic);
  const browser = await openBrowser({ executablePath: cfg.chromium, clientOrigin: cfg.clientOrigin });
  try {
    results['oidcc-prompt-none-not-logged-in'] = await codeFlow(browser, cfg, config, { prompt: 'none' });

    // oidcc-server: the first sign-in, with every scope the client has, through login and consent.
    const first = await codeFlow(browser, cfg, config, { scope: cfg.allScopes });
    results['oidcc-server'] = first;
    results['oidcc-idtoken-rs256'] = { header: first.idTokenHeader, claims: first.idToken };
    const ways = await userinfoWays(config, first.tokens.access_token, first.idToken.sub);
    results['oidcc-userinfo-get'] = ways.get;
    results['oidcc-userinfo-post-header'] = ways.postHeader;
    results['oidcc-userinfo-post-body'] = ways.postBody;
    results['oidcc-userinfo-bad-token'] = await attempt(() =>
      client.fetchUserInfo(config, `${first.tokens.access_token}x`, first.idToken.sub),
    );
    const refreshed = await attempt(async () => {
      const tokens = await client.refreshTokenGrant(config, first.tokens.refresh_token);
      return { idToken: tokens.claims() ?? null, newRefreshToken: tokens.refresh_token !== first.tokens.refresh_token };
    });
    results['oidcc-refresh-token'] = { first: first.idToken, refreshed };

    for (const [module, scope] of [
      ['oidcc-scope-profile', 'openid profile'],
      ['oidcc-scope-email', 'openid email'],
      ['oidcc-scope-address', 'openid address'],
      ['oidcc-scope-phone', 'openid phone'],
      ['oidcc-scope-all', 'openid profile email address phone'],
      ['oidcc-ensure-other-scope-order-succeeds', 'email openid'],
    ]) {
      const flow = await codeFlow(browser, cfg, config, { scope });
      const userinfo = flow.tokens ? await client.fetchUserInfo(config, flow.tokens.access_token, flow.idToken.sub) : null;
      results[module] = { ...flow, userinfo };
    }
    // Scopes the provider does not know, or the client may not have, are left out (OIDC Core §3.1.2.1,
    // RFC 6749 §3.3): the token response's scope says what was granted.
    results['op-scope-unknown-ignored'] = await codeFlow(browser, cfg, config, {
      scope: 'openid email payments:write no-such-scope',
    });
    const narrowCfg = { ...cfg, redirectUri: cfg.clients.narrow.redirectUri };
    const narrow = await configure(cfg, cfg.clients.narrow);
    results['op-scope-not-the-clients-ignored'] = await codeFlow(browser, narrowCfg, narrow, {
      scope: 'openid profile address phone',
    });
    results['oidcc-ensure-request-without-nonce-succeeds-for-code-flow'] = await codeFlow(
      browser, cfg, config, {}, { noNonce: true },
    );
    results['oidcc-ensure-request-with-valid-pkce-succeeds'] = await codeFlow(browser, cfg, config);
    results['oidcc-display-page'] = await codeFlow(browser, cfg, config, { display: 'page' });
    results['oidcc-display-popup'] = await codeFlow(browser, cfg, config, { display: 'popup' });
    results['oidcc-ensure-request-with-unknown-parameter-succeeds'] = await codeFlow(browser, cfg, config, {
      extra_unknown_parameter: 'ignored',
    });
    results['oidcc-ui-locales'] = await codeFlow(browser, cfg, config, { ui_locales: 'se' });
    results['oidcc-claims-locales'] = await codeFlow(browser, cfg, config, { claims_locales: 'se' });
    results['oidcc-ensure-request-with-acr-values-succeeds'] = await codeFlow(browser, cfg, config, {
      acr_values: '1 2',
    });
    results['oidcc-prompt-none-logged-in'] = await codeFlow(browser, cfg, config, { prompt: 'none' });
    results['oidcc-id-token-hint'] = await codeFlow(browser, cfg, config, {
      prompt: 'none',
      id_token_hint: first.tokens.id_token,
    });
    results['oidcc-max-age-10000'] = await codeFlow(browser, cfg, config, { max_age: '10000' }, { maxAge: 10000 });
    results['oidcc-claims-essential'] = await (async () => {
      const flow = await codeFlow(browser, cfg, config, {
        claims: JSON.stringify({ userinfo: { name: { essential: true } }, id_token: { email: null } }),
      });
      const userinfo = await client.fetchUserInfo(config, flow.tokens.access_token, flow.idToken.sub);
      return { ...flow, userinfo };
    })();
    results['oidcc-ensure-post-request-succeeds'] = await codeFlow(browser, cfg, config, {}, { post: true });
    results['oidcc-response-mode-form-post'] = await (async () => {
      const headers = {};
      const onResponse = async (response) => {
        if (new URL(response.url()).pathname.endsWith('/authorize') && response.status() === 200) {
          Object.assign(headers, await response.allHeaders());
        }
      };
      browser.page.on('response', onResponse);
      const problemsBefore = browser.problems.length;
      try {
        const flow = await codeFlow(browser, cfg, config, { response_mode: 'form_post' });
        // A CSP violation (the inline script refused) would be a console error here.
        return { ...flow, pageHeaders: headers, problems: browser.problems.slice(problemsBefore) };
      } finally {
        browser.page.off('response', onResponse);
      }
    })();

    // Refusals: each must reach the client as an OAuth error, or stay on the provider's error page.
    results['oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported'] = await codeFlow(
      browser, cfg, config, {}, {
        extraQuery: {
          request: unsignedRequestObject({ client_id: cfg.clients.basic.clientId, scope: 'openid', response_type: 'code' }),
        },
      },
    );
    results['oidcc-ensure-request-object-with-redirect-uri'] = await codeFlow(browser, cfg, config, {}, {
      extraQuery: {
        request: unsignedRequestObject({
          client_id: cfg.clients.basic.clientId,
          redirect_uri: cfg.redirectUri,
          response_type: 'code',
        }),
      },
    });
    results['oidcc-request-uri-unsigned'] = await codeFlow(browser, cfg, config, {}, {
      extraQuery: { request_uri: 'https://rp.example.test/request.jwt' },
    });
    results['oidcc-response-type-missing'] = await codeFlow(browser, cfg, config, { response_type: '' });
    results['oidcc-ensure-registered-redirect-uri'] = await codeFlow(browser, cfg, config, {
      redirect_uri: `${cfg.redirectUri}/not-registered`,
    });
    results['oidcc-ensure-redirect-uri-in-authorization-request'] = await codeFlow(browser, cfg, config, {
      redirect_uri: '',
    });

    // Codes: a second exchange is refused, and revokes what the first one issued.
    const reused = await codeFlow(browser, cfg, config);
    const replay = await attempt(() =>
      client.authorizationCodeGrant(config, reused.callback, {
        pkceCodeVerifier: reused.verifier,
        expectedState: client.skipStateCheck,
      }),
    );
    const afterReplay = await attempt(() =>
      client.fetchUserInfo(config, reused.tokens.access_token, reused.idToken.sub),
    );
    results['oidcc-codereuse'] = { replay };
    results['oidcc-codereuse-30seconds'] = { replay, userinfoWithFirstAccessToken: afterReplay };

    // Another registered client, authenticating with client_secret_post; then signed userinfo.
    const postConfig = await configure(cfg, cfg.clients.post);
    results['oidcc-server-client-secret-post'] = await codeFlow(browser, { ...cfg, redirectUri: cfg.clients.post.redirectUri }, postConfig);
    const jwtConfig = await configure(cfg, cfg.clients.signedUserinfo);
    const jwtFlow = await codeFlow(browser, { ...cfg, redirectUri: cfg.clients.signedUserinfo.redirectUri }, jwtConfig);
    results['oidcc-userinfo-rs256'] = await attempt(async () => {
      const response = await client.fetchProtectedResource(
        jwtConfig, jwtFlow.tokens.access_token, new URL(jwtConfig.serverMetadata().userinfo_endpoint), 'GET',
      );
      const body = await response.text();
      const claims = await client.fetchUserInfo(jwtConfig, jwtFlow.tokens.access_token, jwtFlow.idToken.sub);
      return { contentType: response.headers.get('content-type'), header: jwtParts(body).header, claims };
    });

    // The rest of what discovery offers, each value once: the provider refuses none of them.
    results['display-touch'] = await codeFlow(browser, cfg, config, { display: 'touch' });
    results['display-wap'] = await codeFlow(browser, cfg, config, { display: 'wap' });
    results['response-mode-query'] = await codeFlow(browser, cfg, config, { response_mode: 'query' });
    results['acr-values-supported'] = await codeFlow(browser, cfg, config, {
      acr_values: config.serverMetadata().acr_values_supported.join(' '),
    });
    const publicConfig = await configure(cfg, cfg.clients.public);
    results['public-client'] = await codeFlow(
      browser, { ...cfg, redirectUri: cfg.clients.public.redirectUri }, publicConfig,
    );
    const machine = await configure(cfg, cfg.clients.machine);
    results['client-credentials'] = await attempt(async () => {
      const tokens = await client.clientCredentialsGrant(machine, { scope: 'api:read' });
      return { tokenType: tokens.token_type, scope: tokens.scope };
    });

    // Last, as they sign the user in again.
    results['oidcc-login-hint'] = await codeFlow(browser, cfg, config, { prompt: 'login', login_hint: cfg.username });
    results['oidcc-prompt-login'] = await codeFlow(browser, cfg, config, { prompt: 'login' });
    results['oidcc-prompt-select-account'] = await codeFlow(browser, cfg, config, { prompt: 'select_account' });
    results['oidcc-prompt-consent'] = await codeFlow(browser, cfg, config, { prompt: 'consent' });
    await sleep(2100);
    results['oidcc-max-age-1'] = await codeFlow(browser, cfg, config, { max_age: '1' }, { maxAge: 1 });
    results['oidcc-max-age-0'] = await codeFlow(browser, cfg, config, { max_age: '0' }, { maxAge: 0 });
    results['oidcc-id-token-hint-other-user'] = await codeFlow(
      browser, cfg, config, { prompt: 'none', id_token_hint: cfg.otherUsersIdToken ?? first.tokens.id_token },
    );
    results.authTimes = {
      first: first.idToken.auth_time,
      promptLogin: results['oidcc-prompt-login'].idToken?.auth_time,
      maxAge1: results['oidcc-max-age-1'].idToken?.auth_time,
    };
  } finally {
    await browser.close();
  }
  return results;
}


/** Where a logout request ends: on the client (with the query it got), or on a provider page. */
async function logoutAt(browser, cfg, url) {
  const { page } = browser;
  await page.goto(url);
  const here = new URL(page.url());
  if (here.origin === new URL(cfg.clientOrigin).origin) {
    return { landed: `${here.origin}${here.pathname}`, query: Object.fromEntries(here.searchParams) };
  }
  return { page: { path: here.pathname, title: await page.title(), text: await page.locator('main').innerText() } };
}

/** Whether the browser still has a session: a silent request gets a code, or login_required. */
async function sessionAlive(browser, cfg, config) {
  const silent = await codeFlow(browser, cfg, config, { prompt: 'none' });
  return silent.callbackError === null && !silent.errorPage;
}

async function logoutPlan(cfg) {
  const results = {};
  const config = await configure(cfg, cfg.clients.basic);
  const secondCfg = { ...cfg, redirectUri: cfg.clients.second.redirectUri };
  const second = await configure(cfg, cfg.clients.second);
  const hangingCfg = { ...cfg, redirectUri: cfg.clients.hanging.redirectUri };
  const hanging = await configure(cfg, cfg.clients.hanging);
  const revokerCfg = { ...cfg, redirectUri: cfg.clients.revoker.redirectUri };
  const revoker = await configure(cfg, cfg.clients.revoker);
  const browser = await openBrowser({ executablePath: cfg.chromium, clientOrigin: cfg.clientOrigin });
  const logoutUrl = (params) => client.buildEndSessionUrl(config, params).href;
  try {
    // oidcc-rp-initiated-logout, with back-channel logout: one session signs in to three clients (one
    // of which never answers its back channel), then the first client logs the user out.
    const first = await codeFlow(browser, cfg, config);
    const other = await codeFlow(browser, secondCfg, second);
    const third = await codeFlow(browser, hangingCfg, hanging);
    const state = client.randomState();
    const loggedOut = await logoutAt(browser, cfg, logoutUrl({
      id_token_hint: first.tokens.id_token,
      post_logout_redirect_uri: cfg.postLogoutRedirectUri,
      state,
    }));
    results['oidcc-rp-initiated-logout'] = {
      ...loggedOut,
      stateEchoed: loggedOut.query?.state === state,
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
      sids: [first.idToken.sid, other.idToken.sid, third.idToken.sid],
      sub: first.idToken.sub,
    };

    const signIn = async () => (await codeFlow(browser, cfg, config)).tokens.id_token;
    let idToken = await signIn();
    results['oidcc-rp-initiated-logout-bad-post-logout-redirect-uri'] = {
      ...(await logoutAt(browser, cfg, logoutUrl({
        id_token_hint: idToken,
        post_logout_redirect_uri: `${cfg.postLogoutRedirectUri}/not-registered`,
        state: client.randomState(),
      }))),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    // An unregistered URI is refused with an error page, the session kept; a fresh ID token for the next.
    idToken = await signIn();
    const [header, payload, signature] = idToken.split('.');
    const flipped = `${signature.slice(0, -4)}${signature.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    results['oidcc-rp-initiated-logout-modified-id-token-hint'] = {
      ...(await logoutAt(browser, cfg, logoutUrl({
        id_token_hint: `${header}.${payload}.${flipped}`,
        post_logout_redirect_uri: cfg.postLogoutRedirectUri,
      }))),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    results['oidcc-rp-initiated-logout-bad-id-token-hint'] = {
      ...(await logoutAt(browser, cfg, logoutUrl({
        id_token_hint: cfg.foreignIdToken,
        post_logout_redirect_uri: cfg.postLogoutRedirectUri,
      }))),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    const noHint = new URL(logoutUrl({ post_logout_redirect_uri: cfg.postLogoutRedirectUri, state: 'x' }));
    noHint.searchParams.set('client_id', cfg.clients.basic.clientId);
    results['oidcc-rp-initiated-logout-no-id-token-hint'] = {
      ...(await logoutAt(browser, cfg, noHint.href)),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    const onlyState = new URL(config.serverMetadata().end_session_endpoint);
    onlyState.searchParams.set('state', client.randomState());
    results['oidcc-rp-initiated-logout-only-state'] = {
      ...(await logoutAt(browser, cfg, onlyState.href)),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    const noParams = await logoutAt(browser, cfg, config.serverMetadata().end_session_endpoint);
    // The user confirms on the page: the session ends.
    if (noParams.page?.title === 'Sign out') {
      await Promise.all([browser.page.waitForNavigation(), browser.page.click('button[type=submit]')]);
    }
    results['oidcc-rp-initiated-logout-no-params'] = {
      ...noParams,
      afterConfirm: await browser.page.title(),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };

    idToken = await signIn();
    results['oidcc-rp-initiated-logout-no-post-logout-redirect-uri'] = {
      ...(await logoutAt(browser, cfg, logoutUrl({ id_token_hint: idToken }))),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    idToken = await signIn();
    results['oidcc-rp-initiated-logout-no-state'] = {
      ...(await logoutAt(browser, cfg, logoutUrl({
        id_token_hint: idToken,
        post_logout_redirect_uri: cfg.postLogoutRedirectUri,
      }))),
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };
    idToken = await signIn();
    const withQueryState = client.randomState();
    results['oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri'] = {
      ...(await logoutAt(browser, cfg, logoutUrl({
        id_token_hint: idToken,
        post_logout_redirect_uri: cfg.postLogoutRedirectUriWithQuery,
        state: withQueryState,
      }))),
      expectedState: withQueryState,
      sessionAliveAfter: await sessionAlive(browser, cfg, config),
    };

    // OP-FrontChannel-RpInitLogout: one session signs in to two clients with front-channel logout
    // pages; the provider's signed-out page loads both in frames (with iss and sid for the client that
    // asked for them), then goes on to the post-logout redirect URI.
    const frontACfg = { ...cfg, redirectUri: cfg.clients.frontA.redirectUri };
    const frontA = await configure(cfg, cfg.clients.frontA);
    const frontBCfg = { ...cfg, redirectUri: cfg.clients.frontB.redirectUri };
    const frontB = await configure(cfg, cfg.clients.frontB);
    const signedInA = await codeFlow(browser, frontACfg, frontA);
    const signedInB = await codeFlow(browser, frontBCfg, frontB);
    const callsBefore = browser.calls.length;
    const problemsBefore = browser.problems.length;
    const frontState = client.randomState();
    const landing = new URL(cfg.frontPostLogoutRedirectUri);
    const frontLogout = client.buildEndSessionUrl(frontA, {
      id_token_hint: signedInA.tokens.id_token,
      post_logout_redirect_uri: landing.href,
      state: frontState,
    });
    const landed = browser.page.waitForURL((url) => url.origin === landing.origin && url.pathname === landing.pathname);
    // The signed-out page moves on by itself once its frames have loaded: that navigation may overtake
    // the first one's completion, which is no failure.
    await browser.page.goto(frontLogout.href).catch(() => {});
    await landed;
    const frontHere = new URL(browser.page.url());
    results['op-frontchannel-rpinitlogout'] = {
      landed: `${frontHere.origin}${frontHere.pathname}`,
      query: Object.fromEntries(frontHere.searchParams),
      expectedState: frontState,
      frames: browser.calls.slice(callsBefore).filter((url) => new URL(url).pathname !== landing.pathname),
      sids: [signedInA.idToken.sid, signedInB.idToken.sid],
      problems: browser.problems.slice(problemsBefore),
      sessionAliveAfter: await sessionAlive(browser, frontACfg, frontA),
    };

    // Another user signing in on the same browser ends the first user's session.
    const before = await codeFlow(browser, cfg, config);
    const switched = await codeFlow(browser, cfg, config, { prompt: 'login' }, { username: cfg.otherUsername });
    results['another-user-signs-in'] = {
      before: { sub: before.idToken.sub, sid: before.idToken.sid },
      after: { sub: switched.idToken?.sub, sid: switched.idToken?.sid },
    };

    // A revoked grant ends the client's session too: its back channel is told (and retried).
    const revoked = await codeFlow(browser, revokerCfg, revoker, { scope: 'openid offline_access' });
    await client.tokenRevocation(revoker, revoked.tokens.refresh_token, { token_type_hint: 'refresh_token' });
    results['revoked-grant'] = { sid: revoked.idToken.sid, sub: revoked.idToken.sub };
  } finally {
    await browser.close();
  }
  return results;
}

const COMMANDS = { basic: basicPlan, logout: logoutPlan };

const [plan] = process.argv.slice(2);
if (!COMMANDS[plan]) {
  console.log(JSON.stringify({ failed: `unknown plan ${plan}` }));
  process.exit(2);
}
try {
  console.log(JSON.stringify(await COMMANDS[plan](await readConfig())));
} catch (error) {
  console.log(JSON.stringify({ failed: describeError(error), stack: error?.stack }));
  process.exit(1);
}
