"""Checks every IdentitySource of the operator's identity namespace, now and then, and writes its status.

A loop like the signing-key keeper's, not a kopf watch: the IdentitySources live in one namespace (the
provider's), where the chart grants the operator its rights, whatever namespaces the OIDCClients are
watched in. Each check runs on a worker thread (network I/O with short timeouts).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import logging
from collections.abc import Callable

from .conditions import utcnow
from .errors import NotFound
from .kube import KubeApi
from .source_check import check_source
from .source_status import source_status

logger = logging.getLogger(__name__)


class SourceKeeper:
    """One pass over the IdentitySources of ``namespace``: check each, write its status."""

    def __init__(
        self, api: KubeApi, namespace: str, *, now: Callable[[], datetime.datetime] = utcnow
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.now = now

    def tick(self) -> None:
        for source in self.api.list_identity_sources(self.namespace):
            name = str(source["metadata"]["name"])
            outcome = check_source(source.get("spec") or {}, self._secret)
            try:
                self.api.patch_identity_source_status(
                    self.namespace, name, source_status(source, outcome, self.now())
                )
            except NotFound:
                continue  # deleted meanwhile
            logger.info(
                "IdentitySource %s/%s: %s (%s)", self.namespace, name, outcome.reason, outcome.message
            )

    def _secret(self, name: str, key: str) -> str | None:
        secret = self.api.find_secret(self.namespace, name)
        value = ((secret or {}).get("data") or {}).get(key)
        if not isinstance(value, str):
            return None
        try:
            return base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None


async def check_sources_forever(
    keeper: SourceKeeper, interval: float, *, active: Callable[[], bool] | None = None
) -> None:
    """One pass now, then every ``interval`` seconds, until cancelled; only the active replica writes."""
    while True:
        try:
            if active is None or await asyncio.to_thread(active):
                await asyncio.to_thread(keeper.tick)
        except Exception:
            logger.exception("Could not check the identity sources; retrying in %s seconds.", interval)
        await asyncio.sleep(interval)
