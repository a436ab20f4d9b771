"""What a registered client is, and how OIDCClient and Secret objects are read into one: pure functions.

The registry (``registry``) keeps what these functions return and decides which client is served; the
rules of eligibility it applies are in its docstring. Nothing here keeps state or takes a lock.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import kubeoidc_contract as contract
from kubeoidc_contract import crd

logger = logging.getLogger(__name__)

#: A public client authenticates with no secret (the CRD's other methods all use one).
PUBLIC_AUTH_METHOD = "none"

#: A Kubernetes object as its JSON, e.g. from ``json.loads`` or a watch event's ``raw_object``.
KubeObject = Mapping[str, Any]

#: One accepted secret: its SHA-256 digest and the moment (epoch seconds) it stops being accepted.
SecretHash = tuple[bytes, float | None]

#: The size of one secret's digest in ``Client.digests`` (SHA-256).
DIGEST_SIZE = hashlib.sha256().digest_size

#: The expiries of a client's only secret, the current one: one tuple for every such client.
CURRENT_SECRET_ONLY: tuple[float | None, ...] = (None,)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ClientProfile:
    """What a registration says beyond the client's identity, its URIs and its secret: equal for most
    clients of a cluster, so the registry keeps one instance for all that are equal (``Client.profile``).
    """

    grant_types: frozenset[str]
    public: bool
    token_endpoint_auth_method: str
    scopes: tuple[str, ...]
    #: The identity sources people may sign in with (``local``: the password form), the first the
    #: default; empty: every source.
    identity_sources: tuple[str, ...] = ()
    #: ServiceAccounts (names, in the client's namespace) whose tokens authenticate it instead of a secret.
    service_accounts: tuple[str, ...] = ()
    #: Back-Channel Logout 1.0: where logout tokens are POSTed, and whether they must carry ``sid``.
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    #: Front-Channel Logout 1.0: the page framed by the signed-out page, and whether it needs iss and sid.
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = False
    #: Userinfo answered as a JWT signed with this algorithm (OIDC Core §5.3.2); None: plain JSON.
    userinfo_signed_response_alg: str | None = None
    #: The user claims the ID token may carry (``spec.idTokenClaims``); None: every granted one.
    id_token_claims: frozenset[str] | None = None
    #: The resource servers its access tokens may be meant for (RFC 8707); empty: the issuer only.
    audiences: tuple[str, ...] = ()
    #: A ``private_key_jwt`` client's public keys: inline (``spec.jwks``, as canonical JSON) or where it
    #: publishes them (``spec.jwksURI``); and the one algorithm its assertions may use, if it names one.
    jwks: str | None = None
    jwks_uri: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    #: ``jwt`` (RFC 9068) or ``opaque`` (a reference token kept hashed in the state store).
    access_token_format: str = "jwt"
    #: The algorithms of its ID tokens and JWT access tokens; None: the key set's default one.
    id_token_signed_response_alg: str | None = None
    access_token_signed_response_alg: str | None = None

    def key(self) -> tuple[object, ...]:
        """The values that make two profiles equal (a key that does not keep the profile alive)."""
        return tuple(getattr(self, name) for name in self.__slots__ if name != "__weakref__")

    @property
    def secretless(self) -> bool:
        """Whether its clients authenticate without a secret: public ones, those their ServiceAccounts'
        tokens authenticate, and those that sign their assertions with their own key."""
        return (
            self.public
            or bool(self.service_accounts)
            or self.token_endpoint_auth_method == contract.PRIVATE_KEY_JWT_AUTH_METHOD
        )


@dataclass(frozen=True, slots=True)
class Client:
    """One registered client, as the endpoints see it. Immutable: a change replaces the whole entry.

    Kept small, since a provider holds thousands: what most clients share is one ``ClientProfile``
    (read through the properties below), the secrets' digests are one ``bytes``, and the texts only the
    login, consent and logout pages show are packed into one string.
    """

    client_id: str
    namespace: str
    name: str
    uid: str
    #: The canonical list (``redirect_uris``); a redirect URI is accepted only when equal to one of
    #: these. A single URI is held as itself: most clients have one, and a tuple of one costs 48 bytes.
    registered_redirect_uris: str | tuple[str, ...]
    #: ``post_logout_redirect_uris``, held the same way.
    registered_post_logout_redirect_uris: str | tuple[str, ...]
    profile: ClientProfile
    #: SHA-256 digests of the accepted secrets, ``DIGEST_SIZE`` bytes each; empty for a public client.
    digests: bytes = field(default=b"", repr=False)
    #: When each of those stops being accepted (epoch seconds; None: never), in the same order.
    expiries: tuple[float | None, ...] = field(default=(), repr=False)
    #: Display name, description and URL, packed (see ``_pack_about``).
    about: str = field(default="", repr=False)

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        return _as_tuple(self.registered_redirect_uris)

    @property
    def post_logout_redirect_uris(self) -> tuple[str, ...]:
        return _as_tuple(self.registered_post_logout_redirect_uris)

    # -- the profile's values, read as the client's own -------------------------------------------

    @property
    def grant_types(self) -> frozenset[str]:
        return self.profile.grant_types

    @property
    def public(self) -> bool:
        return self.profile.public

    @property
    def token_endpoint_auth_method(self) -> str:
        return self.profile.token_endpoint_auth_method

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.profile.scopes

    @property
    def identity_sources(self) -> tuple[str, ...]:
        return self.profile.identity_sources

    @property
    def service_accounts(self) -> tuple[str, ...]:
        return self.profile.service_accounts

    @property
    def backchannel_logout_uri(self) -> str | None:
        return self.profile.backchannel_logout_uri

    @property
    def backchannel_logout_session_required(self) -> bool:
        return self.profile.backchannel_logout_session_required

    @property
    def frontchannel_logout_uri(self) -> str | None:
        return self.profile.frontchannel_logout_uri

    @property
    def frontchannel_logout_session_required(self) -> bool:
        return self.profile.frontchannel_logout_session_required

    @property
    def userinfo_signed_response_alg(self) -> str | None:
        return self.profile.userinfo_signed_response_alg

    @property
    def id_token_claims(self) -> frozenset[str] | None:
        return self.profile.id_token_claims

    @property
    def audiences(self) -> tuple[str, ...]:
        return self.profile.audiences

    @property
    def jwks(self) -> str | None:
        return self.profile.jwks

    @property
    def jwks_uri(self) -> str | None:
        return self.profile.jwks_uri

    @property
    def token_endpoint_auth_signing_alg(self) -> str | None:
        return self.profile.token_endpoint_auth_signing_alg

    @property
    def access_token_format(self) -> str:
        return self.profile.access_token_format

    @property
    def id_token_signed_response_alg(self) -> str | None:
        return self.profile.id_token_signed_response_alg

    @property
    def access_token_signed_response_alg(self) -> str | None:
        return self.profile.access_token_signed_response_alg

    # -- what the pages show ----------------------------------------------------------------------

    @property
    def display_name(self) -> str:
        """``spec.displayName``, else the OIDCClient's name."""
        return _unpack_about(self.about)[0] or self.name

    @property
    def description(self) -> str:
        return _unpack_about(self.about)[1]

    @property
    def url(self) -> str:
        return _unpack_about(self.about)[2]

    # -- derived ----------------------------------------------------------------------------------

    @property
    def secret_hashes(self) -> tuple[SecretHash, ...]:
        """Each accepted secret's digest with its expiry."""
        return tuple(
            (self.digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE], expires)
            for i, expires in enumerate(self.expiries)
        )

    @property
    def secretless(self) -> bool:
        """Whether the client authenticates without a secret (``ClientProfile.secretless``)."""
        return self.profile.secretless

    @property
    def signing_algs(self) -> frozenset[str]:
        """The algorithms the client named for what the provider signs for it."""
        named = (
            self.id_token_signed_response_alg,
            self.access_token_signed_response_alg if self.access_token_format == "jwt" else None,
            self.userinfo_signed_response_alg,
        )
        return frozenset(alg for alg in named if alg is not None)

    def check_secret(self, secret: str, now: float) -> bool:
        """Whether ``secret`` is one of the client's valid secrets at ``now`` (epoch seconds).

        Every stored hash is compared, in constant time, whatever matched before: the time taken
        tells nothing about which hash (if any) matched.
        """
        candidate = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
        accepted = False
        for i, expires_at in enumerate(self.expiries):
            matches = hmac.compare_digest(candidate, self.digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE])
            valid = expires_at is None or now < expires_at
            accepted |= matches & valid
        return accepted

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact comparison against the canonical list (no prefix, no normalisation), except the port
        of a loopback IP redirect URI, which may be any (RFC 8252 §7.3: a native app listens on
        whatever port the system gives it)."""
        if redirect_uri in self.redirect_uris:
            return True
        requested = _loopback_without_port(redirect_uri)
        return requested is not None and any(
            _loopback_without_port(registered) == requested for registered in self.redirect_uris
        )

    def check_post_logout_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact comparison against the client's post-logout list."""
        return redirect_uri in self.post_logout_redirect_uris


