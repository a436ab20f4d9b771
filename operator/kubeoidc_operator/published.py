"""What the operator publishes in an OIDCClient's status for the provider: the credentials' digests.

The provider (the internet-facing pod) reads no Secret: it learns each client's credentials from
``status.credentials``, which only the operator may write (the status subresource). This holds the
client ID and the SHA-256 of the client secret — never the secret — and, during a rotation grace
period, the previous secret's SHA-256 and expiry, copied from the Secret's annotations.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubeoidc_contract import (
    CREDENTIALS_CLIENT_ID,
    CREDENTIALS_PREVIOUS_EXPIRES,
    CREDENTIALS_PREVIOUS_HASH,
    CREDENTIALS_SECRET_HASH,
    PREVIOUS_SECRET_EXPIRES_ANNOTATION,
    PREVIOUS_SECRET_HASH_ANNOTATION,
)

from .rotation import secret_hash


def published_credentials(
    client_id: str, client_secret: str | None, annotations: Mapping[str, str]
) -> dict[str, str]:
    """``status.credentials`` for a client whose Secret holds these credentials and annotations."""
    published = {CREDENTIALS_CLIENT_ID: client_id}
    if client_secret is None:
        return published
    published[CREDENTIALS_SECRET_HASH] = secret_hash(client_secret)
    previous_hash = annotations.get(PREVIOUS_SECRET_HASH_ANNOTATION)
    previous_expires = annotations.get(PREVIOUS_SECRET_EXPIRES_ANNOTATION)
    if previous_hash and previous_expires:
        published[CREDENTIALS_PREVIOUS_HASH] = previous_hash
        published[CREDENTIALS_PREVIOUS_EXPIRES] = previous_expires
    return published
