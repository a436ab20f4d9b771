"""What the operator publishes for the provider in an OIDCClient's status: digests, never secrets.

The provider reads no tenant's Secret (it faces the internet); it serves a client from the digests in
``status.credentials``, so these must follow every change of the Secret and vanish when the client is
not Ready.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from typing import Any

from kubeoidc_contract import (
    CLIENT_SECRET_KEY,
    CREDENTIALS_CLIENT_ID,
    CREDENTIALS_PREVIOUS_EXPIRES,
    CREDENTIALS_PREVIOUS_HASH,
    CREDENTIALS_SECRET_HASH,
    ROTATE_ANNOTATION,
    STATUS_CREDENTIALS,
)

Factory = Callable[..., Any]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_ready_client_publishes_its_client_id_and_secret_digest_but_never_the_secret(
    cluster: Factory,
) -> None:
    c = cluster()
    c.reconcile()

    secret = c.data()[CLIENT_SECRET_KEY]
    assert c.client["status"][STATUS_CREDENTIALS] == {
        CREDENTIALS_CLIENT_ID: "client-0001",
        CREDENTIALS_SECRET_HASH: sha256(secret),
    }
    assert secret not in repr(c.client["status"])


def test_public_client_publishes_its_client_id_without_a_digest(cluster: Factory) -> None:
    c = cluster(spec={"public": True, "tokenEndpointAuthMethod": "none"})
    c.reconcile()

    assert c.client["status"][STATUS_CREDENTIALS] == {CREDENTIALS_CLIENT_ID: "client-0001"}


def test_rotation_publishes_the_new_digest_and_the_previous_one_until_the_grace_period_ends(
    cluster: Factory,
) -> None:
    c = cluster(spec={"secretRotation": {"gracePeriod": "1h"}})
    c.reconcile()
    old_secret = c.data()[CLIENT_SECRET_KEY]

    c.annotate(**{ROTATE_ANNOTATION: "r1"})
    c.reconcile()

    assert c.client["status"][STATUS_CREDENTIALS] == {
        CREDENTIALS_CLIENT_ID: "client-0001",
        CREDENTIALS_SECRET_HASH: sha256(c.data()[CLIENT_SECRET_KEY]),
        CREDENTIALS_PREVIOUS_HASH: sha256(old_secret),
        CREDENTIALS_PREVIOUS_EXPIRES: "2025-01-01T13:00:00Z",
    }
    c.now += datetime.timedelta(hours=1)
    c.reconcile()
    assert c.client["status"][STATUS_CREDENTIALS] == {
        CREDENTIALS_CLIENT_ID: "client-0001",
        CREDENTIALS_SECRET_HASH: sha256(c.data()[CLIENT_SECRET_KEY]),
    }


def test_a_client_that_stops_being_ready_withdraws_its_credentials(
    cluster: Factory, unowned_secret: Factory
) -> None:
    c = cluster()
    c.reconcile()
    assert STATUS_CREDENTIALS in c.client["status"]

    del c.secrets["web-oidc"]
    c.secrets["web-oidc"] = unowned_secret("web-oidc")
    c.reconcile()

    assert c.condition("Ready")["reason"] == "SecretConflict"
    assert STATUS_CREDENTIALS not in c.client["status"]


def test_a_client_id_read_back_from_a_secret_is_checked_against_other_clients(cluster: Factory) -> None:
    # A Secret pre-created (or restored) with another tenant's client ID.
    c = cluster()
    c.reconcile()
    taken = c.client["status"]["clientID"]
    del c.client["status"]
    c.claimed = {taken: "other/victim"}

    plan = c.reconcile()

    assert plan.secret is None
    ready = c.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ClientIDConflict")
    assert "other/victim" in ready["message"]
    assert "clientID" not in c.client["status"]
    assert STATUS_CREDENTIALS not in c.client["status"]