def _pack_about(display_name: str, description: str, url: str) -> str:
    """The three texts as one string, each length-prefixed so that any text can be split back: one
    string object per client instead of three (only the pages read them)."""
    if not (display_name or description or url):
        return ""
    return f"{len(display_name)}:{len(description)}:{display_name}{description}{url}"


def _unpack_about(about: str) -> tuple[str, str, str]:
    if not about:
        return "", "", ""
    first, _, rest = about.partition(":")
    second, _, text = rest.partition(":")
    end_display, end_description = int(first), int(first) + int(second)
    return text[:end_display], text[end_display:end_description], text[end_description:]


class _Held(enum.Enum):
    """Where a registration's published credentials are, when not in a ``Credentials`` of their own."""

    #: Its client holds every value of them (see ``Registration``).
    IN_CLIENT = "in its client"


@dataclass(frozen=True, slots=True, weakref_slot=True)
class NameSuffix:
    """What follows an OIDCClient's name in its Secret's name (``-oidc``, as the operator names Secrets
    unless ``spec.secretName`` says otherwise): the registry shares one instance of each among the
    registrations so named (``Registration.hold_secret_name_as``)."""

    text: str


class Registration:
    """What the registry keeps of an OIDCClient: its identity, its status, and the client it describes.
    Only the registry's feed reads it, under its lock; it replaces ``client`` by the served one.

    Its identity (uid, namespace, name, client ID) is its client's, read from it, so that a registry of
    10,000 clients does not hold 10,000 more references to each; only an OIDCClient without a client ID
    yet (so without a client) holds its own. Likewise the credentials published in its status, when its
    client holds every value of them (as ``parse_oidcclient`` makes it: the same client ID, the digests
    and expiries joined), are read from the client instead of kept in a ``Credentials`` of their own;
    and its Secret's name, when it is its own name and a suffix, may be held as that (shared) suffix.
    """

    __slots__ = ("_identity", "_published", "_secret_name", "client")

    def __init__(
        self,
        uid: str,
        namespace: str,
        name: str,
        client_id: str | None,
        secret_name: str | None,
        client: Client | None,
        published: Credentials | None = None,
    ) -> None:
        if client is not None and (client.uid, client.namespace, client.name, client.client_id) != (
            uid,
            namespace,
            name,
            client_id,
        ):
            raise ValueError("a registration's client has the registration's identity")
        if client is None and client_id is not None:
            raise ValueError("a registration with a client ID describes its client")
        self._secret_name: str | NameSuffix | None = secret_name
        #: None while the status has no client ID yet; the registry replaces it by the served one
        #: (the same identity, the secret's digests joined).
        self.client = client
        self._published: Credentials | _Held | None = published
        if published is not None and client is not None and _credentials_of(client) == published:
            self._published = _Held.IN_CLIENT
        self._identity = (uid, namespace, name) if client is None else None

    @property
    def published(self) -> Credentials | None:
        """What the operator published in ``status.credentials`` (None: nothing published)."""
        if self._published is not _Held.IN_CLIENT:
            return self._published
        # Only the registry replaces the client, and only by one holding the credentials it is
        # joined with, these very ones while they are published: it still holds them.
        assert self.client is not None, "credentials held in the client of a registration with one"
        return _credentials_of(self.client)

    @property
    def secret_name(self) -> str | None:
        """``status.secretName``: the Secret whose credentials the client is served with."""
        held = self._secret_name
        return self.name + held.text if isinstance(held, NameSuffix) else held

    @property
    def secret_name_suffix(self) -> str | None:
        """What follows its own name in its Secret's name, if that name starts with its own."""
        secret_name, name = self.secret_name, self.name
        if secret_name is None or len(secret_name) <= len(name) or not secret_name.startswith(name):
            return None
        return secret_name[len(name) :]

    def hold_secret_name_as(self, suffix: NameSuffix) -> None:
        """Hold its Secret's name as what follows its own name: no string of its own for it."""
        if suffix.text != self.secret_name_suffix:
            raise ValueError("the Secret's name is the OIDCClient's name followed by the suffix")
        self._secret_name = suffix

    @property
    def uid(self) -> str:
        return self.client.uid if self.client is not None else self._own_identity()[0]

    @property
    def namespace(self) -> str:
        return self.client.namespace if self.client is not None else self._own_identity()[1]

    @property
    def name(self) -> str:
        return self.client.name if self.client is not None else self._own_identity()[2]

    @property
    def client_id(self) -> str | None:
        return self.client.client_id if self.client is not None else None

    def _own_identity(self) -> tuple[str, str, str]:
        assert self._identity is not None, "a registration without a client holds its identity"
        return self._identity


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the registry keeps of an eligible Secret: its controller and the digests, never the secret."""

    owner_name: str
    owner_uid: str
    client_id: str
    #: As ``Client.digests`` and ``Client.expiries``.
    digests: bytes
    expiries: tuple[float | None, ...]


def _credentials_of(client: Client) -> Credentials:
    """The credentials its client holds all of (see ``Registration``)."""
    return Credentials(client.name, client.uid, client.client_id, client.digests, client.expiries)


def _credentials(owner_name: str, owner_uid: str, client_id: str, hashes: list[SecretHash]) -> Credentials:
    expiries = tuple(expires for _, expires in hashes)
    return Credentials(
        owner_name,
        owner_uid,
        client_id,
        b"".join(digest for digest, _ in hashes),
        CURRENT_SECRET_ONLY if expiries == CURRENT_SECRET_ONLY else expiries,
    )


#: The loopback IP literals of RFC 8252 §7.3 (``localhost`` is not one: §8.3).
_LOOPBACK_IPS = frozenset({"127.0.0.1", "[::1]"})


def _loopback_without_port(uri: str) -> tuple[str, str, str, str] | None:
    """An ``http`` loopback IP URI without its port (scheme, host, path, query); None for any other."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return None
    if parts.scheme != "http" or parts.fragment or "@" in parts.netloc:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    if host not in _LOOPBACK_IPS:
        return None
    return parts.scheme, host, parts.path, parts.query


