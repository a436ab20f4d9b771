// A real relying party: npm `openid-client` (v6) against a running kubeoidc provider.
//
//   node relying-party.mjs <scenario>      (configuration as one JSON object on stdin)
//
// Scenarios:
//   code-flow           authorization code + PKCE S256 + nonce + state, signing in with Chromium; then
//                       userinfo, refresh (rotation, reuse), introspection, revocation, RP-initiated
//                       logout. A public client (no `clientSecret`) does what a public client may.
//   client-credentials  a machine client's token, introspected by the same client.
//
// A confidential client authenticates with `clientSecret`, or with `privateJwk` (a private JWK with `alg`
// and `kid`) and `authMethod: 'private_key_jwt'`.
//
// The result is one JSON object on stdout; pytest asserts on it. A step that fails on purpose (an
// error the provider must answer) is recorded as `{error, status, ...}` instead of throwing. No token,
// code or secret is printed: only claims, flags and error codes.

import * as client from 'openid-client';

import { followToClient, openBrowser, signIn } from './browser.mjs';
import { attempt, describeError, jwtParts } from './results.mjs';

async function readConfig() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** WebCrypto's parameters for a private JWK's algorithm (what `PrivateKeyJwt` signs with). */
const SIGNING_ALGORITHMS = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
};

/** The client's private key (`privateJwk`, made by the test) as openid-client takes it: key and kid. */
async function privateKey(jwk) {
  const key = await crypto.subtle.importKey('jwk', jwk, SIGNING_ALGORITHMS[jwk.alg], false, ['sign']);
  return { key, kid: jwk.kid };
}

const AUTH_METHODS = {
  client_secret_basic: (cfg) => client.ClientSecretBasic(cfg.clientSecret),
  client_secret_post: (cfg) => client.ClientSecretPost(cfg.clientSecret),
  // An HMAC of the secret: the provider refuses it on purpose (it keeps no plain secret to check it).
  client_secret_jwt: (cfg) => client.ClientSecretJwt(cfg.clientSecret ?? 'not-a-secret-the-provider-has'),
  private_key_jwt: async (cfg) => client.PrivateKeyJwt(await privateKey(cfg.privateJwk)),
  none: () => client.None(),
};

/** Discovery with the client's authentication (`authMethod`, else Basic with a secret, none without). */
async function configure(cfg) {
  // openid-client's default for a bare secret is client_secret_post; the provider holds each client to
  // its registered method, so the method is always named.
  const method = cfg.authMethod ?? (cfg.clientSecret ? 'client_secret_basic' : 'none');
  const auth = await AUTH_METHODS[method](cfg);
  const metadata = { token_endpoint_auth_method: method };
  // The client's registered ID token algorithm (idTokenSignedResponseAlg): openid-client accepts only
  // that one, RS256 when none is named (OpenID Connect Dynamic Client Registration 2).
  if (cfg.idTokenAlg) metadata.id_token_signed_response_alg = cfg.idTokenAlg;
  // The test provider listens on plain http on loopback: openid-client refuses that unless told.
  // Non-repudiation checks make openid-client verify every ID token's signature against the JWKS too
  // (by default it trusts TLS for tokens from the token endpoint, OIDC Core §3.1.3.7 step 6).
  return client.discovery(new URL(cfg.issuer), cfg.clientId, metadata, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: 10,
  });
}

// Request parameters that are not shown in the result: they protect this very request.
const SECRET_PARAMS = new Set(['nonce', 'state', 'code_challenge']);

