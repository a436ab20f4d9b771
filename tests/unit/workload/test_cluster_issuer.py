"""What the provider keeps of the cluster's ServiceAccount issuer: its keys in memory, never lost to a
failed fetch, and never a key it should not trust."""

from __future__ import annotations

import logging

import pytest

from kubeoidc_provider.cluster_issuer import ClusterIssuer, Discovered
from support.service_account_tokens import ServiceAccountSigner


def test_a_failed_fetch_keeps_the_keys_already_known(caplog: pytest.LogCaptureFixture) -> None:
    signer = ServiceAccountSigner()
    answers: list[Discovered | Exception] = [signer.discovered(), ConnectionError("API server is down")]

    def fetch() -> Discovered:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    issuer = ClusterIssuer(fetch)
    assert issuer.fetch_now()
    with caplog.at_level(logging.WARNING):
        assert not issuer.fetch_now()

    assert issuer.key(signer.kid) is not None
    assert issuer.issuer == signer.issuer
    assert f"keeping {signer.kid}" in caplog.text


def test_a_configured_issuer_wins_over_the_discovered_one() -> None:
    signer = ServiceAccountSigner(issuer="https://kubernetes.default.svc.cluster.local")
    issuer = ClusterIssuer(signer.discovered, issuer="https://oidc.eks.example.com/id/ABC")

    issuer.fetch_now()

    assert issuer.issuer == "https://oidc.eks.example.com/id/ABC"
    assert issuer.key(signer.kid) is not None


def test_private_keys_and_encryption_keys_are_never_trusted() -> None:
    signer = ServiceAccountSigner()
    private = {**signer.key.as_dict(private=True), "kid": "leaked", "alg": "RS256"}
    encryption = {**signer.jwks()["keys"][0], "kid": "enc", "use": "enc"}
    issuer = ClusterIssuer(lambda: Discovered(signer.issuer, {"keys": [private, encryption, {"kty": "??"}]}))

    issuer.fetch_now()

    assert issuer.kids == []


async def test_without_a_cluster_there_is_nothing_to_refresh() -> None:
    issuer = ClusterIssuer(None)
    issuer.start()

    assert issuer.issuer is None
    assert issuer.key(None) is None
    assert await issuer.refresh() is False


def test_a_key_set_of_one_key_answers_a_token_without_kid() -> None:
    signer = ServiceAccountSigner(alg="ES256")
    issuer = ClusterIssuer(signer.discovered)

    issuer.fetch_now()

    assert issuer.key(None) is not None
    assert issuer.key("another") is None
