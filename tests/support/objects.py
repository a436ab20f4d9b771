"""OIDCClient and Secret objects shaped as the operator writes them, for feeding the provider's registry."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import kubeoidc_contract as contract


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def client_objects(
    name: str,
    *,
    client_id: str,
    secret: str | None,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    grant_types: list[str] | None = None,
    scopes: list[str] | None = None,
    public: bool = False,
    auth_method: str | None = None,
    namespace: str = "default",
    issuer: str = "http://127.0.0.1:8080",
    uid: str | None = None,
    identity_sources: list[str] | None = None,
    service_accounts: list[str] | None = None,
    id_token_claims: list[str] | None = None,
    spec_fields: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An OIDCClient with its status, and the Secret the operator would own for it; ``spec_fields``
    adds other spec fields as they are (``{"accessTokenFormat": "opaque"}``)."""
    uid = uid or str(uuid.uuid4())
    secret_name = f"{name}-oidc"
    oidcclient: dict[str, Any] = {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1},
        "spec": {
            "displayName": name.replace("-", " ").title(),
            "description": f"The {name} application",
            "url": f"https://{name}.example.com",
            "redirectURIs": redirect_uris
            if redirect_uris is not None
            else [f"https://{name}.example.com/callback"],
            "postLogoutRedirectURIs": post_logout_redirect_uris or [],
            "grantTypes": grant_types or ["authorization_code", "refresh_token"],
            "scopes": scopes or ["openid", "profile", "email", "groups", "offline_access"],
            "public": public,
            "tokenEndpointAuthMethod": auth_method or ("none" if public else "client_secret_basic"),
        },
        "status": {"clientID": client_id, "secretName": secret_name},
    }
    if identity_sources is not None:
        oidcclient["spec"]["identitySources"] = identity_sources
    if service_accounts is not None:
        oidcclient["spec"]["serviceAccounts"] = service_accounts
    if id_token_claims is not None:
        oidcclient["spec"]["idTokenClaims"] = id_token_claims
    oidcclient["spec"].update(spec_fields or {})
    data = {contract.CLIENT_ID_KEY: b64(client_id), contract.ISSUER_KEY: b64(issuer)}
    if secret is not None:
        data[contract.CLIENT_SECRET_KEY] = b64(secret)
    secret_obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name,
            "namespace": namespace,
            "labels": {contract.MANAGED_BY_LABEL: contract.MANAGER, contract.CLIENT_LABEL: name},
            "ownerReferences": [
                {
                    "apiVersion": contract.API_VERSION,
                    "kind": contract.KIND,
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": "Opaque",
        "data": data,
    }
    return oidcclient, secret_obj
