// What the relying parties (relying-party.mjs, conformance.mjs) report about openid-client's calls.
import * as client from 'openid-client';

/** An OAuth error as data: the RFC 6749 `error` code wherever openid-client put it. */
export function describeError(error) {
  const described = { name: error?.constructor?.name, code: error?.code, message: error?.message };
  if (typeof error?.status === 'number') described.status = error.status;
  if (typeof error?.error === 'string') described.error = error.error;
  if (error instanceof client.WWWAuthenticateChallengeError) {
    // A 401 with WWW-Authenticate: the OAuth error is in the challenge's parameters.
    described.challenges = error.cause.map((c) => ({ scheme: c.scheme, parameters: c.parameters }));
    described.error ??= error.cause.find((c) => c.parameters?.error)?.parameters.error;
  }
  return described;
}

/** The step's value (`ok: true`), or its error described (`ok: false`). */
export async function attempt(step) {
  try {
    return { ok: true, value: await step() };
  } catch (error) {
    return { ok: false, ...describeError(error) };
  }
}

/** The decoded header and payload of a JWT, to show its type and claims (the signature is not shown). */
export function jwtParts(token) {
  const [header, payload] = token
    .split('.')
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url')));
  return { header, payload };
}
