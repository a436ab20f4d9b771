"""The registry watcher's list, without an API server: page by page, it keeps the registry's small record
of each OIDCClient, not the object as listed (whose managed fields and last-applied copy are most of it).
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.streams import oidcclient_stream
from kubeoidc_provider.watcher import RegistryWatcher

PAGE_SIZE = 100


def listed_oidcclient(index: int) -> dict[str, Any]:
    """An OIDCClient as the API server lists it: with the operator's status, managed fields and
    ``kubectl apply``'s copy of what was applied."""
    name = f"app-{index:05d}"
    client_id = f"kubeoidc-{index:024x}"
    spec = {
        "displayName": f"App {index}",
        "description": f"The {name} application",
        "redirectURIs": [f"https://{name}.example.com/callback"],
        "grantTypes": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email"],
    }
    applied = {"apiVersion": contract.API_VERSION, "kind": contract.KIND, "metadata": {"name": name}}
    applied["spec"] = spec
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": f"0d9e5c4e-6b1a-4f7e-9a51-{index:012d}",
            "resourceVersion": str(1000 + index),
            "generation": 1,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)},
            "managedFields": [
                {
                    "manager": manager,
                    "operation": "Update",
                    "apiVersion": contract.API_VERSION,
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {f"f:{part}": {f"f:{key}": {} for key in spec} for part in ("spec", "meta")},
                }
                for manager in ("kubectl-client-side-apply", "kopf")
            ],
        },
        "spec": spec,
        "status": {
            "clientID": client_id,
            "secretName": f"{name}-oidc",
            contract.STATUS_CREDENTIALS: {
                contract.CREDENTIALS_CLIENT_ID: client_id,
                contract.CREDENTIALS_SECRET_HASH: f"{index:064x}",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "SecretReady",
                    "message": "The Secret holds the client's credentials",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


class PagedApi:
    """Answers a list page by page (``limit`` and ``continue``), each page parsed from its JSON text as
    the real client does, so that only the pages the caller keeps stay in memory."""

    def __init__(self, count: int) -> None:
        self.pages = [
            json.dumps(
                {
                    "items": [listed_oidcclient(i) for i in range(start, min(start + PAGE_SIZE, count))],
                    "metadata": {
                        "resourceVersion": "5000",
                        "continue": str(start + PAGE_SIZE) if start + PAGE_SIZE < count else "",
                    },
                }
            )
            for start in range(0, count, PAGE_SIZE)
        ]

    def get_json(self, path: str, params: dict[str, str | int] | None = None) -> dict[str, Any]:
        assert params is not None
        assert params["limit"] == PAGE_SIZE
        page: dict[str, Any] = json.loads(self.pages[int(params.get("continue", 0)) // PAGE_SIZE])
        return page


def test_a_paged_list_serves_every_client_and_returns_the_last_resource_version() -> None:
    registry = ClientRegistry()
    watcher = RegistryWatcher(registry, None, PagedApi(250), page_size=PAGE_SIZE)  # type: ignore[arg-type]
    stream = oidcclient_stream(None, registry)

    version = watcher._list(stream)

    assert version == "5000"
    assert len(registry) == 250
    client = registry.get(f"kubeoidc-{249:024x}")
    assert client is not None
    assert client.display_name == "App 249"
    assert client.check_secret("", 0) is False


def test_listing_two_thousand_clients_never_holds_more_than_a_page_of_listed_objects() -> None:
    count = 2_000
    api = PagedApi(count)
    one_page = len(api.pages[0])  # JSON text: parsed, a page takes several times this
    registry = ClientRegistry()
    watcher = RegistryWatcher(registry, None, api, page_size=PAGE_SIZE)  # type: ignore[arg-type]
    stream = oidcclient_stream(None, registry)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        watcher._list(stream)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(registry) == count
    records = after - before
    # Held at once, the 2,000 objects as listed would take 20 pages' worth; a page at a time, the peak is
    # the records plus about one parsed page.
    assert peak - before < records + 8 * one_page, f"peak {peak - before}, records {records}, page {one_page}"
