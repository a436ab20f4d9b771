"""The kopf handlers, each a few lines over :class:`~.controller.Reconciler`.

:func:`register` adds them to a registry built by the caller, after the settings are known: nothing
here reads the environment or registers anything at import time. OIDCClients get no finalizer (the
periodic resync is one loop, not a per-object timer): deleting a client lets the garbage collector
delete its Secret through the ownerReference. On a standby replica (kopf's peering) kopf runs none of
these handlers, and the resync loop asks the ``active`` gate before each pass.

OIDCClients are handled by kopf's event handler, not its create/update/resume handlers: those make kopf
write its own records on each object (the state it last handled, its progress), one more write per
client. The reconcile is level-based, so one call per event (and per object at start, when kopf lists
them) is all it needs, planned from the event's body unless this process wrote a status that body may
not hold (:class:`~.controller.Reconciler`); a new client costs two requests, its Secret and its status.
What kopf would retry, a conflict or an API server away, is retried here, in the handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

from kubeoidc_contract import GROUP, MANAGED_BY_LABEL, MANAGER, PLURAL, VERSION
from kubeoidc_contract.jwks import SIGNING_ALGS

from .controller import CLIENT, SECRET, Reconciler, resync_forever
from .errors import Conflict, Unavailable
from .keykeeper import KeyKeeper, keep_keys_forever
from .keyring import KeyPolicy
from .kube import KubeApi
from .ownership import owner_of
from .rotation import CredentialGenerator
from .settings import OperatorSettings
from .source_keeper import SourceKeeper, check_sources_forever
from .status import Event

Logger = logging.Logger | logging.LoggerAdapter[Any]
#: Seconds before a reconcile that found the API server away is tried again.
UNAVAILABLE_RETRY = 2
#: Seconds before a reconcile that met a conflict (an object changed underneath) is tried again.
CONFLICT_RETRY = 0.5
#: Attempts of one reconcile before the handler gives up; the next event or the resync tries again.
ATTEMPTS = 30


def post_event(client: Mapping[str, Any], event: Event) -> None:
    """Post an Event on the OIDCClient through kopf's poster (only valid inside a running operator)."""
    kopf.event(cast(kopf.Body, client), type=event.type, reason=event.reason, message=event.message)


