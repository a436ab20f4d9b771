"""Start the operator: kopf, configured from :class:`~.settings.OperatorSettings`, until a signal stops it.

One replica runs standalone. With ``KUBEOIDC_OPERATOR_PEERING``, several replicas share kopf's peering
(see :mod:`.peering`): one is active, the others stand by, and a standby takes over when the active one
stops or dies.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf
import uvloop

from kubeoidc_contract import SECRET_SELECTOR
from kubeoidc_contract.cluster_access import ClusterAccess, from_environment

from . import peering
from .handlers import register
from .kube import CONCURRENT_CALLS, KubeApi
from .settings import OperatorSettings

logger = logging.getLogger(__name__)

#: Allocations between two collections of the youngest generation (CPython's default: 700). The
#: operator's heap is large and long-lived (kopf's record of every object it watches, the parsed watch
#: events) and a burst of clients allocates fast: at the default, the collector took about a sixth of
#: the operator's CPU at 10,000 new clients. The older generations keep their default ratios (10, 10).
YOUNG_COLLECTION_THRESHOLD = 10_000


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base, kept nowhere: only kopf's change handlers (on.create/update/field) read a diff,
    and this operator has none. kopf still asks for the diff base of every watch event; its default
    builds it from a deep copy of the whole object and reads an annotation through its views, about a
    sixth of the operator's CPU at scale, for nothing."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def kopf_settings(settings: OperatorSettings, *, priority: int | None = None) -> kopf.OperatorSettings:
    """kopf's own settings for this operator (``priority``: this replica's, when peering)."""
    result = kopf.OperatorSettings()
    # Events are posted for what the reconciler reports (kopf.event) and for kopf's own warnings and
    # errors; kopf's INFO chatter ("Handler succeeded") stays in the log.
    result.posting.enabled = True
    result.posting.level = logging.WARNING
    # Sync handlers run in kopf's thread pool (its default: a few threads per core); each waits on the
    # API server most of its time, so more of them keep a burst of new clients moving.
    result.execution.max_workers = CONCURRENT_CALLS
    # The CRD's status schema is closed: kopf would keep its progress in annotations, not in status.kopf.
    # (The OIDCClient handlers are event handlers, for which kopf records nothing on the object.)
    result.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    result.persistence.diffbase_storage = NoDiffBase()
    # An API server outage: kopf retries each call after these waits (its default grows to 21 s, so a
    # watch could stay away that long after the API server is back). They last two minutes in all: an
    # API server that has just started answers 403 until its RBAC cache is filled, and kopf stops the
    # operator when the last retry of a watch gets a 403. A connection attempt to an API server that is
    # away is cut short, and a watch is renewed at least every 5 minutes.
    result.networking.error_backoffs = (0.5, 1, 1.5, *[2] * 60)
    result.networking.connect_timeout = 5
    result.watching.connect_timeout = 5
    result.watching.server_timeout = 300
    result.watching.client_timeout = 315
    # Watch only the Secrets this operator manages (server-side; the handler filters too).
    result.watching.label_selectors["v1", "secrets"] = SECRET_SELECTOR
    result.peering.standalone = not settings.peering
    if settings.peering:
        # Mandatory: a replica never falls back to working alone when the peering object is missing.
        result.peering.mandatory = True
        result.peering.name = settings.peering
        result.peering.lifetime = settings.peering_lifetime
        # One ClusterKopfPeering whatever the operator's scope (kopf.run resets this flag to the scope,
        # and the startup handler of use_cluster_peering sets it again).
        result.peering.clusterwide = True
        if priority is not None:
            result.peering.priority = priority
    return result


def liveness_endpoint(settings: OperatorSettings) -> str:
    return f"http://0.0.0.0:{settings.liveness_port}/healthz"


def peering_reader(api: KubeApi, name: str) -> peering.ReadPeering:
    """Reads the ClusterKopfPeering ``name`` (None when there is none)."""

    def read() -> dict[str, Any] | None:
        return api.find_cluster_object(
            peering.PEERING_GROUP, peering.PEERING_VERSION, peering.PEERING_PLURAL, name
        )

    return read


def log_in_with(registry: kopf.OperatorRegistry, access: ClusterAccess) -> None:
    """kopf logs in with the operator's own access (the same server and identity as its calls); kopf
    calls this again when the API server answers 401, and a renewed token file is read then."""

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(access)


def connection_info(access: ClusterAccess) -> kopf.ConnectionInfo:
    """kopf's view of ``access``, with the token as it is now."""
    return kopf.ConnectionInfo(
        server=access.server,
        ca_data=access.ca_pem.encode() if access.ca_pem else None,
        insecure=access.insecure or None,
        token=access.token() if access.token is not None else None,
        certificate_data=access.certificate_pem.encode() if access.certificate_pem else None,
        private_key_data=access.private_key_pem.encode() if access.private_key_pem else None,
    )


def use_cluster_peering(registry: kopf.OperatorRegistry, gate: peering.PeeringGate) -> None:
    """At startup: peer through the ClusterKopfPeering even when watching a few namespaces (kopf would
    use a KopfPeering in each), and say at once if the peering object is missing."""

    @kopf.on.startup(registry=registry)
    def cluster_peering(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.clusterwide = True
        try:
            gate()  # Logs the replica's state, or that the peering object is missing.
        except Exception:
            # Only a diagnostic: kopf's own keep-alives report the same trouble and retry.
            logger.exception("Could not read the peering object %r.", gate.name)


def configure_logging(level: str) -> None:
    """kopf's log handler (per-object context in every line) at ``level``.

    kopf's ``configure`` knows only DEBUG, INFO and WARNING and sets the root level itself, so the level
    asked for is set again after it.
    """
    kopf.configure(debug=level == "DEBUG", verbose=False)
    logging.getLogger().setLevel(level)


def run(settings: OperatorSettings, *, log_level: str = "INFO") -> None:
    """Run the operator against the cluster from the service account or the kubeconfig; blocks."""
    access = from_environment()
    api = KubeApi(access)
    registry = kopf.OperatorRegistry()
    log_in_with(registry, access)
    identity: str | None = None
    priority: int | None = None
    gate: peering.PeeringGate | None = None
    if settings.peering:
        identity = peering.new_identity()
        priority = settings.priority if settings.priority is not None else peering.random_priority()
        gate = peering.PeeringGate(
            peering_reader(api, settings.peering), name=settings.peering, identity=identity, priority=priority
        )
        use_cluster_peering(registry, gate)
        logger.info(
            "Peering %r as %s, priority %s, keep-alive records valid %s seconds.",
            settings.peering,
            identity,
            priority,
            settings.peering_lifetime,
        )
    register(registry, settings, api, active=gate)
    configure_logging(log_level)
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 10)
    # On uvloop, as kopf's own command line runs it: kopf's per-object workers wait on timers and tasks
    # for every watch event, and uvloop's are cheaper than asyncio's default loop's.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        kopf.run(
            loop=runner.get_loop(),
            registry=registry,
            settings=kopf_settings(settings, priority=priority),
            standalone=not settings.peering,
            peering_name=settings.peering or None,
            priority=priority,
            identity=cast(Any, identity),  # kopf's Identity, a NewType of str that kopf does not export.
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            liveness_endpoint=liveness_endpoint(settings),
        )
