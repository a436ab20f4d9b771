// The benchmark's peer: panva's oidc-provider, configured like the kubeoidc provider under test.
//
// One confidential client (client_secret_basic), an RS256 key generated at start, JWT access tokens
// for client_credentials through a resource indicator, introspection and userinfo. Sign-in is an
// interaction endpoint that logs the one user in and grants what the client asked for, without a
// page: the harness drives /auth -> /interaction/<uid> -> /auth/<uid> with a cookie jar, like a
// browser that clicks through, and then mints codes with the session cookie.
//
// State lives in a plain in-memory Map (MapAdapter below), the cheapest storage the peer can have: its
// bundled development adapter is an LRU of 1,000 entries (minted codes would be evicted before use) that
// rescans a grant's every member on each write.
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

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);
const store = new Map(); // key -> { payload, expiresAt }
const grantMembers = new Map(); // grantId -> Set of keys

function load(key) {
  const entry = store.get(key);
  if (entry === undefined) return undefined;
  if (entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.payload;
}

// oidc-provider's adapter interface, over one Map; expired entries are dropped when read or swept.
class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { payload, expiresAt });
    if (this.model === 'Session' && payload.uid) {
      store.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt });
    }
    if (GRANTABLE.has(this.model) && payload.grantId) {
      let members = grantMembers.get(payload.grantId);
      if (members === undefined) {
        members = new Set();
        grantMembers.set(payload.grantId, members);
      }
      members.add(key);
    }
  }

  async find(id) {
    return load(this.key(id));
  }

  async findByUid(uid) {
    const id = load(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const payload = load(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) if (entry.expiresAt <= now) store.delete(key);
}, 30_000).unref();

const configuration = {
  adapter: MapAdapter,
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
