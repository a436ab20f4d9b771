"""Fixtures of the dev-mode tests: a folder of manifests, ``kubeoidc dev`` started on it, and the npm
relying party."""

from support.devmode import manifests, start_dev
from support.node_rp import chromium, node, relying_party

__all__ = ["chromium", "manifests", "node", "relying_party", "start_dev"]
