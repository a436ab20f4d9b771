"""The provider's signing keys: a private JWKS in, signed JWTs and the public JWKS out.

The key set comes from a private JSON Web Key Set (RFC 7517), the document the chart mounts from a
Secret (``jwks.json``) and ``kubeoidc keys generate`` prints::

    {"signing_kid": "k2",            # optional: the default signing key; else the first key
     "signing_kids": {"ES256": "k1"}, # optional: the key that signs for each other algorithm
     "keys": [{"kty": "RSA", "kid": "k2", "n": ..., "e": ..., "d": ..., "p": ..., ...},
              {"kty": "EC", "kid": "k1", "crv": "P-256", ...}]}

Every key is published in the JWKS, and any of them verifies; one key per algorithm signs. The
default signing key (``signing_kid``) signs for every client that names no algorithm, and its
algorithm is the set's default. For each other algorithm, the key ``signing_kids`` names signs, or
else the first key of that algorithm with a private part. That is how keys rotate without breaking
tokens in flight: publish the next key first (caches of relying parties pick it up), then name it in
``signing_kid`` (or ``signing_kids``), and keep the retired key published while tokens it signed
live. A published-only key may come without its private part.

Algorithms, one per key type: RS256 (RSA, at least 2048 bits; the default), ES256 (EC P-256), EdDSA
(OKP Ed25519). A key's ``alg`` member may be left out (it follows from the key type) but must match if
given; ``use`` must be ``sig`` if given. Keys are parsed once, when the set is built (parsing costs
tens of milliseconds; signing then takes well under one).

Verification (:meth:`KeySet.verify`) checks the signature with the key the header's ``kid`` names,
with that key's algorithm only (the header cannot choose another), and optionally the header's
``typ`` and the ``exp`` / ``nbf`` claims at a given time. Other claims (``iss``, ``aud``, ...) are
the caller's to check.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from joserfc import jwk
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry, extract_compact, validate_compact

from kubeoidc_contract.jwks import RSA_BITS, SIGNING_ALGS, SIGNING_KID, SIGNING_KIDS, generate_key
from kubeoidc_provider.compact_jws import CompactSigner

__all__ = [
    "InvalidTokenError",
    "KeySet",
    "KeySetError",
    "TokenExpiredError",
    "generate_jwks",
]

#: The key type (and curve) each signing algorithm needs, and the hash of at_hash / c_hash.
_KEY_TYPES: Final = {"RS256": ("RSA", None), "ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
_HALF_HASH: Final = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}
#: The members of each key type that may be published: everything else stays private.
_PUBLIC_MEMBERS: Final = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
}
#: Claims as compact UTF-8 JSON; NaN and infinities are no JSON (RFC 8259 §6) and are refused.
_claims_encoder: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_HEADER_MEMBERS: Final = frozenset({"alg", "kid", "typ"})
_KEY_CLASSES: Final[dict[str, type[jwk.RSAKey] | type[jwk.ECKey] | type[jwk.OKPKey]]] = {
    "RSA": jwk.RSAKey,
    "EC": jwk.ECKey,
    "OKP": jwk.OKPKey,
}


class _Registry(JWSRegistry):
    """joserfc's JWS registry, reduced to our three algorithms.

    joserfc warns on every use of ``EdDSA`` (RFC 9864 deprecates the name in favour of ``Ed25519``);
    relying parties still expect ``EdDSA``, so ours is a copy without the warning.
    """

    algorithms = {name: JWSRegistry.algorithms[name] for name in ("RS256", "ES256")}


_eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
_eddsa.security_warning = None
_Registry.algorithms["EdDSA"] = _eddsa
#: One registry per algorithm: a token is checked with its key's algorithm and no other.
_REGISTRIES: Final = {alg: _Registry(algorithms=[alg]) for alg in SIGNING_ALGS}


class KeySetError(ValueError):
    """The JWKS document cannot be used; the message says which key and why."""


class InvalidTokenError(ValueError):
    """A token that this key set does not accept (malformed, unknown key, bad signature, wrong type...)."""


class TokenExpiredError(InvalidTokenError):
    """A well-signed token whose ``exp`` has passed, or whose ``nbf`` has not come yet."""


class _SigningKey:
    """One parsed key of the set: its id, algorithm, joserfc key for verifying and, with its private
    part, the signer."""

    __slots__ = ("alg", "kid", "public", "public_jwk", "signer")

    def __init__(
        self, kid: str, alg: str, public: jwk.Key, private: jwk.Key | None, public_jwk: dict[str, Any]
    ) -> None:
        self.kid = kid
        self.alg = alg
        self.public = public
        self.public_jwk = public_jwk
        #: None for a key published without its private part: it verifies, never signs.
        self.signer = CompactSigner(alg, kid, private.private_key) if private is not None else None


class KeySet:
    """Signing and published keys, parsed once. Build with :meth:`from_jwks` or :meth:`load`."""

    def __init__(self, keys: list[_SigningKey], signing_kid: str, signing_kids: Mapping[str, str]) -> None:
        self._keys = {key.kid: key for key in keys}
        self._signer = self._keys[signing_kid]
        #: The key that signs for each algorithm the set can sign with, the default one first.
        self._signers = {self._signer.alg: self._signer}
        for alg in SIGNING_ALGS:
            kid = signing_kids.get(alg)
            signer = (
                self._keys[kid]
                if kid is not None
                else next((k for k in keys if k.alg == alg and k.signer is not None), None)
            )
            if signer is not None:
                self._signers.setdefault(alg, signer)
        #: The kids, in the document's order.
        self.kids: tuple[str, ...] = tuple(key.kid for key in keys)
        #: The algorithms of the published keys, the signing one first.
        self.algs: tuple[str, ...] = tuple(dict.fromkeys([self._signer.alg, *(key.alg for key in keys)]))
        #: The algorithms this set signs with, the default first (for discovery documents).
        self.signing_algs: tuple[str, ...] = tuple(self._signers)
        #: The public JWKS, serialised once: public members, ``kid``, ``use`` and ``alg`` only.
        self.public_jwks_bytes: bytes = json.dumps(
            {"keys": [key.public_jwk for key in keys]}, separators=(",", ":")
        ).encode()

    @property
    def signing_kid(self) -> str:
        """The ``kid`` of the key that signs."""
        return self._signer.kid

    @property
    def signing_alg(self) -> str:
        """The default algorithm (the default signing key's): ``RS256``, ``ES256`` or ``EdDSA``."""
        return self._signer.alg

    @property
    def signing_kids(self) -> dict[str, str]:
        """The ``kid`` of the key that signs for each algorithm."""
        return {alg: key.kid for alg, key in self._signers.items()}

    def can_sign(self, alg: str | None) -> bool:
        """Whether a key of the set signs with ``alg`` (None: the default algorithm, always)."""
        return alg is None or alg in self._signers

    @property
    def public_jwks(self) -> dict[str, Any]:
        """The public JWKS as a fresh dict (the same content as :attr:`public_jwks_bytes`)."""
        doc: dict[str, Any] = json.loads(self.public_jwks_bytes)
        return doc

    @classmethod
    def from_jwks(cls, doc: Mapping[str, Any]) -> KeySet:
        """Parse a private JWKS document; raise :class:`KeySetError` saying what is wrong with it."""
        if not isinstance(doc, Mapping):
            raise KeySetError("a JWKS must be a JSON object with a 'keys' list")
        entries = doc.get("keys")
        if not isinstance(entries, list) or not entries:
            raise KeySetError(
                "the JWKS has no keys: it needs a non-empty 'keys' list (see 'kubeoidc keys generate')"
            )
        keys: list[_SigningKey] = []
        for index, entry in enumerate(entries):
            key = _parse_key(entry, index)
            if any(other.kid == key.kid for other in keys):
                raise KeySetError(f"keys[{index}]: kid {key.kid!r} is used by another key too")
            keys.append(key)
        signing_kid = doc.get(SIGNING_KID, keys[0].kid)
        if not isinstance(signing_kid, str) or signing_kid not in {key.kid for key in keys}:
            raise KeySetError(
                f"signing_kid {signing_kid!r} names none of the keys ({', '.join(k.kid for k in keys)})"
            )
        if next(key for key in keys if key.kid == signing_kid).signer is None:
            raise KeySetError(
                f"the signing key {signing_kid!r} has no private part: it can be published, not sign"
            )
        return cls(keys, signing_kid, _signing_kids(doc.get(SIGNING_KIDS, {}), keys, signing_kid))

    @classmethod
    def load(cls, path: str | Path) -> KeySet:
        """Read a private JWKS from a JSON file."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise KeySetError(f"cannot read the signing keys file {str(path)!r}: {e.strerror}") from None
        except ValueError as e:
            raise KeySetError(f"the signing keys file {str(path)!r} is not JSON: {e}") from None
        try:
            return cls.from_jwks(doc)
        except KeySetError as e:
            raise KeySetError(f"the signing keys file {str(path)!r}: {e}") from None

    def sign(self, claims: Mapping[str, Any], *, typ: str = "JWT", alg: str | None = None) -> str:
        """A compact JWS of ``claims`` by the key that signs for ``alg`` (None: the default key); header
        ``alg``, ``kid`` and ``typ``. :class:`KeySetError` when no key of the set signs with ``alg``."""
        signer = self._signer if alg is None else self._signers.get(alg)
        if signer is None:
            raise KeySetError(f"no signing key for {alg}: the key set signs with {', '.join(self._signers)}")
        assert signer.signer is not None
        payload = _claims_encoder.encode(claims).encode()
        return signer.signer.sign(payload, typ)

    def verify(
        self, token: str, *, typ: str | None = None, now: float | None = None, leeway: float = 0
    ) -> dict[str, Any]:
        """The claims of a token signed by one of the published keys; raise :class:`InvalidTokenError`.

        ``typ``: when given, the header's ``typ`` must be it (compared as RFC 7515 §4.1.9 says: without
        case and an optional ``application/`` prefix), so one kind of token cannot pass for another
        (an ID token for an RFC 9068 ``at+jwt`` access token). ``now``: when given (seconds since the
        epoch), ``exp`` must be present and later than ``now - leeway``, and ``nbf``, if present, not
        later than ``now + leeway`` (else :class:`TokenExpiredError`). Without ``now`` no time is
        checked: an expired ``id_token_hint`` still tells who it was for.
        """
        return self.verify_with_header(token, typ=typ, now=now, leeway=leeway)[1]

    def verify_with_header(
        self, token: str, *, typ: str | None = None, now: float | None = None, leeway: float = 0
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Like :meth:`verify`, and the protected header too: ``(header, claims)``."""
        try:
            obj = extract_compact(token.encode("ascii"))
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise InvalidTokenError("malformed token: not a compact JWS") from None
        header = dict(obj.headers())
        if not set(header) <= _HEADER_MEMBERS:
            extra = ", ".join(sorted(set(header) - _HEADER_MEMBERS))
            raise InvalidTokenError(f"token header has members this provider never sets: {extra}")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidTokenError(f"token signed with an unknown key id: {kid!r}")
        if header.get("alg") != key.alg:
            raise InvalidTokenError(f"token alg {header.get('alg')!r} is not its key's alg {key.alg!r}")
        if typ is not None and _media_type(header.get("typ")) != _media_type(typ):
            raise InvalidTokenError(f"token typ {header.get('typ')!r} is not {typ!r}")
        try:
            valid = validate_compact(obj, key.public, registry=_REGISTRIES[key.alg])
        except JoseError:
            valid = False
        if not valid:
            raise InvalidTokenError("token signature is not valid")
        try:
            claims = json.loads(obj.payload)
        except ValueError:
            raise InvalidTokenError("token payload is not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidTokenError("token payload is not a JSON object")
        if now is not None:
            check_times(claims, now, leeway)
        return header, claims

    def hash_half(self, value: str, alg: str | None = None) -> str:
        """``at_hash`` / ``c_hash`` of a token or code (OIDC Core §3.1.3.6, §3.3.2.11).

        The left half of the hash of the ASCII value, base64url without padding; the hash is the one of
        the algorithm of the token that carries it (``alg``; None: the default one): SHA-256 for RS256
        and ES256, SHA-512 for EdDSA (Ed25519), as OpenID Connect implementations do.
        """
        digest = _HALF_HASH[alg or self._signer.alg](value.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def generate_jwks(
    alg: str = "RS256", kid: str | None = None, *, also: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A new private JWKS with one key for ``alg`` (RSA 2048 bits for RS256), the default signing key,
    and one more key for each algorithm of ``also`` (each signing for its algorithm).

    ``kid`` (of the ``alg`` key) defaults to the key's RFC 7638 thumbprint. The result is what
    :meth:`KeySet.from_jwks` reads; to rotate, add a new key to an existing document, publish, then
    name it in ``signing_kid`` (or ``signing_kids``).
    """
    keys = [generate_key(alg, kid), *(generate_key(other) for other in also if other != alg)]
    if len(keys) == 1:
        return {"keys": keys}
    return {SIGNING_KID: keys[0]["kid"], SIGNING_KIDS: {key["alg"]: key["kid"] for key in keys}, "keys": keys}


def _signing_kids(value: Any, keys: list[_SigningKey], signing_kid: str) -> dict[str, str]:
    """``signing_kids`` checked: each names a key of its algorithm with a private part, and the default
    algorithm's entry (if any) names the default key."""
    if not isinstance(value, Mapping):
        raise KeySetError(f"{SIGNING_KIDS} must map algorithms to kids")
    by_kid = {key.kid: key for key in keys}
    default_alg = by_kid[signing_kid].alg
    for alg, kid in value.items():
        key = by_kid.get(kid) if isinstance(kid, str) else None
        if alg not in SIGNING_ALGS:
            raise KeySetError(f"{SIGNING_KIDS}: unknown algorithm {alg!r}: use {', '.join(SIGNING_ALGS)}")
        if key is None:
            raise KeySetError(f"{SIGNING_KIDS}: {alg} names {kid!r}, none of the keys")
        if key.alg != alg:
            raise KeySetError(f"{SIGNING_KIDS}: {alg} names {kid!r}, a key for {key.alg}")
        if key.signer is None:
            raise KeySetError(f"{SIGNING_KIDS}: {alg} names {kid!r}, which has no private part")
        if alg == default_alg and kid != signing_kid:
            raise KeySetError(
                f"{SIGNING_KIDS}: {alg} names {kid!r}, but signing_kid {signing_kid!r} signs {alg}"
            )
    return dict(value)


def _parse_key(entry: Any, index: int) -> _SigningKey:
    where = f"keys[{index}]"
    if not isinstance(entry, Mapping):
        raise KeySetError(f"{where} is not a JSON object")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        raise KeySetError(f"{where} has no kid: every key needs one, so tokens can name their key")
    where = f"{where} (kid {kid!r})"
    kty, crv = entry.get("kty"), entry.get("crv")
    alg = next((a for a, (t, c) in _KEY_TYPES.items() if t == kty and c == crv), None)
    if alg is None or not isinstance(kty, str):
        kinds = "RSA (RS256), EC P-256 (ES256) or OKP Ed25519 (EdDSA)"
        raise KeySetError(
            f"{where}: unsupported key type {kty!r}{f' curve {crv!r}' if crv else ''}: use {kinds}"
        )
    if entry.get("alg", alg) != alg:
        raise KeySetError(f"{where}: alg {entry.get('alg')!r} does not fit a {kty} key; use {alg}")
    if entry.get("use", "sig") != "sig":
        raise KeySetError(f"{where}: use {entry.get('use')!r}: a signing key must have use 'sig' (or none)")
    if kty == "RSA":  # before parsing: joserfc would only warn about a short key
        bits = _rsa_bits(entry.get("n"))
        if bits < RSA_BITS:
            raise KeySetError(f"{where}: RSA key of {bits} bits; at least {RSA_BITS} are needed")
    members: dict[str, Any] = {
        name: value for name, value in entry.items() if name not in ("kid", "alg", "use", "key_ops")
    }
    try:
        parsed = _KEY_CLASSES[kty].import_key(members)
        public_jwk = {name: entry[name] for name in _PUBLIC_MEMBERS[kty]}
        public = _KEY_CLASSES[kty].import_key(public_jwk)
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise KeySetError(f"{where}: not a valid {kty} key: {e or type(e).__name__}") from None
    return _SigningKey(
        kid=kid,
        alg=alg,
        public=public,
        private=parsed if parsed.is_private else None,
        public_jwk={**public_jwk, "kid": kid, "use": "sig", "alg": alg},
    )


def _rsa_bits(n: Any) -> int:
    """The size of an RSA modulus given as base64url (0 when it is not one)."""
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:
        return 0


def _media_type(value: Any) -> str | None:
    return value.lower().removeprefix("application/") if isinstance(value, str) else None


def check_times(claims: Mapping[str, Any], now: float, leeway: float = 0) -> None:
    """``exp`` present and later than ``now``, ``nbf`` (if any) not later: else the token is refused."""
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidTokenError("token has no numeric exp claim")
    if exp <= now - leeway:
        raise TokenExpiredError("token has expired")
    if nbf is None:
        return
    if not isinstance(nbf, int | float) or isinstance(nbf, bool):
        raise InvalidTokenError("token nbf claim is not a number")
    if nbf > now + leeway:
        raise TokenExpiredError("token is not valid yet (nbf)")
