// The benchmark's peer: panva's oidc-provider, configured like the kubeoidc provider under test.
//
// Confidential clients (client_secret_basic), one per configuration the harness measures: each names
// its ID token algorithm and the format (jwt or opaque) and algorithm of the access tokens it gets for
// client_credentials through a resource indicator (a code exchange without one gets an opaque token,
// as the peer always does). One key per algorithm (RS256, ES256, EdDSA), generated at start by the
// primary process. Introspection and userinfo. With WORKERS=N (N > 1), node's cluster module runs N
// processes on the one port, as `kubeoidc provider --workers N`; each keeps its own in-memory state, so
// only stateless requests (client_credentials) are measured that way. Sign-in is an
// interaction endpoint that logs the one user in and grants what the client asked for, without a
// page: the harness drives /auth -> /interaction/<uid> -> /auth/<uid> with a cookie jar, like a
// browser that clicks through, and then mints codes with the session cookie.
//
// State lives in a plain in-memory Map (MapAdapter below), the cheapest storage the peer can have: its
// bundled development adapter is an LRU of 1,000 entries (minted codes would be evicted before use) that
// rescans a grant's every member on each write. With PEER_REDIS_URL, it lives in that Redis instead
// (RedisAdapter below, on ioredis), as a deployment of several replicas keeps it.
//
// Usage: [WORKERS=N] [PEER_REDIS_URL=redis://...] node peer.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//   CLIENTS_JSON
//   CLIENTS_JSON: [{"name": "jwt-es256", "format": "jwt", "accessAlg": "ES256", "idAlg": "ES256"}, ...];
//   each client's ID is CLIENT_ID-name.

import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, clientsJson] = process.argv.slice(2);
const WORKERS = Number(process.env.WORKERS ?? '1');
const CONFIGS = new Map(JSON.parse(clientsJson).map((c) => [`${clientId}-${c.name}`, c]));
// Loaded only when the state is in Redis: the Map peer runs as it always has.
const Redis = process.env.PEER_REDIS_URL ? (await import('ioredis')).Redis : undefined;
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);

if (cluster.isPrimary && WORKERS > 1) {
  // The workers must sign with the same keys: made here, handed over in the environment.
  const env = { PEER_JWKS: JSON.stringify(makeKeys()) };
  for (let i = 0; i < WORKERS; i += 1) cluster.fork(env);
  cluster.on('exit', () => process.exit(1));
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    process.exit(0);
  });
  process.stdout.write(`primary of ${WORKERS} workers\n`);
} else {
  serve(process.env.PEER_JWKS ? JSON.parse(process.env.PEER_JWKS) : makeKeys());
}

function makeKeys() {
  const pairs = [
    ['RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EdDSA', generateKeyPairSync('ed25519')],
  ];
  return {
    keys: pairs.map(([alg, { privateKey }]) => ({
      ...privateKey.export({ format: 'jwk' }), kid: `bench-${alg.toLowerCase()}`, alg, use: 'sig',
    })),
  };
}

function serve(jwks) {
  const issuer = `http://127.0.0.1:${port}`;
  const RESOURCE = 'https://api.example.com';
  const API_SCOPE = 'api:read';
  const TTL = 600; // Seconds: as the kubeoidc provider's access tokens (and long enough for minted codes).

  const USER = {
    sub: '7b0c2f6e-alice',
    name: 'Alice Example',
    preferred_username: 'alice',
    email: 'alice@example.com',
    email_verified: true,
  };

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
    adapter: Redis ? redisAdapter(new Redis(process.env.PEER_REDIS_URL)) : MapAdapter,
    clients: [...CONFIGS].map(([id, config]) => ({
      client_id: id,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: `openid profile email ${API_SCOPE}`,
      id_token_signed_response_alg: config.idAlg,
    })),
    jwks,
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
        async getResourceServerInfo(_ctx, _resource, client) {
          const config = CONFIGS.get(client.clientId);
          return {
            scope: API_SCOPE,
            audience: RESOURCE,
            accessTokenTTL: TTL,
            accessTokenFormat: config.format,
            ...(config.format === 'jwt' ? { jwt: { sign: { alg: config.accessAlg } } } : {}),
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
}

// oidc-provider's adapter interface over one Redis. An entry is a hash `peer:<model>:<id>` with its JSON
// payload (`p`) and, once consumed, when (`c`), under Redis's own TTL; a grant's members are a list, a
// session's uid points at its id. Each call is one round trip: the writes are Lua scripts, one command
// each, as the kubeoidc provider's are.
function redisAdapter(redis) {
  const key = (model, id) => `peer:${model}:${id}`;
  const grantKey = (grantId) => `peer:grant:${grantId}`;
  const uidKey = (uid) => `peer:sessionUid:${uid}`;
  // Writes an entry whole (no field of an earlier version left) with its TTL (0: none), adds it to its
  // grant's members (their list lives as long as the longest of them) and points a session's uid at it.
  redis.defineCommand('peerUpsert', {
    numberOfKeys: 3,
    lua: `
      local ttl = tonumber(ARGV[2])
      redis.call('DEL', KEYS[1])
      redis.call('HSET', KEYS[1], 'p', ARGV[1])
      if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
      if KEYS[2] ~= '' then
        redis.call('RPUSH', KEYS[2], KEYS[1])
        if ttl > 0 then
          redis.call('EXPIRE', KEYS[2], ttl, 'GT')
          redis.call('EXPIRE', KEYS[2], ttl, 'NX')
        end
      end
      if KEYS[3] ~= '' then
        if ttl > 0 then redis.call('SET', KEYS[3], ARGV[3], 'EX', ttl) else redis.call('SET', KEYS[3], ARGV[3]) end
      end
      return 0`,
  });
  // Marks a live entry consumed (HSET keeps its TTL); an entry gone meanwhile is not made again.
  redis.defineCommand('peerConsume', {
    numberOfKeys: 1,
    lua: "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'c', ARGV[1]) end",
  });

  return class RedisAdapter {
    constructor(model) {
      this.model = model;
    }

    async upsert(id, payload, expiresIn) {
      const entry = key(this.model, id);
      const members = GRANTABLE.has(this.model) && payload.grantId ? grantKey(payload.grantId) : '';
      const uid = this.model === 'Session' && payload.uid ? uidKey(payload.uid) : '';
      const ttl = typeof expiresIn === 'number' ? expiresIn : 0;
      await redis.peerUpsert(entry, members, uid, JSON.stringify(payload), ttl, id);
    }

    async find(id) {
      const { p, c } = await redis.hgetall(key(this.model, id));
      if (p === undefined) return undefined;
      const payload = JSON.parse(p);
      if (c !== undefined) payload.consumed = Number(c);
      return payload;
    }

    async findByUid(uid) {
      const id = await redis.get(uidKey(uid));
      return id === null ? undefined : this.find(id);
    }

    async findByUserCode() {
      return undefined;
    }

    async consume(id) {
      await redis.peerConsume(key(this.model, id), Math.floor(Date.now() / 1000));
    }

    async destroy(id) {
      await redis.del(key(this.model, id));
    }

    async revokeByGrantId(grantId) {
      const members = grantKey(grantId);
      const entries = await redis.lrange(members, 0, -1);
      await redis.del(...entries, members);
    }
  };
}
