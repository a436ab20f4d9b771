"""A provider built for tests: memory or SQLite state, generated keys, a known user, clients from dicts."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from starlette.types import ASGIApp

from kubeoidc_contract.jwks import SIGNING_ALGS
from kubeoidc_provider.app import build_provider, create_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import Storage, open_storage
from kubeoidc_provider.users import StaticUserDirectory
from support.objects import client_objects

ISSUER = "http://127.0.0.1:8080"
PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters: the tests check the flow, not the hash's cost.
_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_KEYS: dict[str, dict[str, Any]] = {}


def users_yaml() -> str:
    hashed = _HASHER.hash(PASSWORD)
    return f"""
users:
  - username: alice
    id: 7b0c2f6e-alice
    name: Alice Example
    email: alice@example.com
    emailVerified: true
    groups: [admins, developers]
    givenName: Alice
    familyName: Example
    middleName: Pleasance
    nickname: Al
    profile: https://people.example.com/alice
    picture: https://people.example.com/alice.png
    website: https://alice.example.com
    gender: female
    birthdate: "1852-05-04"
    zoneinfo: Europe/London
    locale: en-GB
    updatedAt: 1767225600
    phoneNumber: "+1 555 0100"
    phoneNumberVerified: true
    address:
      formatted: "1 Main Street, Springfield"
      street_address: 1 Main Street
      locality: Springfield
      country: US
    passwordHash: "{hashed}"
  - username: bob
    id: 2d9e1a44-bob
    name: Bob Example
    email: bob@example.com
    emailVerified: false
    groups: []
    passwordHash: "{hashed}"
"""


#: The profile scope's claims of alice in ``users_yaml``, as userinfo serves them.
ALICE_PROFILE = {
    "name": "Alice Example",
    "preferred_username": "alice",
    "given_name": "Alice",
    "family_name": "Example",
    "middle_name": "Pleasance",
    "nickname": "Al",
    "profile": "https://people.example.com/alice",
    "picture": "https://people.example.com/alice.png",
    "website": "https://alice.example.com",
    "gender": "female",
    "birthdate": "1852-05-04",
    "zoneinfo": "Europe/London",
    "locale": "en-GB",
    "updated_at": 1767225600,
}


def signing_jwks(alg: str = "RS256") -> dict[str, Any]:
    """One key set per default algorithm per test session (generating RSA keys is slow): its default
    key signs with ``alg``, and one key more for each other algorithm, as ``kubeoidc keys generate``."""
    if alg not in _KEYS:
        _KEYS[alg] = generate_jwks(alg, also=SIGNING_ALGS)
    return _KEYS[alg]


@dataclass
class RegisteredClient:
    client_id: str
    secret: str | None
    redirect_uri: str
    objects: tuple[dict[str, Any], dict[str, Any]]


def register(
    registry: ClientRegistry, name: str, *, public: bool = False, **options: Any
) -> RegisteredClient:
    client_id = options.pop("client_id", f"{name}-{secrets.token_hex(4)}")
    secret = None if public else options.pop("secret", secrets.token_urlsafe(32))
    oidcclient, secret_obj = client_objects(
        name, client_id=client_id, secret=secret, public=public, **options
    )
    registry.upsert_oidcclient(oidcclient)
    registry.upsert_secret(secret_obj)
    return RegisteredClient(
        client_id,
        secret,
        oidcclient["spec"]["redirectURIs"][0] if oidcclient["spec"]["redirectURIs"] else "",
        (oidcclient, secret_obj),
    )


def register_machine_client(registry: ClientRegistry, **spec: Any) -> RegisteredClient:
    """A service calling an API with its own credentials (client_credentials, the scope
    ``invoices:read``); ``spec``: more OIDCClient spec fields."""
    return register(
        registry,
        "billing",
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["invoices:read"],
        spec_fields=spec,
    )


def make_provider(
    *,
    storage_url: str = "memory://",
    alg: str = "RS256",
    issuer: str = ISSUER,
    storage: Storage | None = None,
    sources: SourceCatalog | None = None,
    **settings: Any,
) -> Provider:
    """A provider with a ready, empty registry and the test users; ``storage`` replaces ``storage_url``'s."""
    registry = ClientRegistry()
    registry.mark_ready()
    return build_provider(
        ProviderSettings(issuer=issuer, storage_url=storage_url, **settings),
        registry=registry,
        users=StaticUserDirectory.from_yaml(users_yaml()),
        keys=KeySet.from_jwks(signing_jwks(alg)),
        storage=open_storage(storage_url) if storage is None else storage,
        sources=sources,
    )


def make_app(provider: Provider) -> ASGIApp:
    return create_app(provider)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    return dict(pairs)
