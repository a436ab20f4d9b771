// The benchmark's peer: panva's oidc-provider, configured like the kubeoidc provider under test.
//
// One confidential client (client_secret_basic), an RS256 key generated at start, JWT access tokens
// for client_credentials through a resource indicator, introspection and userinfo. Sign-in is an
// interaction endpoint that logs the one user in and grants what the client asked for, without a
// page: the harness drives /auth -> /interaction/<uid> -> /auth/<uid> with a cookie jar, like a
// browser that clicks through, and then mints codes with the session cookie.
//
// Usage: node peer.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'https://api.example.com';
const API_SCOPE = 'api:read';
const TTL = 600; // Seconds: as the kubeoidc provider's access tokens (and long enough for minted codes).

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const USER = {
  sub: '7b0c2f6e-alice',
  name: 'Alice Example',
  preferred_username: 'alice',
  email: 'alice@example.com',
  email_verified: true,
};

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: `openid profile email ${API_SCOPE}`,
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'profile', 'email', API_SCOPE],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  async findAccount(_ctx, id) {
    if (id !== USER.sub) return undefined;
    return { accountId: id, async claims() { return { ...USER }; } };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // The resource server only for client_credentials: userinfo accepts only tokens without one.
      async defaultResource(ctx, _client, oneOf) {
        if (oneOf) return oneOf;
        return ctx.oidc.params?.grant_type === 'client_credentials' ? RESOURCE : undefined;
      },
      async getResourceServerInfo() {
        return {
          scope: API_SCOPE,
          audience: RESOURCE,
          accessTokenTTL: TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
      async useGrantedResource() {
        return false;
      },
    },
  },
  ttl: {
    AccessToken: TTL,
    AuthorizationCode: TTL,
    ClientCredentials: TTL,
    IdToken: 3600,
    Grant: 86400,
    Interaction: 3600,
    Session: 86400,
  },
};

const provider = new Provider(issuer, configuration);
const callback = provider.callback();

async function interaction(req, res) {
  const { prompt, params, session, grantId } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: USER.sub } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { missingOIDCScope, missingOIDCClaims } = prompt.details;
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
    mergeWithLastSubmission: true,
  });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.statusCode = 500;
      res.end(String(error));
    });
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
