"""Reads the cluster's ServiceAccount issuer discovery from the API server (its only other Kubernetes use
besides the watcher; ``cluster_issuer`` calls it from its background thread, never on the request path).

Two non-resource URLs, which the chart's ClusterRole grants ``get`` on and nothing more:
``/.well-known/openid-configuration`` (the ``issuer`` of ServiceAccount tokens) and
``/openid/v1/jwks`` (the public keys that verify them). The API server serves its own keys there even
when its issuer is an external URL.
"""

from __future__ import annotations

from kubeoidc_provider.cluster_issuer import Discovered
from kubeoidc_provider.kube_api import KubeApi

#: What ``/openid/v1/jwks`` serves (RFC 7517 §8.5); asked for as ``application/json`` it answers 406.
JWKS_MEDIA_TYPE = "application/jwk-set+json"


def fetch_issuer(api: KubeApi) -> Discovered:
    """The issuer the API server's discovery states and its key set; raises on any failure."""
    discovery = api.get_json("/.well-known/openid-configuration")
    jwks = api.get_json("/openid/v1/jwks", accept=JWKS_MEDIA_TYPE)
    issuer = discovery.get("issuer")
    if not isinstance(jwks.get("keys"), list):
        raise ValueError("the API server's /openid/v1/jwks holds no key list")
    return Discovered(issuer if isinstance(issuer, str) and issuer else None, jwks)