def parse_oidcclient(
    obj: KubeObject, share: Callable[[ClientProfile], ClientProfile] = lambda profile: profile
) -> Registration | None:
    """What an OIDCClient registers (None without a uid); ``share`` returns the one instance of a profile
    equal to the one given."""
    meta = metadata(obj)
    namespace, name = namespace_name(obj)
    uid = meta.get("uid")
    if not (isinstance(uid, str) and uid and namespace and name):
        logger.debug("Ignoring OIDCClient %s/%s without uid", namespace, name)
        return None
    status = _mapping(obj.get("status"))
    client_id = _str_or_none(status.get("clientID"))
    secret_name = _str_or_none(status.get("secretName"))
    namespace = sys.intern(namespace)
    published = _published_credentials(
        name, uid, client_id, _mapping(status.get(contract.STATUS_CREDENTIALS))
    )
    client = None
    if client_id is not None:
        spec = _mapping(obj.get("spec"))
        profile = share(_profile(spec))
        # The published digests joined at once (as the registry would join them) when they are for
        # this client ID and it has a secret, so that its registration keeps no copy of them.
        joined = (
            published
            if published is not None and published.client_id == client_id and not profile.secretless
            else None
        )
        client = Client(
            client_id=client_id,
            namespace=namespace,
            name=name,
            uid=uid,
            registered_redirect_uris=_one_or_tuple(_str_tuple(spec.get("redirectURIs"))),
            registered_post_logout_redirect_uris=_one_or_tuple(
                _str_tuple(spec.get("postLogoutRedirectURIs"))
            ),
            profile=profile,
            digests=joined.digests if joined is not None else b"",
            expiries=joined.expiries if joined is not None else (),
            about=_pack_about(
                _str_or_none(spec.get("displayName")) or "",
                _str_or_none(spec.get("description")) or "",
                _str_or_none(spec.get("url")) or "",
            ),
        )
    return Registration(uid, namespace, name, client_id, secret_name, client, published)


