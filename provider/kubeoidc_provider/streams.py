"""What the registry's watcher follows: one :class:`Stream` per kind (and namespace), each saying how to
list that kind and where its objects go (the client registry, the ServiceAccount directory, the identity
sources' feed, the followed signing-keys Secret).

A stream names the API path it lists and watches (and the selector it lists with); only the watcher
calls the API, and only the watcher runs the streams.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_provider.identity.feed import SourceFeed
from kubeoidc_provider.registration import KubeObject, Registration
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.service_accounts import ServiceAccountDirectory

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Stream:
    """One list-then-watch loop: one kind, in one namespace or cluster-wide."""

    kind: str
    namespace: str | None
    #: The collection's API path (e.g. ``/api/v1/namespaces/auth/secrets``), listed then watched.
    path: str
    upsert: Callable[[KubeObject], None]
    delete: Callable[[KubeObject], None]
    #: Gets the whole list, each object as ``keep`` returned it.
    replace: Callable[[list[Any]], None]
    accepts: Callable[[KubeObject], bool]
    #: Query parameters of both the list and the watch (a label or field selector).
    params: dict[str, str] = field(default_factory=dict)
    #: What a list keeps of each object, page by page, until ``replace`` takes them all; None: the object.
    #: Objects as listed carry their managed fields and last-applied copies: 10,000 of them held at once
    #: leave the process some 70 MiB larger for good, the small records kept instead about 9.
    keep: Callable[[KubeObject], Any] | None = None
    thread: threading.Thread | None = None
    watch: Any = None  # the current kube_api.Watch, so that stop() can cut it short
    listed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return f"{self.kind} in {self.namespace}" if self.namespace else f"{self.kind} (all namespaces)"


@dataclass(frozen=True)
class FollowedSecret:
    """A Secret watched by name; ``apply`` gets each version of it (the signing keys)."""

    namespace: str
    name: str
    apply: Callable[[KubeObject], None]

    def matches(self, obj: KubeObject) -> bool:
        meta = obj.get("metadata") or {}
        return bool(meta.get("namespace") == self.namespace and meta.get("name") == self.name)

    def replace(self, objs: list[KubeObject]) -> None:
        for obj in objs:
            self.apply(obj)

    def deleted(self, obj: KubeObject) -> None:
        logger.warning(
            "Secret %s/%s was deleted: the signing keys in use are kept", self.namespace, self.name
        )


def source_streams(feed: SourceFeed) -> list[Stream]:
    namespace = feed.namespace
    sources = _custom_path(namespace, contract.IDENTITY_SOURCE_PLURAL)
    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    return [
        Stream(
            "IdentitySource",
            namespace,
            sources,
            feed.upsert_source,
            feed.delete_source,
            feed.replace_sources,
            feed.accepts,
        ),
        Stream(
            "identity Secret",
            namespace,
            secrets,
            feed.upsert_secret,
            feed.delete_secret,
            feed.replace_secrets,
            feed.accepts,
        ),
    ]


def _any_object(obj: KubeObject) -> bool:
    return True


def _replace_oidcclients(
    registry: ClientRegistry, namespace: str | None, registrations: list[Registration | None]
) -> None:
    registry.replace_registrations(registrations, namespace)


def _custom_path(namespace: str | None, plural: str) -> str:
    if namespace is None:
        return f"/apis/{contract.GROUP}/{contract.VERSION}/{plural}"
    return f"/apis/{contract.GROUP}/{contract.VERSION}/namespaces/{namespace}/{plural}"


def service_account_stream(namespace: str | None, directory: ServiceAccountDirectory) -> Stream:
    """ServiceAccounts' names and uids, for the clients they authenticate (``service_accounts``)."""
    return Stream(
        kind="ServiceAccount",
        namespace=namespace,
        path=f"/api/v1/namespaces/{namespace}/serviceaccounts" if namespace else "/api/v1/serviceaccounts",
        upsert=directory.upsert,
        delete=directory.delete,
        replace=functools.partial(_replace_service_accounts, directory, namespace),
        accepts=_any_object,
    )


def _replace_service_accounts(
    directory: ServiceAccountDirectory, namespace: str | None, objs: list[KubeObject]
) -> None:
    directory.replace_all(objs, namespace)


def oidcclient_stream(namespace: str | None, registry: ClientRegistry) -> Stream:
    """OIDCClients, with the credential digests the operator publishes in their status."""
    return Stream(
        kind=contract.KIND,
        namespace=namespace,
        path=_custom_path(namespace, contract.PLURAL),
        upsert=registry.upsert_oidcclient,
        delete=registry.delete_oidcclient,
        replace=functools.partial(_replace_oidcclients, registry, namespace),
        accepts=_any_object,
        keep=registry.parse_oidcclient,
    )


def followed_secret_stream(follow: FollowedSecret) -> Stream:
    """The one Secret ``follow`` names (the signing keys)."""
    return Stream(
        kind="signing keys Secret",
        namespace=follow.namespace,
        path=f"/api/v1/namespaces/{follow.namespace}/secrets",
        upsert=follow.apply,
        delete=follow.deleted,
        replace=follow.replace,
        accepts=follow.matches,
        params={"fieldSelector": f"metadata.name={follow.name}"},
    )
