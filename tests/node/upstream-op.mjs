// An upstream OpenID Provider for the identity-source tests: panva's oidc-provider with its built-in
// development login pages (any login name, any password), one confidential client for kubeoidc, and
// accounts whose claims carry groups. Prints "ready" once it listens.
//
// Usage: node upstream-op.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI

import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };

// Every login name is an account: "<name>@corp.example", in the groups platform and developers.
async function findAccount(ctx, id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        name: `${id} Upstream`,
        preferred_username: id,
        email: `${id}@corp.example`,
        email_verified: true,
        groups: ['platform', 'developers'],
      };
    },
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // The ID token carries the scopes' claims too (as many IdPs do), not only userinfo.
  conformIdTokenClaims: false,
  findAccount,
  jwks: { keys: [jwk] },
  cookies: { keys: ['upstream-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});

provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
