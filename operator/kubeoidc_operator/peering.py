"""Operator failover on kopf's peering: who this replica is, its priority, and whether it is the active one.

Replicas started with ``KUBEOIDC_OPERATOR_PEERING`` share one ``ClusterKopfPeering`` object. Each one
keeps a record in its status, ``{identity: {priority, lifetime, lastseen}}``, renewed ahead of expiry;
kopf pauses every replica that sees a live record of a higher priority than its own, or of the same
priority (then all of them pause, with a warning). A paused replica closes its watches, so none of its
handlers run, until the records above it expire: the active replica dies, and the next one takes over
one lifetime after its last keep-alive, or at once when it stops cleanly (it removes its record). That is
kopf's leader election; nothing here elects anyone.

kopf keeps the paused state to itself, and the periodic resync is this operator's own loop: a kopf timer
would pause with the rest, but kopf puts a finalizer on every object a timer runs for, and OIDCClients
carry none. So before each resync the loop reads the same peering object and applies kopf's rule
(:func:`is_active`, through :class:`PeeringGate`): a standby replica never resyncs.

Priorities: unless configured, each start draws a random negative one (:func:`random_priority`), as kopf
advises for several pods of one Deployment ("distinctly prioritised", e.g. ``--priority=$RANDOM``).
2**31 values make a tie, which would pause every replica, all but impossible; below zero, kopf's own
tools outrank every replica: ``kopf freeze`` (priority 100 by default) pauses them all for maintenance,
``kopf run --dev`` (666) takes over from a workstation. A replica that starts with a higher priority than
the active one takes over from it; that is kopf's way, and the reconcile is idempotent.

Pure: no kopf, no Kubernetes client; the caller gives the function that reads the peering object.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import socket
from collections.abc import Callable, Mapping
from typing import Any, Final

from .conditions import utcnow

logger = logging.getLogger(__name__)

#: kopf's cluster-scoped peering resource (``crds/kopf-peering.yaml``).
PEERING_GROUP: Final = "kopf.dev"
PEERING_VERSION: Final = "v1"
PEERING_PLURAL: Final = "clusterkopfpeerings"
PEERING_KIND: Final = "ClusterKopfPeering"

#: kopf's lifetime for a record that states none.
DEFAULT_LIFETIME: Final = 60

#: Reads the peering object as the API serves it, or None if it does not exist.
ReadPeering = Callable[[], Mapping[str, Any] | None]


def new_identity() -> str:
    """This process's name among the peers: the host (the pod's name in a cluster) and a random suffix,
    so a restarted container is never mistaken for the one it replaces."""
    return f"{socket.gethostname()}/{secrets.token_hex(4)}"


def random_priority() -> int:
    """A priority for one start of one replica: in [-2**31, -1]."""
    return -1 - secrets.randbelow(2**31)


def _lastseen(record: Mapping[str, Any], now: datetime.datetime) -> datetime.datetime:
    value = record.get("lastseen")
    try:
        seen = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        return now  # As kopf does for a record without one: alive for a whole lifetime.
    return seen if seen.tzinfo else seen.replace(tzinfo=datetime.UTC)


def is_active(status: Mapping[str, Any], *, identity: str, priority: int, now: datetime.datetime) -> bool:
    """kopf's rule: a replica works unless another live record has a priority at least as high as its own.

    ``status`` is the peering object's status (identity to record); a record is live until ``lastseen``
    plus ``lifetime`` seconds.
    """
    for other, record in status.items():
        if other == identity or not isinstance(record, Mapping):
            continue
        try:
            lifetime = int(record.get("lifetime", DEFAULT_LIFETIME))
            their_priority = int(record.get("priority", 0))
        except (TypeError, ValueError):
            continue  # Not a kopf record.
        if _lastseen(record, now) + datetime.timedelta(seconds=lifetime) <= now:
            continue  # Dead: kopf will drop it.
        if their_priority >= priority:
            return False
    return True


class PeeringGate:
    """Answers "is this replica the active one?" from the peering object, at each call.

    A missing peering object (or CRD) means standby: kopf, whose peering is mandatory once named, keeps
    the replica paused until the object exists. Errors reading it propagate to the caller.
    """

    def __init__(
        self,
        read: ReadPeering,
        *,
        name: str,
        identity: str,
        priority: int,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self._read = read
        self.name = name
        self.identity = identity
        self.priority = priority
        self._clock = clock
        self._last: bool | None = None

    def __call__(self) -> bool:
        peering = self._read()
        if peering is None:
            if self._last is not False:
                logger.warning(
                    "%s %r does not exist (or its CRD is missing): this replica stays paused until it is "
                    "created.",
                    PEERING_KIND,
                    self.name,
                )
            self._last = False
            return False
        status = peering.get("status")
        active = is_active(
            status if isinstance(status, Mapping) else {},
            identity=self.identity,
            priority=self.priority,
            now=self._clock(),
        )
        if active is not self._last:
            logger.info(
                "Peering %r: this replica (%s, priority %s) is %s.",
                self.name,
                self.identity,
                self.priority,
                "active" if active else "standing by",
            )
        self._last = active
        return active
