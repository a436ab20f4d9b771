"""Fixtures of the dev-mode tests: a folder of manifests and ``kubeoidc dev`` started on it."""

from support.devmode import manifests, start_dev

__all__ = ["manifests", "start_dev"]
