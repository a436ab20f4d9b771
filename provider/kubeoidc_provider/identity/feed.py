"""IdentitySources and the Secrets they name, as the watcher sees them, applied to the catalog.

The watcher (the provider's only Kubernetes client) hands over every IdentitySource of the provider's
namespace and every Secret of that namespace; a source is applied again when its spec changes or when
a Secret value it read changes, so a rotated client secret or bind password takes effect without a
restart. Nothing here logs a Secret's content.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Mapping
from typing import Any

from kubeoidc_provider.identity.catalog import SourceCatalog

KubeObject = Mapping[str, Any]


class SourceFeed:
    """Keeps a :class:`SourceCatalog` in step with the cluster's IdentitySources and Secrets."""

    def __init__(self, catalog: SourceCatalog, namespace: str) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self._specs: dict[str, str] = {}
        self._secrets: dict[str, dict[str, str]] = {}
        #: What each applied source was built from: its spec, and the Secret values it read.
        self._applied: dict[str, tuple[str, tuple[tuple[str, str, str | None], ...]]] = {}
        self._lock = threading.Lock()

    # IdentitySources ----------------------------------------------------------------------------------
    def upsert_source(self, obj: KubeObject) -> None:
        with self._lock:
            self._specs[_name(obj)] = json.dumps(obj.get("spec") or {}, sort_keys=True)
            self._refresh()

    def delete_source(self, obj: KubeObject) -> None:
        with self._lock:
            self._specs.pop(_name(obj), None)
            self._refresh()

    def replace_sources(self, objs: list[KubeObject]) -> None:
        with self._lock:
            self._specs = {_name(obj): json.dumps(obj.get("spec") or {}, sort_keys=True) for obj in objs}
            self._refresh()

    # Secrets ------------------------------------------------------------------------------------------
    def upsert_secret(self, obj: KubeObject) -> None:
        with self._lock:
            self._secrets[_name(obj)] = _data(obj)
            self._refresh()

    def delete_secret(self, obj: KubeObject) -> None:
        with self._lock:
            self._secrets.pop(_name(obj), None)
            self._refresh()

    def replace_secrets(self, objs: list[KubeObject]) -> None:
        with self._lock:
            self._secrets = {_name(obj): _data(obj) for obj in objs}
            self._refresh()

    def accepts(self, obj: KubeObject) -> bool:
        return bool((obj.get("metadata") or {}).get("namespace") == self.namespace)

    # --------------------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        for name in set(self._applied) - set(self._specs):
            del self._applied[name]
            self.catalog.remove(name)
        for name, spec in self._specs.items():
            previous = self._applied.get(name)
            if (
                previous is not None
                and previous[0] == spec
                and all(self._secrets.get(secret, {}).get(key) == value for secret, key, value in previous[1])
            ):
                continue
            read: list[tuple[str, str, str | None]] = []

            def lookup(secret: str, key: str, read: list[tuple[str, str, str | None]] = read) -> str | None:
                value = self._secrets.get(secret, {}).get(key)
                read.append((secret, key, value))
                return value

            self.catalog.apply(name, json.loads(spec), lookup)
            self._applied[name] = (spec, tuple(read))


def _name(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _data(obj: KubeObject) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            values[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return values
