"""Keeps the provider's signing-keys Secret on schedule: reads it, asks :mod:`.keyring`, writes the result.

Runs in the active operator only (beside the resync), every ``interval`` seconds: each tick is one
read and at most one write, so a missed tick only delays a stage, never skips one. Key material is
never logged; key ids are.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable

from kubeoidc_contract.jwks import generate_key

from .conditions import utcnow
from .controller import ClusterApi
from .keyring import KeyMaker, KeyPolicy, KeyringPlan, plan_keyring

logger = logging.getLogger(__name__)

#: Seconds before a failed tick is tried again, the first time.
FIRST_RETRY = 1.0


class KeyKeeper:
    """Applies the keyring's decisions to one Secret."""

    def __init__(
        self,
        api: ClusterApi,
        namespace: str,
        name: str,
        policy: KeyPolicy,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
        make_key: KeyMaker = generate_key,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.policy = policy
        self._clock = clock
        self._make_key = make_key

    def tick(self) -> KeyringPlan:
        current = self.api.find_secret(self.namespace, self.name)
        plan = plan_keyring(
            current,
            namespace=self.namespace,
            name=self.name,
            policy=self.policy,
            now=self._clock(),
            make_key=self._make_key,
        )
        where = f"{self.namespace}/{self.name}"
        if plan.action == "refuse":
            logger.error("Signing keys not managed: %s", plan.problem)
        elif plan.action == "create" and plan.secret is not None:
            self.api.create_secret(self.namespace, plan.secret)
            logger.info("Signing keys Secret %s created: %s.", where, "; ".join(plan.changes))
        elif plan.action == "patch" and plan.secret is not None and current is not None:
            patch = {
                "metadata": {
                    "labels": plan.secret["metadata"]["labels"],
                    # A stale write fails (409) rather than undo a concurrent one.
                    "resourceVersion": current.get("metadata", {}).get("resourceVersion"),
                },
                "data": plan.secret["data"],
            }
            self.api.patch_secret(self.namespace, self.name, patch)
            logger.info("Signing keys Secret %s updated: %s.", where, "; ".join(plan.changes) or "labels")
        return plan


async def keep_keys_forever(
    keeper: KeyKeeper, interval: float, *, active: Callable[[], bool] | None = None
) -> None:
    """One tick now, then every ``interval`` seconds, until cancelled.

    A failed tick (the API server away) is tried again sooner: after 1 s, then twice as long each time,
    never longer than ``interval``. It matters at start, when the provider waits for the keys.

    With several replicas, ``active`` says whether this one is the active one (as for the resync):
    a standby skips its turn, so only one replica ever writes the keys.
    """
    retry = FIRST_RETRY
    while True:
        wait = interval
        try:
            if active is None or await asyncio.to_thread(active):
                await asyncio.to_thread(keeper.tick)
            retry = FIRST_RETRY
        except Exception:
            wait = min(retry, interval)
            retry *= 2
            logger.exception("Could not update the signing keys; retrying in %s seconds.", wait)
        await asyncio.sleep(wait)
