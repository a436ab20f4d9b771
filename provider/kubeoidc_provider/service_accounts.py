"""Kubernetes ServiceAccounts as client identities: who they are now, and what their tokens must say.

A projected ServiceAccount token names its ServiceAccount twice: ``sub`` is
``system:serviceaccount:<namespace>:<name>``, and the private claim ``kubernetes.io`` holds the
namespace, the ServiceAccount's name and uid and, for a pod's token, the pod's name and uid. A
ServiceAccount deleted and created again under the same name is another identity with another uid: its
predecessor's tokens stay valid signatures, so the provider compares the uid with the current one,
which :class:`ServiceAccountDirectory` keeps (fed by the watcher, from a list-then-watch of
ServiceAccounts; no token is read, only names and uids).

The pod a token is bound to is not looked up: the provider watches no pods. A token of a deleted pod
stays valid until it expires, so short lifetimes (``expirationSeconds``) bound that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kubeoidc_provider.assertions import AssertionRefused
from kubeoidc_provider.registration import Client, KubeObject, metadata, namespace_name

#: ``sub`` of a ServiceAccount token: this prefix, then ``<namespace>:<name>``.
SUBJECT_PREFIX: Final = "system:serviceaccount:"
#: The private claim where Kubernetes states the token's ServiceAccount (and pod).
KUBERNETES_CLAIM: Final = "kubernetes.io"


class ServiceAccountDirectory:
    """(namespace, name) → the uid of the ServiceAccount that has that name now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uids: dict[tuple[str, str], str] = {}

    def uid(self, namespace: str, name: str) -> str | None:
        return self._uids.get((namespace, name))

    def upsert(self, obj: KubeObject) -> None:
        uid = metadata(obj).get("uid")
        if isinstance(uid, str) and uid:
            with self._lock:
                self._uids[namespace_name(obj)] = uid

    def delete(self, obj: KubeObject) -> None:
        key = namespace_name(obj)
        uid = metadata(obj).get("uid")
        with self._lock:
            if self._uids.get(key) == uid or not uid:
                self._uids.pop(key, None)

    def replace_all(self, objs: Iterable[KubeObject], namespace: str | None = None) -> None:
        """After a (re-)list of one namespace (or, with None, of all): what the list holds, and only that."""
        fresh = {namespace_name(o): metadata(o).get("uid") for o in objs}
        with self._lock:
            uids = {k: v for k, v in self._uids.items() if namespace is not None and k[0] != namespace}
            uids.update({k: v for k, v in fresh.items() if isinstance(v, str) and v})
            self._uids = uids


def check_service_account_token(
    claims: Mapping[str, Any], client: Client, directory: ServiceAccountDirectory
) -> str:
    """The ``namespace/name`` of the client's ServiceAccount the verified token ``claims`` belong to.

    AssertionRefused unless ``sub`` names one of ``client.service_accounts`` in the client's own
    namespace, the ``kubernetes.io`` claim agrees with it, and its uid is that ServiceAccount's now.
    """
    subject = str(claims.get("sub", ""))
    namespace, _, name = subject.removeprefix(SUBJECT_PREFIX).partition(":")
    if not subject.startswith(SUBJECT_PREFIX) or not namespace or not name:
        raise AssertionRefused("The client assertion is not a Kubernetes ServiceAccount token.")
    if namespace != client.namespace or name not in client.service_accounts:
        raise AssertionRefused("The client assertion's ServiceAccount is not one of this client's.")
    private = claims.get(KUBERNETES_CLAIM)
    account = private.get("serviceaccount") if isinstance(private, Mapping) else None
    if (
        not isinstance(private, Mapping)
        or private.get("namespace") != namespace
        or not isinstance(account, Mapping)
        or account.get("name") != name
    ):
        raise AssertionRefused("The client assertion's kubernetes.io claim does not match its subject.")
    pod = private.get("pod")
    if pod is not None and not (
        isinstance(pod, Mapping) and isinstance(pod.get("name"), str) and isinstance(pod.get("uid"), str)
    ):
        raise AssertionRefused("The client assertion's pod claim is malformed.")
    current = directory.uid(namespace, name)
    if current is None:
        raise AssertionRefused("The client assertion's ServiceAccount does not exist (any more).")
    if account.get("uid") != current:
        raise AssertionRefused(
            "The client assertion belongs to an earlier ServiceAccount of that name (it was re-created)."
        )
    return f"{namespace}/{name}"
