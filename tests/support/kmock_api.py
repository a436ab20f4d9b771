"""The kmock API server made ready for kubeoidc: Kubernetes' built-in resources plus OIDCClients and
IdentitySources.

Without the built-ins kopf waits forever after discovery; both kinds get their status subresource, as
their CRDs declare.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import kmock

from kubeoidc_contract import (
    GROUP,
    IDENTITY_SOURCE_KIND,
    IDENTITY_SOURCE_PLURAL,
    KIND,
    PLURAL,
    SHORT_NAME,
    SINGULAR,
    VERSION,
)

CLIENTS = kmock.resource(GROUP, VERSION, PLURAL)
IDENTITY_SOURCES = kmock.resource(GROUP, VERSION, IDENTITY_SOURCE_PLURAL)
#: Where the tests' OIDCClients live.
NAMESPACE = "apps"


def declare_resources(server: Any) -> None:
    load_builtins(server)
    declare_oidcclients(server)
    # The operator checks, and the provider follows, the IdentitySources of the release namespace.
    server.resources[IDENTITY_SOURCES] = kmock.ResourceInfo(
        kind=IDENTITY_SOURCE_KIND,
        singular=IDENTITY_SOURCE_KIND.lower(),
        namespaced=True,
        subresources={"status"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )


def load_builtins(server: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # kmock's own use of importlib.resources.
        server.resources.load_bundled()


def declare_oidcclients(server: Any) -> None:
    server.resources[CLIENTS] = kmock.ResourceInfo(
        kind=KIND,
        singular=SINGULAR,
        shortnames={SHORT_NAME},
        namespaced=True,
        subresources={"status"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )


class KmockWriter:
    """The test's writes to kmock, through its HTTP API so that the watches see them, and its waits."""

    #: How long wait_for() waits by default, in seconds.
    timeout = 10.0

    def __init__(self, server: Any) -> None:
        self.server = server

    async def wait_for(self, what: str, check: Callable[[], Any], seconds: float | None = None) -> Any:
        """Poll ``check`` until it returns something true, and return that; fail after ``seconds``."""
        seconds = self.timeout if seconds is None else seconds
        try:
            async with asyncio.timeout(seconds):
                # kmock's memory has no change notification to wait on: poll it.
                while not (result := check()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                return result
        except TimeoutError:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}") from None

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        async with self.server.request(method, path, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def create_client(
        self, name: str, spec: dict[str, Any] | None = None, **meta: Any
    ) -> dict[str, Any]:
        """An OIDCClient with the uid and resourceVersion kmock does not make up itself."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": f"uid-{name}",
                "resourceVersion": "1",
                **meta,
            },
            "spec": {"redirectURIs": ["https://app.example.com/callback"], **(spec or {})},
        }
        result: dict[str, Any] = await self.request(
            "POST", f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}", body
        )
        return result
