"""Reads the cluster's ServiceAccount issuer discovery from the API server (its only other Kubernetes use
besides the watcher; ``cluster_issuer`` calls it from its background thread, never on the request path).

Two non-resource URLs, which the chart's ClusterRole grants ``get`` on and nothing more:
``/.well-known/openid-configuration`` (the ``issuer`` of ServiceAccount tokens) and
``/openid/v1/jwks`` (the public keys that verify them). The API server serves its own keys there even
when its issuer is an external URL.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes

from kubeoidc_provider.cluster_issuer import Discovered

#: Seconds to wait for the API server (connect, read): the fetch runs in the background.
TIMEOUT = (10, 20)


def fetch_issuer(api_client: Any) -> Discovered:
    """The issuer the API server's discovery states and its key set; raises on any failure."""
    discovery = _get_json(
        kubernetes.client.WellKnownApi(api_client).get_service_account_issuer_open_id_configuration
    )
    jwks = _get_json(kubernetes.client.OpenidApi(api_client).get_service_account_issuer_open_id_keyset)
    issuer = discovery.get("issuer")
    if not isinstance(jwks.get("keys"), list):
        raise ValueError("the API server's /openid/v1/jwks holds no key list")
    return Discovered(issuer if isinstance(issuer, str) and issuer else None, jwks)


def _get_json(call: Any) -> dict[str, Any]:
    response = call(_preload_content=False, _request_timeout=TIMEOUT)
    try:
        document = json.loads(response.data)
    finally:
        response.release_conn()
    if not isinstance(document, dict):
        raise ValueError("the API server answered with something other than a JSON object")
    return document
