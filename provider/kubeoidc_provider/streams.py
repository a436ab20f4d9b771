"""What the registry's watcher follows: one :class:`Stream` per kind (and namespace), each saying how to
list that kind and where its objects go (the client registry, the ServiceAccount directory, the identity
sources' feed, the followed signing-keys Secret).

The list functions call the Kubernetes API objects they are given; only the watcher makes those objects
(and imports the client), and only the watcher runs the streams.
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
from kubeoidc_provider.registration import KubeObject
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.service_accounts import ServiceAccountDirectory

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Stream:
    """One list-then-watch loop: one kind, in one namespace or cluster-wide."""

    kind: str
    namespace: str | None
    #: Calls the API's list function with extra keyword arguments (watch, resource_version, ...).
    list_call: Callable[..., Any]
    upsert: Callable[[KubeObject], None]
    delete: Callable[[KubeObject], None]
    replace: Callable[[list[KubeObject]], None]
    accepts: Callable[[KubeObject], bool]
    thread: threading.Thread | None = None
    watch: Any = None  # the current kubernetes.watch.Watch, so that stop() can cut it short
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


def source_streams(feed: SourceFeed, core: Any, custom: Any) -> list[Stream]:
    namespace = feed.namespace

    def list_sources(**kwargs: Any) -> Any:
        group, version, plural = contract.GROUP, contract.VERSION, contract.IDENTITY_SOURCE_PLURAL
        return custom.list_namespaced_custom_object(group, version, namespace, plural, **kwargs)

    def list_secrets(**kwargs: Any) -> Any:
        return core.list_namespaced_secret(namespace, **kwargs)

    return [
        Stream(
            "IdentitySource",
            namespace,
            list_sources,
            feed.upsert_source,
            feed.delete_source,
            feed.replace_sources,
            feed.accepts,
        ),
        Stream(
            "identity Secret",
            namespace,
            list_secrets,
            feed.upsert_secret,
            feed.delete_secret,
            feed.replace_secrets,
            feed.accepts,
        ),
    ]


def _any_object(obj: KubeObject) -> bool:
    return True


def _replace_oidcclients(registry: ClientRegistry, namespace: str | None, objs: list[KubeObject]) -> None:
    registry.replace_all(objs, None, namespace)


def _custom_list_call(api: Any, namespace: str | None) -> Callable[..., Any]:
    # A plain function, without the generated docstring: Watch then yields the raw JSON objects.
    def call(**kwargs: Any) -> Any:
        if namespace is None:
            return api.list_cluster_custom_object(contract.GROUP, contract.VERSION, contract.PLURAL, **kwargs)
        return api.list_namespaced_custom_object(
            contract.GROUP, contract.VERSION, namespace, contract.PLURAL, **kwargs
        )

    return call


def service_account_stream(api: Any, namespace: str | None, directory: ServiceAccountDirectory) -> Stream:
    """ServiceAccounts' names and uids, for the clients they authenticate (``service_accounts``)."""

    def call(**kwargs: Any) -> Any:
        if namespace is None:
            return api.list_service_account_for_all_namespaces(**kwargs)
        return api.list_namespaced_service_account(namespace, **kwargs)

    return Stream(
        kind="ServiceAccount",
        namespace=namespace,
        list_call=call,
        upsert=directory.upsert,
        delete=directory.delete,
        replace=functools.partial(_replace_service_accounts, directory, namespace),
        accepts=_any_object,
    )


def _replace_service_accounts(
    directory: ServiceAccountDirectory, namespace: str | None, objs: list[KubeObject]
) -> None:
    directory.replace_all(objs, namespace)


def _named_secret_list_call(api: Any, namespace: str, name: str) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        return api.list_namespaced_secret(namespace, field_selector=f"metadata.name={name}", **kwargs)

    return call


def oidcclient_stream(custom: Any, namespace: str | None, registry: ClientRegistry) -> Stream:
    """OIDCClients, with the credential digests the operator publishes in their status."""
    return Stream(
        kind=contract.KIND,
        namespace=namespace,
        list_call=_custom_list_call(custom, namespace),
        upsert=registry.upsert_oidcclient,
        delete=registry.delete_oidcclient,
        replace=functools.partial(_replace_oidcclients, registry, namespace),
        accepts=_any_object,
    )


def followed_secret_stream(core: Any, follow: FollowedSecret) -> Stream:
    """The one Secret ``follow`` names (the signing keys)."""
    return Stream(
        kind="signing keys Secret",
        namespace=follow.namespace,
        list_call=_named_secret_list_call(core, follow.namespace, follow.name),
        upsert=follow.apply,
        delete=follow.deleted,
        replace=follow.replace,
        accepts=follow.matches,
    )
