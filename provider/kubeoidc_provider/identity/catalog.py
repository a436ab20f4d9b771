"""The identity sources in force, by name: replaced whole when their resource or Secrets change.

The watcher (in a cluster) or the dev mode (from a folder) calls :meth:`SourceCatalog.apply` with each
IdentitySource's name, spec and a way to read its Secrets; a source that cannot be used is kept out and
its reason is kept for the log and the operator's status, so one broken source never stops the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_provider.identity.ldap import LDAPSource
from kubeoidc_provider.identity.spec import LDAPDefinition, SecretLookup, SourceSpecError, parse_source
from kubeoidc_provider.identity.upstream import UpstreamSource

__all__ = ["SourceCatalog"]

logger = logging.getLogger(__name__)

Source = LDAPSource | UpstreamSource


class SourceCatalog:
    """Upstream and LDAP sources by name, in name order; safe to change from the watcher's thread."""

    def __init__(self, callback_url: str) -> None:
        #: Where every upstream sends the browser back (register it upstream).
        self.callback_url = callback_url
        self._sources: dict[str, Source] = {}
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()

    def apply(self, name: str, spec: Mapping[str, Any], secrets: SecretLookup) -> str | None:
        """Use the IdentitySource ``name`` as ``spec`` says; the problem that keeps it out, if any."""
        try:
            definition = parse_source(name, spec, secrets)
            source: Source = (
                LDAPSource(definition)
                if isinstance(definition, LDAPDefinition)
                else UpstreamSource(definition, self.callback_url)
            )
        except SourceSpecError as error:
            problem = str(error)
            logger.warning("identity source %s is not used: %s", name, problem)
            with self._lock:
                self._sources.pop(name, None)
                self._problems[name] = problem
            return problem
        with self._lock:
            self._sources[name] = source
            self._problems.pop(name, None)
        logger.info("identity source %s (%s) is in use", name, type(source).__name__)
        return None

    def remove(self, name: str) -> None:
        with self._lock:
            self._sources.pop(name, None)
            self._problems.pop(name, None)

    def names(self) -> set[str]:
        with self._lock:
            return set(self._sources)

    def get(self, name: str) -> Source | None:
        with self._lock:
            return self._sources.get(name)

    def problems(self) -> dict[str, str]:
        with self._lock:
            return dict(self._problems)

    def upstreams(self, allowed: Iterable[str] | None = None) -> list[UpstreamSource]:
        """The upstream OpenID Providers, in the client's order when it names some, else by name."""
        return [s for s in self._ordered(allowed) if isinstance(s, UpstreamSource)]

    def directories(self, allowed: Iterable[str] | None = None) -> list[LDAPSource]:
        """The LDAP sources the password form checks, in the client's order, else by name."""
        return [s for s in self._ordered(allowed) if isinstance(s, LDAPSource)]

    def _ordered(self, allowed: Iterable[str] | None) -> list[Source]:
        with self._lock:
            names = [n for n in allowed if n != contract.LOCAL_SOURCE] if allowed else sorted(self._sources)
            return [self._sources[n] for n in names if n in self._sources]