def _profile(spec: Mapping[str, Any]) -> ClientProfile:
    public = spec.get("public") is True
    grant_types = spec.get("grantTypes")
    scopes = spec.get("scopes")
    method = _str_or_none(spec.get("tokenEndpointAuthMethod"))
    return ClientProfile(
        grant_types=frozenset(_str_tuple(grant_types))
        if isinstance(grant_types, list)
        else crd.default_grant_types(),
        public=public,
        token_endpoint_auth_method=method or (PUBLIC_AUTH_METHOD if public else crd.default_auth_method()),
        scopes=_str_tuple(scopes) if isinstance(scopes, list) else crd.default_scopes(),
        identity_sources=_str_tuple(spec.get("identitySources")),
        service_accounts=_str_tuple(spec.get("serviceAccounts")),
        backchannel_logout_uri=_str_or_none(spec.get("backchannelLogoutURI")),
        backchannel_logout_session_required=spec.get("backchannelLogoutSessionRequired") is True,
        frontchannel_logout_uri=_str_or_none(spec.get("frontchannelLogoutURI")),
        frontchannel_logout_session_required=spec.get("frontchannelLogoutSessionRequired") is True,
        userinfo_signed_response_alg=_str_or_none(spec.get("userinfoSignedResponseAlg")),
        id_token_claims=_id_token_claims(spec.get("idTokenClaims")),
        audiences=_str_tuple(spec.get("audiences")),
        jwks=_canonical_json(spec.get("jwks")),
        jwks_uri=_str_or_none(spec.get("jwksURI")),
        token_endpoint_auth_signing_alg=_str_or_none(spec.get("tokenEndpointAuthSigningAlg")),
        access_token_format=_str_or_none(spec.get("accessTokenFormat")) or crd.default_access_token_format(),
        id_token_signed_response_alg=_str_or_none(spec.get("idTokenSignedResponseAlg")),
        access_token_signed_response_alg=_str_or_none(spec.get("accessTokenSignedResponseAlg")),
    )


