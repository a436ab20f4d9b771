// An upstream OpenID Provider for the identity-source tests: panva's oidc-provider with its built-in
// development login pages (any login name, any password), one confidential client for kubeoidc, and
// accounts whose claims carry groups and standard profile, phone and address claims. Prints "ready" once it listens.
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
        given_name: id,
        family_name: 'Upstream',
        locale: 'de-CH',
        zoneinfo: 'Europe/Zurich',
        picture: `https://people.corp.example/${id}.png`,
        updated_at: 1767225600,
        phone_number: '+41 44 668 18 00',
        phone_number_verified: true,
        address: { street_address: 'Bahnhofstrasse 1', locality: 'Zurich', postal_code: '8001', country: 'CH' },
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
    profile: ['name', 'preferred_username', 'given_name', 'family_name', 'locale', 'zoneinfo', 'picture', 'updated_at'],
    phone: ['phone_number', 'phone_number_verified'],
    address: ['address'],
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
