"""One reconcile for every trigger: take the OIDCClient and its Secrets, decide, write, post Events.

Create, update, resume, a Secret event and the periodic resync all call :meth:`Reconciler.reconcile`
with the client's namespace and name. It holds a per-client lock, so two triggers for one client never
interleave in this process; across processes, the Secret patch carries the resourceVersion it was
computed from. The decisions are in :mod:`.reconcile`; the I/O in :mod:`.kube`.

The client is planned from the body its own watch event carried when that body can hold no stale status:
a queued trigger acting on a status older than this process's own last write could rotate twice. Each
status write's answer is remembered as *unseen* until a watch event shows that very version (events of
one object come in order, so every later one holds the write); while a write is unseen, the client is
read afresh, and the version read then is the one to wait for. Writes by others need no such care: each
makes a newer event, and so a new reconcile. That holds for one active operator at a time, as peering
keeps it (a second one writing at the same moment would be writing "by others" statuses this process
never saw). The resync and Secret events read the client afresh.

A client that records no Secret in its status (no ``secretName``, no ``clientID``) has none of its own to
read: its Secret is created without reading first; if one of that name exists (409), it is read and the
client planned again from it (someone else's: ``SecretConflict``; its own: the credentials read back). So
a new client costs two requests, its Secret and its status. A client already blocked by someone else's
Secret (its ``Ready`` condition says ``SecretConflict``) reads first: a create would only be refused again.

Each write's answer carries the object's new resourceVersion, which the reconciler remembers until the
watch event of that object comes: an event carrying exactly that version is the echo of its own write
(:meth:`Reconciler.is_echo`), and needs no reconcile (it would read both objects to find nothing to
do). Any other change moves the resourceVersion, so nothing else is ever skipped.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubeoidc_contract import READY_CONDITION

from . import reconcile
from .conditions import find_condition, utcnow
from .errors import Conflict, NotFound
from .objects import mapping, metadata, string
from .ownership import claimed_client_ids, secret_name
from .reconcile import Plan
from .rotation import CredentialGenerator, RandomCredentials
from .settings import OperatorSettings
from .status import SECRET_CONFLICT, Event

logger = logging.getLogger(__name__)

#: The kinds :meth:`Reconciler.is_echo` tells apart.
CLIENT: Final = "OIDCClient"
SECRET: Final = "Secret"

#: Posts one Event on an OIDCClient (the handlers give kopf's poster; tests may collect them).
Emit = Callable[[Mapping[str, Any], Event], None]


@dataclass(frozen=True)
class Outcome:
    """The client the reconcile planned from (read, or as its watch event carried it), and the plan that
    was applied to it."""

    client: dict[str, Any]
    plan: Plan


class ClusterApi(Protocol):
    """What the reconciler reads and writes: the Kubernetes API (:class:`~.kube.KubeApi`), or a stand-in
    with the same calls and errors (``kubeoidc dev`` keeps the objects in a folder)."""

    def get_client(self, namespace: str, name: str) -> dict[str, Any]: ...
    def list_clients(self, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]: ...
    def patch_client_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]: ...
    def find_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...
    def delete_secret(self, namespace: str, name: str, *, uid: str | None = None) -> None: ...


class Reconciler:
    """Reconciles OIDCClients through a :class:`ClusterApi`; safe to call from several threads."""

    def __init__(
        self,
        api: ClusterApi,
        settings: OperatorSettings,
        *,
        emit: Emit | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
        credentials: CredentialGenerator | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self._emit = emit
        self._clock = clock
        self._credentials = credentials or RandomCredentials()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # (kind, namespace, name) -> the resourceVersion this process's last write to it returned.
        self._written: dict[tuple[str, str, str], str] = {}
        # (namespace, name) -> a version of the client holding every status this process wrote to it,
        # that no watch event has shown yet: until one does, an event's body may predate those writes.
        self._unseen: dict[tuple[str, str], str] = {}

    def is_echo(
        self, kind: str, namespace: str, name: str, resource_version: str | None, *, peek: bool = False
    ) -> bool:
        """Whether a watch event of this object is the echo of this process's last write to it (the
        object is as that write left it). Forgets the write either way: only the next event can be its
        echo. With ``peek``, a write that this event is not the echo of is kept: the event may have
        overtaken the answer to a write still in flight, and is asked about again under the client's
        lock (:meth:`reconcile`'s ``unless_echo``)."""
        key = (kind, namespace, name)
        with self._locks_lock:
            echo = resource_version is not None and self._written.get(key) == resource_version
            if echo or not peek:
                self._written.pop(key, None)
        return echo

    def seen(self, namespace: str, name: str, resource_version: str | None, *, deleted: bool = False) -> None:
        """A watch event showed the client at this version (every event of it, in order): once the
        version of its last status write is shown, every later event's body holds that write. A deleted
        client's record is forgotten."""
        key = (namespace, name)
        with self._locks_lock:
            if deleted or (resource_version is not None and self._unseen.get(key) == resource_version):
                self._unseen.pop(key, None)

    def _wrote(self, kind: str, namespace: str, answer: Mapping[str, Any]) -> None:
        meta = answer.get("metadata") or {}
        name, version = meta.get("name"), meta.get("resourceVersion")
        if isinstance(name, str) and isinstance(version, str) and version:
            with self._locks_lock:
                self._written[(kind, namespace, name)] = version
                if kind == CLIENT:
                    self._unseen[(namespace, name)] = version

    def _client(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        """The client to plan from: the event's ``body`` if it holds every status this process wrote,
        else read afresh (:class:`~.errors.NotFound` if it is gone). Called under the client's lock."""
        key = (namespace, name)
        version = _version(body)
        with self._locks_lock:
            unseen = self._unseen.get(key)
        if body is not None and unseen is None:
            return dict(body)
        client = self.api.get_client(namespace, name)
        if unseen is not None:
            # Read after the write, so it holds it: the event showing this version (still to come, as
            # it is newer than the one being handled) is the one to wait for now.
            fresh = _version(client)
            with self._locks_lock:
                if fresh is not None and fresh == version:
                    self._unseen.pop(key, None)
                elif fresh is not None:
                    self._unseen[key] = fresh
        return client

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def reconcile(
        self,
        namespace: str,
        name: str,
        log: logging.Logger | logging.LoggerAdapter[Any] = logger,
        *,
        unless_echo: tuple[str, str, str | None] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Outcome | None:
        """Bring one client's Secret and status to what its spec asks; None if the client is gone, or
        if ``unless_echo`` (kind, name, resourceVersion of the object whose watch event asks for this
        reconcile) turns out to be the echo of a write of this client's last reconcile: asked under the
        client's lock, once that reconcile has recorded its writes. ``body``: the client as its own
        watch event carried it, planned from unless this process wrote a status it may not hold.

        Raises :class:`~.errors.Conflict` when an object changed underneath (the caller retries).
        """
        with self._lock(namespace, name):
            if body is not None:  # It may have overtaken the answer to the write it shows.
                self.seen(namespace, name, _version(body))
            if unless_echo is not None and self.is_echo(unless_echo[0], namespace, *unless_echo[1:]):
                return None
            try:
                client = self._client(namespace, name, body)
            except NotFound:
                with self._locks_lock:
                    self._locks.pop((namespace, name), None)
                    self._unseen.pop((namespace, name), None)
                return None
            read = _records_a_secret(client)
            plan, previous = self._plan(client, namespace, read=read)
            try:
                self._apply(plan, previous, namespace, name, log)
            except Conflict:
                if read:
                    raise
                # A Secret of that name exists though status records none: plan from what is there.
                plan, previous = self._plan(client, namespace, read=True)
                self._apply(plan, previous, namespace, name, log)
        if self._emit is not None:
            for event in plan.events:
                self._emit(client, event)
        return Outcome(client, plan)

    def _plan(
        self, client: dict[str, Any], namespace: str, *, read: bool = True
    ) -> tuple[Plan, dict[str, Any] | None]:
        """The plan, and the old Secret it was computed from (if the Secret's name changed). Without
        ``read``, the client's Secret is taken to be absent (its creation answers 409 if it is not)."""
        desired_name = secret_name(client)
        current = self.api.find_secret(namespace, desired_name) if read else None
        recorded = (
            client.get("status", {}).get("secretName") if isinstance(client.get("status"), dict) else None
        )
        previous = None
        if isinstance(recorded, str) and recorded and recorded != desired_name:
            previous = self.api.find_secret(namespace, recorded)
        claimed: dict[str, str] = {}
        pinned = isinstance(client.get("spec"), dict) and client["spec"].get("clientID")
        held = isinstance(client.get("status"), dict) and client["status"].get("clientID")
        if pinned or (not held and (current is not None or previous is not None)):
            # A pinned ID, or one about to be read back from a Secret, can collide: a generated one has
            # 128 random bits, and one already held was checked when it was taken. A brand-new client
            # (no ID held, no Secret) gets a generated one: no list of every client for it.
            claimed = claimed_client_ids(client, self.api.list_clients(self.settings.namespaces))
        decision = reconcile.plan(
            client,
            current=current,
            previous=previous,
            claimed=claimed,
            issuer=self.settings.issuer,
            now=self._clock(),
            credentials=self._credentials,
        )
        return decision, previous

    def _apply(
        self,
        plan: Plan,
        previous: Mapping[str, Any] | None,
        namespace: str,
        name: str,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        # The Secret first, status last: status never claims what the Secret does not hold yet.
        if plan.secret is not None and plan.action == "create":
            self._wrote(SECRET, namespace, self.api.create_secret(namespace, plan.secret))
            log.info("Created Secret %s/%s.", namespace, plan.secret["metadata"]["name"])
        elif plan.secret is not None and plan.action == "patch" and plan.secret_patch:
            answer = self.api.patch_secret(namespace, plan.secret["metadata"]["name"], plan.secret_patch)
            self._wrote(SECRET, namespace, answer)
            log.info("Patched Secret %s/%s (%s).", namespace, plan.secret["metadata"]["name"], _fields(plan))
        if plan.delete_secret is not None:
            # Precondition on the uid: the very Secret found to be ours is deleted, or nothing (409).
            uid = (previous or {}).get("metadata", {}).get("uid")
            try:
                self.api.delete_secret(namespace, plan.delete_secret, uid=uid)
                log.info("Deleted the old Secret %s/%s.", namespace, plan.delete_secret)
            except NotFound:
                pass
        if plan.status:
            try:
                self._wrote(CLIENT, namespace, self.api.patch_client_status(namespace, name, plan.status))
            except NotFound:
                return
        for event in plan.events:
            # INFO even for warnings: kopf posts its logger's warnings as Events, and these are posted.
            log.info("%s: %s", event.reason, event.message)

    def reconcile_all(self) -> list[Outcome]:
        """Reconcile every client in the watched namespaces; one client's failure does not stop the rest."""
        outcomes: list[Outcome] = []
        for client in self.api.list_clients(self.settings.namespaces):
            meta = client.get("metadata", {})
            namespace, name = meta.get("namespace"), meta.get("name")
            if not namespace or not name:
                continue
            try:
                outcome = self.reconcile(namespace, name)
            except Exception:
                logger.exception(
                    "Resync of OIDCClient %s/%s failed; the next resync retries.", namespace, name
                )
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes


def _version(obj: Mapping[str, Any] | None) -> str | None:
    return string(metadata(obj).get("resourceVersion"))


def _records_a_secret(client: Mapping[str, Any]) -> bool:
    """Whether the client's status names a Secret or a client ID, or says another's Secret blocks it:
    then there most likely is a Secret of that name to read, and a create sent without reading would
    mostly answer 409."""
    status = mapping(client.get("status"))
    ready = find_condition(status.get("conditions"), READY_CONDITION)
    return bool(status.get("secretName") or status.get("clientID")) or (
        ready is not None and ready.get("reason") == SECRET_CONFLICT
    )


def _fields(plan: Plan) -> str:
    # Names what changed, never a value: the patch may carry a client secret.
    patch = plan.secret_patch or {}
    parts = sorted(key for key in patch.get("metadata", {}) if key != "resourceVersion")
    parts += [f"data.{key}" for key in sorted(patch.get("data", {}))]
    return ", ".join(parts)


async def resync_forever(
    reconciler: Reconciler, interval: float, *, active: Callable[[], bool] | None = None
) -> None:
    """Reconcile every client each ``interval`` seconds, until cancelled.

    Watches miss nothing in theory; this repairs what they did miss (and drops expired grace-period
    annotations) without a per-object timer, so OIDCClients carry no finalizer. With several replicas,
    ``active`` says whether this one is the active one (:class:`~.peering.PeeringGate`): kopf pauses its
    own handlers on a standby replica but not this loop, which then skips its turn.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            if active is not None and not await asyncio.to_thread(active):
                continue
            await asyncio.to_thread(reconciler.reconcile_all)
        except Exception:
            logger.exception("Resync failed; retrying in %s seconds.", interval)
