"""The kubeoidc operator: reconciles each OIDCClient into a Secret holding the client's credentials.

Layout: ``settings`` (configuration from the environment), ``reconcile`` and ``conditions`` (pure
decisions: what Secret and status an OIDCClient should have), ``kube`` (the thin Kubernetes API
layer), ``controller`` (reads, decides, writes), ``handlers`` (the kopf decorators) and ``run``
(starts kopf). Importing this package imports neither kopf nor the Kubernetes client.
"""

from __future__ import annotations