def _published_credentials(
    name: str, uid: str, status_client_id: str | None, published: Mapping[str, Any]
) -> Credentials | None:
    """The credentials the operator published in status (the provider reads no Secret), or None."""
    client_id = _str_or_none(published.get(contract.CREDENTIALS_CLIENT_ID))
    if client_id is None:
        return None
    if client_id == status_client_id:
        client_id = status_client_id  # one string for both
    hashes: list[SecretHash] = []
    digest = _sha256(published.get(contract.CREDENTIALS_SECRET_HASH))
    if digest is not None:
        hashes.append((digest, None))
        previous = _previous_hash(
            {
                contract.PREVIOUS_SECRET_HASH_ANNOTATION: published.get(contract.CREDENTIALS_PREVIOUS_HASH),
                contract.PREVIOUS_SECRET_EXPIRES_ANNOTATION: published.get(
                    contract.CREDENTIALS_PREVIOUS_EXPIRES
                ),
            }
        )
        if previous is not None:
            hashes.append(previous)
    return _credentials(name, uid, client_id, hashes)


def _sha256(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        return None
    return digest if len(digest) == DIGEST_SIZE else None


def _canonical_json(value: object) -> str | None:
    """A JSON object as one canonical string (hashable, and equal for equal objects), or None."""
    if not isinstance(value, Mapping):
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _id_token_claims(value: object) -> frozenset[str] | None:
    return frozenset(_str_tuple(value)) if isinstance(value, list) else None


def parse_secret(obj: KubeObject) -> Credentials | None:
    """The credentials of an eligible Secret: managed by us and controller-owned by an OIDCClient."""
    meta = metadata(obj)
    if _mapping(meta.get("labels")).get(contract.MANAGED_BY_LABEL) != contract.MANAGER:
        return None
    owner = _controller_oidcclient(meta.get("ownerReferences"))
    if owner is None:
        return None
    data = _mapping(obj.get("data"))
    raw_client_id = _b64decode(data.get(contract.CLIENT_ID_KEY))
    if raw_client_id is None:
        return None
    try:
        client_id = raw_client_id.decode("utf-8")
    except UnicodeDecodeError:
        return None
    hashes: list[SecretHash] = []
    secret = _b64decode(data.get(contract.CLIENT_SECRET_KEY))
    if secret:
        hashes.append((hashlib.sha256(secret).digest(), None))
    previous = _previous_hash(_mapping(meta.get("annotations")))
    if previous is not None:
        hashes.append(previous)
    return _credentials(owner[0], owner[1], client_id, hashes)


def metadata(obj: KubeObject) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def namespace_name(obj: KubeObject) -> tuple[str, str]:
    meta = metadata(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _one_or_tuple(values: tuple[str, ...]) -> str | tuple[str, ...]:
    """A single value as itself, any other number of them as the tuple (see ``Client``)."""
    return values[0] if len(values) == 1 else values


def _as_tuple(held: str | tuple[str, ...]) -> tuple[str, ...]:
    return (held,) if isinstance(held, str) else held


def _b64decode(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _controller_oidcclient(owner_references: object) -> tuple[str, str] | None:
    """The name and uid of the Secret's controller if that controller is an OIDCClient; else None."""
    if not isinstance(owner_references, list):
        return None
    for ref in owner_references:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            # Kubernetes allows one controller reference; if it is not ours, nothing else counts.
            if ref.get("kind") == contract.KIND and ref.get("apiVersion") == contract.API_VERSION:
                name, uid = ref.get("name"), ref.get("uid")
                if isinstance(name, str) and isinstance(uid, str) and name and uid:
                    return name, uid
            return None
    return None


def _previous_hash(annotations: Mapping[str, Any]) -> SecretHash | None:
    """The previous secret's hash and expiry during a grace period; None without a valid expiry."""
    hex_digest = annotations.get(contract.PREVIOUS_SECRET_HASH_ANNOTATION)
    expires = annotations.get(contract.PREVIOUS_SECRET_EXPIRES_ANNOTATION)
    if not isinstance(hex_digest, str) or not isinstance(expires, str):
        return None
    try:
        digest = bytes.fromhex(hex_digest)
        moment = datetime.fromisoformat(expires)
    except ValueError:
        return None
    if len(digest) != DIGEST_SIZE:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return digest, moment.timestamp()
