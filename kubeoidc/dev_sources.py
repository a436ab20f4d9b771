"""The dev mode's identity sources: IdentitySource manifests, and the Secrets they name, from the folder.

The same YAML as on a cluster: an ``IdentitySource`` and a ``Secret`` (``stringData`` or ``data``) in
the same namespace. Each source is checked once when it changes (discovery answers / the service bind
works), in the background; a source that cannot be reached is reported and the provider goes on
serving everything else (the password form, other sources), as a cluster would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

import kubeoidc_contract as contract
from kubeoidc.local_cluster import DEFAULT_NAMESPACE
from kubeoidc.manifest import load_manifests
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.identity.ldap import LDAPSource, LDAPUnavailable
from kubeoidc_provider.identity.upstream import UpstreamError, UpstreamSource

Say = Callable[[str], None]


class DevSources:
    """Keeps the provider's identity sources in step with the folder's manifests."""

    def __init__(self, catalog: SourceCatalog, say: Say) -> None:
        self.catalog = catalog
        self.say = say
        self._applied: dict[str, str] = {}

    def sync(self, files: Iterable[Path]) -> None:
        sources: dict[str, dict[str, Any]] = {}
        secrets: dict[tuple[str, str], dict[str, str]] = {}
        for path in files:
            try:
                documents = load_manifests(path.read_text())
            except (OSError, ValueError, yaml.YAMLError):
                continue  # the OIDCClient pass reports unreadable files
            for document in documents:
                meta = document.get("metadata")
                meta = meta if isinstance(meta, dict) else {}
                name, namespace = meta.get("name"), meta.get("namespace") or DEFAULT_NAMESPACE
                if not isinstance(name, str) or not name:
                    continue
                if document.get("kind") == contract.IDENTITY_SOURCE_KIND:
                    if document.get("apiVersion") != contract.API_VERSION:
                        wrong = f"apiVersion must be {contract.API_VERSION}"
                        self.say(f"refused: {path.name}: IdentitySource {name}: {wrong}")
                        continue
                    sources[name] = {"namespace": namespace, "spec": document.get("spec") or {}}
                elif document.get("kind") == "Secret" and document.get("apiVersion") == "v1":
                    secrets[(namespace, name)] = _secret_data(document)
        for name in set(self._applied) - set(sources):
            self.catalog.remove(name)
            del self._applied[name]
            self.say(f"IdentitySource {name}: manifest removed; no longer offered")
        for name, source in sorted(sources.items()):
            namespace = source["namespace"]

            def lookup(secret: str, key: str, namespace: str = namespace) -> str | None:
                return secrets.get((namespace, secret), {}).get(key)

            fingerprint = repr((source, {k: v for k, v in secrets.items() if k[0] == namespace}))
            if self._applied.get(name) == fingerprint:
                continue
            self._applied[name] = fingerprint
            problem = self.catalog.apply(name, source["spec"], lookup)
            if problem is not None:
                self.say(f"refused: IdentitySource {name}: {problem}")
                continue
            self._check_in_background(name)

    def _check_in_background(self, name: str) -> None:
        source = self.catalog.get(name)

        def check() -> None:
            try:
                if isinstance(source, LDAPSource):
                    source.check()
                elif isinstance(source, UpstreamSource):
                    asyncio.run(source.check())
            except LDAPUnavailable as error:
                self.say(f"IdentitySource {name}: cannot be reached now ({error}); offered anyway")
                return
            except UpstreamError as error:
                self.say(f"IdentitySource {name}: cannot be reached now ({error.reason}); offered anyway")
                return
            self.say(f"IdentitySource {name}: reachable; offered on the login page")

        threading.Thread(target=check, name=f"check-{name}", daemon=True).start()


def _secret_data(document: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    data = document.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            try:
                values[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
    string_data = document.get("stringData")
    if isinstance(string_data, dict):
        values.update({str(key): str(value) for key, value in string_data.items()})
    return values
