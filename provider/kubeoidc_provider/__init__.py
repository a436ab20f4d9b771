"""The kubeoidc OpenID Provider: serves OpenID Connect to the clients declared as OIDCClient objects.

Its parts each sit behind a small interface: the storage of state (``storage``), the user directory
(``users``), the signing keys (``keys``) and the client registry (``registry``, fed by ``watcher``).
"""
