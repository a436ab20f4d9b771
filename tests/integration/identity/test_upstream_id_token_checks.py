"""The upstream's ID token is checked before anyone is signed in: audience, signature, nonce, expiry.

A real OpenID Provider never hands out a token for another audience to our client, so these cases need
an upstream that misbehaves: a small one served here on loopback (discovery, JWKS, token endpoint),
whose token endpoint answers with whatever ID token the test gives it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubeoidc_provider.identity.spec import OIDCDefinition
from kubeoidc_provider.identity.upstream import PendingLogin, UpstreamError, UpstreamSource
from support.live import free_port

CLIENT_ID = "kubeoidc-login"


class MisbehavingUpstream:
    """Discovery, JWKS and a token endpoint that returns ``self.id_token``."""

    def __init__(self, port: int) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = ECKey.generate_key("P-256", parameters={"kid": "good"})
        self.stranger = ECKey.generate_key("P-256", parameters={"kid": "good"})
        self.id_token = ""
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    async def _discovery(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
            }
        )

    async def _jwks(self, request: Request) -> JSONResponse:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def _token(self, request: Request) -> JSONResponse:
        return JSONResponse({"access_token": "at", "token_type": "Bearer", "id_token": self.id_token})

    def sign(self, claims: dict[str, Any], *, key: ECKey | None = None) -> str:
        return jwt.encode({"alg": "ES256", "kid": "good"}, claims, key or self.key)


@pytest.fixture(scope="module")
def upstream() -> Iterator[MisbehavingUpstream]:
    port = free_port()
    fake = MisbehavingUpstream(port)
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake upstream did not start in time"
        assert thread.is_alive(), "the fake upstream stopped"
        time.sleep(0.01)
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


def source_for(upstream: MisbehavingUpstream) -> UpstreamSource:
    definition = OIDCDefinition(
        name="corp",
        display_name="Corp",
        issuer=upstream.issuer,
        client_id=CLIENT_ID,
        client_secret="upstream-secret",
        scopes=("openid",),
        username_claim="preferred_username",
        email_claim="email",
        name_claim="name",
        groups_claim="groups",
        use_userinfo=False,
        allowed_domains=(),
        required_groups=(),
    )
    return UpstreamSource(definition, "http://127.0.0.1:1/callback")


def claims(upstream: MisbehavingUpstream, pending: PendingLogin, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": upstream.issuer, "sub": "u-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300}
    return {**base, "nonce": pending.nonce, **overrides}


def finish(upstream: MisbehavingUpstream, build: Any) -> str:
    """Run the callback with the ID token ``build(pending)`` returns; the refusal's reason, or "SignedIn"."""

    async def run() -> str:
        source = source_for(upstream)
        _, pending = await source.begin("interaction-1", None)
        upstream.id_token = build(pending)
        try:
            await source.finish({"code": "c", "state": pending.state}, pending)
        except UpstreamError as error:
            return error.reason
        return "SignedIn"

    return asyncio.run(run())


def test_a_well_formed_id_token_signs_the_person_in(upstream: MisbehavingUpstream) -> None:
    assert finish(upstream, lambda p: upstream.sign(claims(upstream, p))) == "SignedIn"


def test_an_id_token_for_another_audience_is_refused(upstream: MisbehavingUpstream) -> None:
    assert (
        finish(upstream, lambda p: upstream.sign(claims(upstream, p, aud="another-app"))) == "WrongAudience"
    )


def test_an_id_token_for_several_audiences_without_us_as_azp_is_refused(
    upstream: MisbehavingUpstream,
) -> None:
    build = lambda p: upstream.sign(claims(upstream, p, aud=[CLIENT_ID, "another-app"], azp="another-app"))  # noqa: E731
    assert finish(upstream, build) == "WrongAudience"


def test_an_id_token_signed_with_a_key_not_in_the_upstream_jwks_is_refused(
    upstream: MisbehavingUpstream,
) -> None:
    build = lambda p: upstream.sign(claims(upstream, p), key=upstream.stranger)  # noqa: E731
    assert finish(upstream, build) == "BadSignature"


def test_an_id_token_with_another_nonce_is_refused(upstream: MisbehavingUpstream) -> None:
    build = lambda p: upstream.sign(claims(upstream, p, nonce="from another sign-in"))  # noqa: E731
    assert finish(upstream, build) == "InvalidClaim"


def test_an_expired_id_token_is_refused(upstream: MisbehavingUpstream) -> None:
    build = lambda p: upstream.sign(claims(upstream, p, exp=int(time.time()) - 3600))  # noqa: E731
    assert finish(upstream, build) == "ExpiredToken"


def test_an_id_token_from_another_issuer_is_refused(upstream: MisbehavingUpstream) -> None:
    build = lambda p: upstream.sign(claims(upstream, p, iss="https://evil.example"))  # noqa: E731
    assert finish(upstream, build) == "InvalidClaim"


def test_a_callback_with_another_state_is_refused_before_any_request(upstream: MisbehavingUpstream) -> None:
    async def run() -> str:
        source = source_for(upstream)
        _, pending = await source.begin("interaction-1", None)
        try:
            await source.finish({"code": "c", "state": "forged"}, pending)
        except UpstreamError as error:
            return error.reason
        return "SignedIn"

    assert asyncio.run(run()) == "StateMismatch"


def test_a_key_the_upstream_rotated_in_is_fetched_and_trusted(upstream: MisbehavingUpstream) -> None:
    async def sign_in_twice() -> None:
        source = source_for(upstream)
        for key_id in ("good", "rotated-in"):
            _, pending = await source.begin("interaction-1", None)
            if key_id != "good":
                # The upstream publishes a new key and signs with it; our cached JWKS does not know it yet.
                upstream.key = ECKey.generate_key("P-256", parameters={"kid": key_id})
            upstream.id_token = jwt.encode(
                {"alg": "ES256", "kid": key_id}, claims(upstream, pending), upstream.key
            )
            user = await source.finish({"code": "c", "state": pending.state}, pending)
            assert user.id.startswith("corp|")

    original = upstream.key
    try:
        asyncio.run(sign_in_twice())
    finally:
        upstream.key = original
