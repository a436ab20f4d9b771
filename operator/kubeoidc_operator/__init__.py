"""The kubeoidc operator: reconciles each OIDCClient into a Secret holding the client's credentials.

Layout: ``settings`` (configuration from the environment or flags); the pure decisions, what Secret
and status an OIDCClient should have: ``reconcile.plan()`` on top of ``ownership``, ``validation``,
``rotation``, ``desired`` (the Secret and its patch), ``status`` and ``conditions``, reading objects
through ``objects``; ``keyring`` (the signing keys' schedule); ``errors`` (what the API layer raises,
without a client); ``kube`` (the thin Kubernetes API layer); ``controller`` and ``keykeeper`` (read,
decide, write); ``peering``; ``handlers`` (the kopf decorators) and ``run`` (starts kopf). Importing
this package imports neither kopf nor the Kubernetes client.
"""

from __future__ import annotations