def _reconcile(
    reconciler: Reconciler,
    namespace: str,
    name: str,
    logger: Logger,
    *,
    unless_echo: tuple[str, str, str | None] | None = None,
    body: Mapping[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Reconcile, retrying a conflict (read again) and an API server that is away, a bounded number of
    times: kopf's event handlers are not retried by kopf. Runs in kopf's handler thread pool.
    ``unless_echo``: the object of the triggering event; ``body``: the client as its own event carried
    it, for the first attempt only (see :meth:`Reconciler.reconcile`)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            reconciler.reconcile(namespace, name, logger, unless_echo=unless_echo, body=body)
            return
        except Conflict as exc:
            logger.info("%s; retrying with the objects read again", exc)
            delay: float = CONFLICT_RETRY
        except Unavailable as exc:
            log = logger.warning if attempt == 1 else logger.debug
            log("%s; retrying in %s seconds", exc, UNAVAILABLE_RETRY)
            delay = UNAVAILABLE_RETRY
        body = None  # What failed may have changed the client: the next attempt reads it.
        sleep(delay)
    logger.error("Gave up after %d attempts; the next change or the periodic resync tries again.", ATTEMPTS)


def echo_version(client: Mapping[str, Any]) -> str | None:
    """The ``resourceVersion`` by which an OIDCClient's watch event may be found to be the echo of the
    operator's own status write; None (never an echo) when its status was written for an older
    generation than its spec's. So a spec change is reconciled even when its own event never came (a
    watch restarted after 410 Gone lists each object only as it is now, maybe at the version of a status
    write that raced the change)."""
    meta = client.get("metadata") or {}
    status = client.get("status")
    current = isinstance(status, Mapping) and status.get("observedGeneration") == meta.get("generation")
    version = meta.get("resourceVersion")
    return version if current and isinstance(version, str) else None


def register(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    api: KubeApi,
    *,
    credentials: CredentialGenerator | None = None,
    active: Callable[[], bool] | None = None,
) -> Reconciler:
    """Register the operator's handlers in ``registry``; returns the reconciler they share.

    ``active`` tells the resync loop whether this replica is the active one (None: always, standalone).
    """
    reconciler = Reconciler(api, settings, emit=post_event, credentials=credentials)
    resync_tasks: list[asyncio.Task[None]] = []

    # The filters run on kopf's event loop before any handler is called: an event that needs no
    # reconcile (the echo of the operator's own write, two of a new client's three events) costs no
    # hop to a handler thread and none of kopf's handler bookkeeping. An event may overtake the answer
    # to the write it echoes: the handler asks again, under the client's lock.

    def client_changed(event: kopf.RawEvent, namespace: str | None, type: str | None, **_: Any) -> bool:
        # type None: listed at start (kopf's resume); DELETED: the garbage collector takes the Secret,
        # and the client's last write is forgotten (no echo of it can come any more).
        meta = event["object"].get("metadata") or {}
        version, deleted = echo_version(event["object"]), type == "DELETED"
        reconciler.seen(namespace or "", meta.get("name", ""), meta.get("resourceVersion"), deleted=deleted)
        echo = reconciler.is_echo(CLIENT, namespace or "", meta.get("name", ""), version, peek=not deleted)
        return bool(namespace) and not deleted and not echo

    def secret_changed(event: kopf.RawEvent, namespace: str | None, **_: Any) -> bool:
        body = event["object"]
        meta = body.get("metadata") or {}
        version = meta.get("resourceVersion")
        echo = reconciler.is_echo(SECRET, namespace or "", meta.get("name", ""), version, peek=True)
        return bool(namespace) and owner_of(body) is not None and not echo

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, when=client_changed)
    def reconcile_client(
        event: kopf.RawEvent, namespace: str | None, name: str, logger: Logger, **_: Any
    ) -> None:
        if namespace:  # always: the filter let through namespaced clients only
            body = cast(Mapping[str, Any], event["object"])
            echo_of = (CLIENT, name, echo_version(body))
            _reconcile(reconciler, namespace, name, logger, unless_echo=echo_of, body=body)

    @kopf.on.event(
        "v1", "secrets", labels={MANAGED_BY_LABEL: MANAGER}, registry=registry, when=secret_changed
    )
    def restore_secret(body: kopf.Body, namespace: str | None, logger: Logger, **_: Any) -> None:
        # A managed Secret was created, edited or deleted: its client puts it back as it should be.
        owner = owner_of(body)
        if namespace and owner:
            echo_of = (SECRET, body.metadata.name or "", body.metadata.get("resourceVersion"))
            _reconcile(reconciler, namespace, owner, logger, unless_echo=echo_of)

    @kopf.on.startup(registry=registry)
    async def start_resync(**_: Any) -> None:
        resync_tasks.append(
            asyncio.create_task(resync_forever(reconciler, settings.resync_interval, active=active))
        )
        if settings.signing_keys_ref:
            namespace, name = settings.signing_keys_ref
            policy = KeyPolicy(
                alg=settings.key_alg,
                # A key for every algorithm a client may name, each rotating on the same schedule.
                also=SIGNING_ALGS,
                rotation_period=settings.key_rotation_period,
                publish_ahead=settings.key_publish_ahead,
                retire_after=settings.key_retire_after,
            )
            keeper = KeyKeeper(api, namespace, name, policy)
            resync_tasks.append(
                asyncio.create_task(keep_keys_forever(keeper, settings.key_check_interval, active=active))
            )
        if settings.identity_namespace:
            sources = SourceKeeper(api, settings.identity_namespace)
            resync_tasks.append(
                asyncio.create_task(
                    check_sources_forever(sources, settings.source_check_interval, active=active)
                )
            )

    @kopf.on.cleanup(registry=registry)
    async def stop_resync(**_: Any) -> None:
        for task in resync_tasks:
            task.cancel()
        await asyncio.gather(*resync_tasks, return_exceptions=True)

    return reconciler
