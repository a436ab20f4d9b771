"""Start the operator: kopf, configured from :class:`~.settings.OperatorSettings`, until a signal stops it."""

from __future__ import annotations

import logging

import kopf

from kubeoidc.contract import SECRET_SELECTOR

from .handlers import register
from .kube import KubeApi
from .settings import OperatorSettings


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's own settings for this operator."""
    result = kopf.OperatorSettings()
    # Events are posted for what the reconciler reports (kopf.event) and for kopf's own warnings and
    # errors; kopf's INFO chatter ("Handler succeeded") stays in the log.
    result.posting.enabled = True
    result.posting.level = logging.WARNING
    # The CRD's status schema is closed: kopf keeps its progress in annotations, not in status.kopf.
    result.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    # Watch only the Secrets this operator manages (server-side; the handler filters too).
    result.watching.label_selectors["v1", "secrets"] = SECRET_SELECTOR
    return result


def liveness_endpoint(settings: OperatorSettings) -> str:
    return f"http://0.0.0.0:{settings.liveness_port}/healthz"


def run(settings: OperatorSettings) -> None:
    """Run the operator against the cluster from the service account or the kubeconfig; blocks."""
    api = KubeApi.from_environment()
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)
    register(registry, settings, api)
    kopf.configure(verbose=False)
    kopf.run(
        registry=registry,
        settings=kopf_settings(settings),
        standalone=True,  # One replica; no KopfPeering resource needed.
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=liveness_endpoint(settings),
    )