async function codeFlow(cfg) {
  const config = await configure(cfg);
  const server = config.serverMetadata();
  const result = { discovery: { issuer: server.issuer, endSession: server.end_session_endpoint } };
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: cfg.redirectUri,
    scope: cfg.scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  result.authorizationRequest = Object.fromEntries(
    [...authorizationUrl.searchParams].filter(([name]) => !SECRET_PARAMS.has(name)),
  );

  const browser = await openBrowser({
    executablePath: cfg.chromium,
    clientOrigin: new URL(cfg.redirectUri).origin,
  });
  try {
    const signedIn = await signIn(browser, {
      authorizationUrl: authorizationUrl.href,
      username: cfg.username,
      password: cfg.password,
      screenshotDir: cfg.screenshotDir,
    });
    result.pages = signedIn.pages;
    const callback = new URL(signedIn.callbackUrl);
    result.callback = {
      origin: callback.origin,
      path: callback.pathname,
      params: [...callback.searchParams.keys()].sort(),
      iss: callback.searchParams.get('iss'),
    };
    result.cookies = (await browser.context.cookies(cfg.issuer)).map((c) => ({
      name: c.name,
      httpOnly: c.httpOnly,
      secure: c.secure,
      sameSite: c.sameSite,
      path: c.path,
    }));

    // The code exchange checks state, iss, PKCE, and the ID token (signature, iss, aud, exp, nonce).
    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedNonce: nonce,
      expectedState: state,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    result.token = {
      tokenType: tokens.token_type,
      expiresIn: tokens.expiresIn(),
      scope: tokens.scope,
      hasRefreshToken: Boolean(tokens.refresh_token),
      accessTokenHeader: jwtParts(tokens.access_token).header,
      idTokenHeader: jwtParts(tokens.id_token).header,
      idToken: claims,
    };
    result.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

    // Refresh: a new access token, a new refresh token (rotation) and a new ID token for the same user.
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    result.refresh = {
      rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
      newAccessToken: refreshed.access_token !== tokens.access_token,
      idToken: refreshed.claims() ?? null,
    };
    result.userinfoAfterRefresh = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);

    if (cfg.clientSecret || cfg.privateJwk) {
      // Introspection and revocation by the confidential client that holds the tokens.
      result.introspection = {
        access: await client.tokenIntrospection(config, refreshed.access_token),
        refresh: await client.tokenIntrospection(config, refreshed.refresh_token, {
          token_type_hint: 'refresh_token',
        }),
        spentRefresh: await client.tokenIntrospection(config, tokens.refresh_token, {
          token_type_hint: 'refresh_token',
        }),
      };
      await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
      result.afterRevocation = {
        refresh: await client.tokenIntrospection(config, refreshed.refresh_token, {
          token_type_hint: 'refresh_token',
        }),
        access: await client.tokenIntrospection(config, refreshed.access_token),
        refreshGrant: await attempt(() => client.refreshTokenGrant(config, refreshed.refresh_token)),
        userinfo: await attempt(() => client.fetchUserInfo(config, refreshed.access_token, claims.sub)),
      };
    } else {
      // Reusing a spent refresh token revokes the whole grant, its successor included.
      result.reuse = {
        spent: await attempt(() => client.refreshTokenGrant(config, tokens.refresh_token)),
        successor: await attempt(() => client.refreshTokenGrant(config, refreshed.refresh_token)),
      };
    }

    // Single sign-on: the session and the remembered consent give a code with no page shown.
    const silentState = client.randomState();
    const silentVerifier = client.randomPKCECodeVerifier();
    const silentUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: cfg.redirectUri,
      scope: cfg.scope,
      code_challenge: await client.calculatePKCECodeChallenge(silentVerifier),
      code_challenge_method: 'S256',
      state: silentState,
      prompt: 'none',
    });
    const silent = new URL(await followToClient(browser, silentUrl.href));
    result.silent = await attempt(async () => {
      const again = await client.authorizationCodeGrant(config, silent, {
        pkceCodeVerifier: silentVerifier,
        expectedState: silentState,
      });
      return { sub: again.claims().sub, authTime: again.claims().auth_time };
    });

    if (cfg.postLogoutRedirectUri) {
      // RP-initiated logout: the provider ends the session and sends the browser back to the client.
      const logoutState = client.randomState();
      const endSessionUrl = client.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token,
        post_logout_redirect_uri: cfg.postLogoutRedirectUri,
        state: logoutState,
      });
      const landed = new URL(await followToClient(browser, endSessionUrl.href));
      result.logout = {
        landed: `${landed.origin}${landed.pathname}`,
        stateEchoed: landed.searchParams.get('state') === logoutState,
        cookies: (await browser.context.cookies(cfg.issuer)).map((c) => c.name),
      };
      // After logout, a silent request must need a login again (OIDC Core §3.1.2.6 login_required).
      const afterState = client.randomState();
      const afterVerifier = client.randomPKCECodeVerifier();
      const afterUrl = client.buildAuthorizationUrl(config, {
        redirect_uri: cfg.redirectUri,
        scope: cfg.scope,
        code_challenge: await client.calculatePKCECodeChallenge(afterVerifier),
        code_challenge_method: 'S256',
        state: afterState,
        prompt: 'none',
      });
      const refused = new URL(await followToClient(browser, afterUrl.href));
      result.afterLogout = await attempt(() =>
        client.authorizationCodeGrant(config, refused, {
          pkceCodeVerifier: afterVerifier,
          expectedState: afterState,
        }),
      );
    }

    // Last, as it revokes what the code issued (RFC 6749 §4.1.2): the code is single-use.
    result.codeReplay = await attempt(() =>
      client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedNonce: nonce,
        expectedState: state,
      }),
    );
    result.browserProblems = browser.problems;
    // Every page the client's origin was sent, without the query (which holds codes).
    result.clientCalls = browser.calls.map((url) => `${new URL(url).origin}${new URL(url).pathname}`);
  } finally {
    await browser.close();
  }
  return result;
}

async function clientCredentials(cfg) {
  const config = await configure(cfg);
  const granted = await attempt(async () => {
    const tokens = await client.clientCredentialsGrant(config, cfg.scope ? { scope: cfg.scope } : {});
    const access = jwtParts(tokens.access_token);
    return {
      tokenType: tokens.token_type,
      expiresIn: tokens.expiresIn(),
      scope: tokens.scope,
      hasRefreshToken: Boolean(tokens.refresh_token),
      hasIdToken: Boolean(tokens.id_token),
      accessTokenHeader: access.header,
      accessTokenClaims: access.payload,
      introspection: await client.tokenIntrospection(config, tokens.access_token),
    };
  });
  return { grant: granted };
}

const SCENARIOS = { 'code-flow': codeFlow, 'client-credentials': clientCredentials };

const scenario = SCENARIOS[process.argv[2]];
if (!scenario) {
  console.error(`usage: relying-party.mjs <${Object.keys(SCENARIOS).join('|')}>  (JSON config on stdin)`);
  process.exit(2);
}
try {
  const result = await scenario(await readConfig());
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  // The step that failed unexpectedly, with what openid-client said, for pytest to show.
  process.stdout.write(`${JSON.stringify({ failed: describeError(error), stack: error?.stack })}\n`);
  process.exitCode = 1;
}
