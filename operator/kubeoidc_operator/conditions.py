"""Status conditions, as the Kubernetes API conventions define them.

``status.conditions`` is a list keyed by ``type``. Each condition has a ``status`` ("True", "False" or
"Unknown"), a one-word CamelCase ``reason``, a human ``message``, the ``observedGeneration`` it was
computed for, and a ``lastTransitionTime`` that moves only when ``status`` flips: a new reason or
message with the same status keeps the time. Pure functions; nothing here does I/O. The times are
Kubernetes' (``metav1.Time``), and :func:`utcnow` is the operator's one clock, injected where it matters.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    """The desired state of one condition; the time is filled in by :func:`set_conditions`."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


def utcnow() -> datetime.datetime:
    """Now, timezone-aware in UTC: the default clock of the reconciler, the key keeper and peering."""
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and whole seconds, as Kubernetes writes ``metav1.Time``."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime.datetime | None:
    """The moment an RFC 3339 string names (timezone-aware), or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def find_condition(conditions: object, type_: str) -> Mapping[str, Any] | None:
    """The condition of that type in a ``status.conditions`` value, or None."""
    if not isinstance(conditions, list):
        return None
    for condition in conditions:
        if isinstance(condition, Mapping) and condition.get("type") == type_:
            return condition
    return None


def set_conditions(
    current: object,
    desired: Iterable[Condition],
    *,
    generation: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """The new ``status.conditions`` list: ``current`` with each ``desired`` condition set.

    Conditions of other types are kept as they are and in their place; new types are appended.
    ``lastTransitionTime`` is carried over unless the status flips (or the old time is unreadable).
    """
    result: list[dict[str, Any]] = [
        dict(condition)
        for condition in (current if isinstance(current, list) else [])
        if isinstance(condition, Mapping)
    ]
    for condition in desired:
        index = next((i for i, item in enumerate(result) if item.get("type") == condition.type), None)
        old = result[index] if index is not None else None
        moment = old.get("lastTransitionTime") if old is not None else None
        if old is None or old.get("status") != condition.status or parse_time(moment) is None:
            moment = format_time(now)
        new: dict[str, Any] = {
            "type": condition.type,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": moment,
        }
        if generation is not None:
            new["observedGeneration"] = generation
        if index is None:
            result.append(new)
        else:
            result[index] = new
    return result
