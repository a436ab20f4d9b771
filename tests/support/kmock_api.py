"""The kmock API server made ready for kubeoidc: Kubernetes' built-in resources plus OIDCClients.

Without the built-ins kopf waits forever after discovery; OIDCClients get their status subresource, as
the CRD declares.
"""

from __future__ import annotations

import warnings
from typing import Any

import kmock

from kubeoidc_contract import GROUP, KIND, PLURAL, SHORT_NAME, SINGULAR, VERSION

CLIENTS = kmock.resource(GROUP, VERSION, PLURAL)


def declare_resources(server: Any) -> None:
    load_builtins(server)
    declare_oidcclients(server)


def load_builtins(server: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # kmock's own use of importlib.resources.
        server.resources.load_bundled()


def declare_oidcclients(server: Any) -> None:
    server.resources[CLIENTS] = kmock.ResourceInfo(
        kind=KIND,
        singular=SINGULAR,
        shortnames={SHORT_NAME},
        namespaced=True,
        subresources={"status"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )
