"""The status of an IdentitySource, from the outcome of checking it. Pure: no I/O, no kopf, no client.

Conditions (Kubernetes API conventions): ``SpecValid`` (the referenced Secrets and keys exist and the
values make sense), ``Reachable`` (the upstream's discovery answers with its issuer / the LDAP service
bind works), and the ``Ready`` summary; ``lastChecked`` says when, and ``observedGeneration`` for which
spec.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kubeoidc_contract as contract

from .conditions import Condition, ConditionStatus, format_time, set_conditions


@dataclass(frozen=True)
class CheckOutcome:
    """What checking a source found; ``reachable`` is None when the spec did not allow a check."""

    spec_problem: str | None
    reachable: bool | None
    reason: str
    message: str


def source_status(source: Mapping[str, Any], outcome: CheckOutcome, now: datetime.datetime) -> dict[str, Any]:
    """The whole ``status`` the IdentitySource should have after ``outcome``."""
    meta, status = source.get("metadata") or {}, source.get("status") or {}
    generation = meta.get("generation") if isinstance(meta.get("generation"), int) else None
    if outcome.spec_problem is not None:
        spec = Condition(contract.SPEC_VALID_CONDITION, "False", "InvalidSpec", outcome.spec_problem)
        reachable = Condition(contract.REACHABLE_CONDITION, "Unknown", "NotChecked", "Fix the spec first.")
        ready = Condition(contract.READY_CONDITION, "False", "InvalidSpec", outcome.spec_problem)
    else:
        spec = Condition(
            contract.SPEC_VALID_CONDITION, "True", "Valid", "The spec and its Secrets are usable."
        )
        flag: ConditionStatus = "True" if outcome.reachable else "False"
        reachable = Condition(contract.REACHABLE_CONDITION, flag, outcome.reason, outcome.message)
        ready = Condition(contract.READY_CONDITION, flag, outcome.reason, outcome.message)
    return {
        "observedGeneration": generation,
        "lastChecked": format_time(now),
        "conditions": set_conditions(
            status.get("conditions"), (spec, reachable, ready), generation=generation, now=now
        ),
    }
