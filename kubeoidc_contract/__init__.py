"""The contract between the operator and the provider: names both sides must agree on.

The operator writes OIDCClient status and Secrets with these names; the provider reads them. No name
here is written anywhere else in the project. This package is the bottom layer: it imports nothing else
of the project and nothing heavy (no kopf, no Kubernetes client, no web framework), so either side may
import it without dragging in the other. Besides these names it holds the CRD's defaults and
enumerations (``crd``), the signing-keys JWKS format (``jwks``), the duration grammar (``durations``)
and the issuer-URL rule (``issuer``); the import-linter contracts in ``pyproject.toml`` keep it a leaf.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "kubeoidc.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "OIDCClient"
PLURAL: Final = "oidcclients"
SINGULAR: Final = "oidcclient"
SHORT_NAME: Final = "oidcc"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

#: IdentitySource: where people sign in from (an upstream OpenID Provider or an LDAP server), in the
#: provider's namespace; the operator writes its status, the provider reads it and its Secrets.
IDENTITY_SOURCE_KIND: Final = "IdentitySource"
IDENTITY_SOURCE_PLURAL: Final = "identitysources"
IDENTITY_SOURCE_CRD_NAME: Final = f"{IDENTITY_SOURCE_PLURAL}.{GROUP}"
#: The two kinds of IdentitySource (``spec.type``).
SOURCE_OIDC: Final = "OIDC"
SOURCE_LDAP: Final = "LDAP"
#: The name an OIDCClient's ``identitySources`` uses for the password form's static users.
LOCAL_SOURCE: Final = "local"
#: The path, under the issuer, an upstream OpenID Provider sends the browser back to.
UPSTREAM_CALLBACK_PATH: Final = "/callback"
#: Condition types of an IdentitySource's status.
SPEC_VALID_CONDITION: Final = "SpecValid"
REACHABLE_CONDITION: Final = "Reachable"

#: Setting this annotation to a new value rotates the client secret once for that value.
ROTATE_ANNOTATION: Final = f"{GROUP}/rotate-secret"

#: Labels on every Secret the operator manages. The provider watches Secrets by the manager label,
#: but trusts only those controller-owned by an OIDCClient (see the provider's registry).
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "kubeoidc"
CLIENT_LABEL: Final = f"{GROUP}/client"
SECRET_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGER}"

#: Keys of the client Secret's data.
CLIENT_ID_KEY: Final = "client_id"
CLIENT_SECRET_KEY: Final = "client_secret"
ISSUER_KEY: Final = "issuer"

#: During a rotation grace period, the Secret keeps the previous secret's SHA-256 (hex) and the
#: moment (RFC 3339, UTC) after which it is no longer accepted. Only the hash is kept: the previous
#: secret itself is gone from the cluster as soon as it is rotated.
PREVIOUS_SECRET_HASH_ANNOTATION: Final = f"{GROUP}/previous-secret-sha256"
PREVIOUS_SECRET_EXPIRES_ANNOTATION: Final = f"{GROUP}/previous-secret-expires"

#: The ``tokenEndpointAuthMethod`` of a client that names ``serviceAccounts``: a pod's projected
#: ServiceAccount token is its client assertion (RFC 7523 §2.2), and it has no client secret.
SERVICE_ACCOUNT_AUTH_METHOD: Final = "kubernetes_service_account_jwt"
#: The ``tokenEndpointAuthMethod`` of a client that signs its own client assertions (RFC 7523 §2.2 with
#: the client's key pair, OIDC Core §9): its public keys are ``spec.jwks`` or behind ``spec.jwksURI``,
#: and it has no client secret.
PRIVATE_KEY_JWT_AUTH_METHOD: Final = "private_key_jwt"
#: The Device Authorization Grant's grant type (RFC 8628 §3.4), as ``spec.grantTypes`` names it.
DEVICE_CODE_GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:device_code"
#: What the provider needs of a client's Secret, published by the operator in the OIDCClient's status
#: (``status.credentials``), so that the provider reads no Secret of any tenant: the client ID the
#: Secret holds, the SHA-256 (hex) of its client secret (absent for a public client) and, during a
#: rotation grace period, the previous secret's SHA-256 and expiry (RFC 3339). Only the operator may
#: write the status subresource; the provider trusts these fields as it trusted the owned Secret.
STATUS_CREDENTIALS: Final = "credentials"
CREDENTIALS_CLIENT_ID: Final = "clientID"
CREDENTIALS_SECRET_HASH: Final = "secretSHA256"
CREDENTIALS_PREVIOUS_HASH: Final = "previousSecretSHA256"
CREDENTIALS_PREVIOUS_EXPIRES: Final = "previousSecretExpires"

#: The condition type that summarises an OIDCClient.
READY_CONDITION: Final = "Ready"

#: The provider's signing keys, when the operator manages them: a Secret whose ``jwks.json`` holds the
#: private JWKS (its top-level ``signing_kid`` names the key that signs; the others are published for
#: verification only). Labelled with the manager label and this one.
SIGNING_KEYS_KEY: Final = "jwks.json"
SIGNING_KEYS_LABEL: Final = f"{GROUP}/signing-keys"


def split_object_ref(ref: str) -> tuple[str, str]:
    """``namespace/name`` (how settings name the signing-keys Secret) as its two parts."""
    namespace, slash, name = ref.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise ValueError(f"must be namespace/name, not {ref!r}")
    return namespace, name
