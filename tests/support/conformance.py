"""The certification test plans' modules, played by a real relying party and Chromium (fixtures and helpers).

One provider per test module, and one run of ``tests/node/conformance.mjs`` per plan: the browser signs
the user in once and plays every module of the plan in turn (as the suite's runner does); each test then
asserts on its module's part of the result. The node and Chromium fixtures fail, never skip, when a
tool is missing.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubeoidc_provider.context import Provider
from support.live import live_provider
from support.node_rp import CHROMIUM, NODE_DIR, run_node_script
from support.provider import PASSWORD, register

CONFORMANCE = NODE_DIR / "conformance.mjs"
#: A plan plays a few dozen flows in one browser; the bound only stops a hang.
PLAN_TIMEOUT = 180.0
#: Where the registered clients "live": the browser answers for this origin itself (see browser.mjs).
CLIENT_ORIGIN = "https://rp.conformance.example.test"
ALL_SCOPES = ["openid", "profile", "email", "address", "phone", "groups", "offline_access"]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with live_provider() as served:
        yield served


def register_client(provider: Provider, name: str, **spec: Any) -> dict[str, Any]:
    """Register a client with extra spec fields; returns what the relying party needs to know of it."""
    redirect_uri = f"{CLIENT_ORIGIN}/{name}/callback"
    public = spec.pop("public", False)
    auth_method = spec.pop("tokenEndpointAuthMethod", "none" if public else "client_secret_basic")
    registered = register(
        provider.registry,
        name,
        public=public,
        redirect_uris=[redirect_uri],
        post_logout_redirect_uris=spec.pop("postLogoutRedirectURIs", []),
        scopes=spec.pop("scopes", ALL_SCOPES),
        auth_method=auth_method,
        grant_types=spec.pop("grantTypes", None),
    )
    oidcclient = copy.deepcopy(registered.objects[0])
    oidcclient["spec"].update(spec)
    provider.registry.upsert_oidcclient(oidcclient)
    return {
        "clientId": registered.client_id,
        "secret": registered.secret,
        "authMethod": auth_method,
        "redirectUri": redirect_uri,
    }


def plan_config(provider: Provider, clients: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "issuer": provider.settings.issuer,
        "clients": clients,
        "clientOrigin": CLIENT_ORIGIN,
        "redirectUri": clients["basic"]["redirectUri"],
        "allScopes": " ".join(ALL_SCOPES),
        "username": "alice",
        "password": PASSWORD,
        "chromium": CHROMIUM,
        **extra,
    }


@pytest.fixture(scope="module")
def run_plan(
    node: str, chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., dict[str, Any]]:
    """Play one plan of ``conformance.mjs`` and return its JSON result (a member per module)."""
    environment = {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("conformance"))}

    def run(plan: str, config: dict[str, Any]) -> dict[str, Any]:
        return run_node_script(
            node, CONFORMANCE, plan, config, env=environment, timeout=PLAN_TIMEOUT, label=f"plan {plan!r}"
        )

    return run
