"""The lanes (client_credentials, code exchange, introspection, userinfo): a plain request is answered
ahead of routing and Authlib, with the response Authlib's path gives; every other request reaches the app
with its body intact (and a code the lane spent, with what the spend found), and a body refused for its
size or pace gets 413 or 408 from the lane's position too (never a 500)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from kubeoidc_provider.body_limits import BodyLimits
from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.code_exchange_lane import SPENT_CODE
from kubeoidc_provider.endpoints.introspection_lane import IntrospectionLane
from kubeoidc_provider.endpoints.token_lane import TokenLane
from kubeoidc_provider.endpoints.userinfo_lane import UserinfoLane
from kubeoidc_provider.grants import EarlySpend
from support.provider import RegisteredClient, register, register_machine_client
from support.provider_flow import AuthRequest, Browser, RelyingParty, sign_in_for_code, sign_in_for_tokens

PLAIN = b"grant_type=client_credentials&scope=invoices%3Aread"


def machine_client(provider: Provider, **spec: Any) -> RegisteredClient:
    return register_machine_client(provider.registry, **spec)


def basic(client: RegisteredClient, secret: str | None = None) -> bytes:
    return b"Basic " + base64.b64encode(f"{client.client_id}:{secret or client.secret}".encode())


class App:
    """The app behind the lane: records what reached it, and the body it read."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.calls.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


async def call(
    app: Any,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    *,
    path: str = "/token",
    method: str = "POST",
    stall: bool = False,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through ``app``: the body in ``chunks`` (the last one then never comes, with
    ``stall``); the status, headers and body of the answer."""
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 4711),
        "http_version": "1.1",
    }
    pending = list(chunks)
    sent: list[Message] = []

    async def receive() -> Message:
        if not pending:
            await asyncio.sleep(3600 if stall else 0)
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending) or stall}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def form_headers(authorization: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"authorization", authorization),
        *extra,
    ]


@pytest.mark.parametrize(
    "spec", [{}, {"accessTokenSignedResponseAlg": "ES256"}, {"accessTokenFormat": "opaque"}]
)
def test_a_plain_request_is_answered_by_the_lane_and_never_reaches_the_app(
    provider: Provider, spec: dict[str, str]
) -> None:
    client = machine_client(provider, **spec)
    app = App()
    lane = TokenLane(app, provider)

    status, headers, body = asyncio.run(call(lane, form_headers(basic(client)), [PLAIN]))

    assert status == 200, body
    assert app.calls == []
    assert headers[b"cache-control"] == b"no-store"
    assert int(headers[b"content-length"]) == len(body)
    assert b'"scope":"invoices:read"' in body


@pytest.mark.parametrize(
    ("headers", "chunks"),
    [
        pytest.param(None, [PLAIN + b"&client_id=x"], id="another-parameter"),
        pytest.param(None, [PLAIN + b"&scope=a"], id="a-repeated-parameter"),
        pytest.param(None, [b"grant_type=client_credentials&scope="], id="no-scope"),
        pytest.param(None, [b"grant_type=refresh_token&scope=a"], id="another-grant"),
        pytest.param(None, [PLAIN[:20], PLAIN[20:]], id="a-body-in-two-parts"),
        pytest.param(None, [b"grant_type=client_credentials&scope=\xff"], id="not-utf-8"),
        pytest.param("wrong-secret", [PLAIN], id="a-wrong-secret"),
        pytest.param("bearer", [PLAIN], id="not-basic"),
        pytest.param("json", [PLAIN], id="not-a-form"),
    ],
)
def test_any_other_request_reaches_the_app_with_its_whole_body(
    provider: Provider, headers: str | None, chunks: list[bytes]
) -> None:
    client = machine_client(provider)
    sent = {
        None: form_headers(basic(client)),
        "wrong-secret": form_headers(basic(client, "wrong")),
        "bearer": form_headers(b"Bearer abc"),
        "json": [(b"content-type", b"application/json"), (b"authorization", basic(client))],
    }[headers]
    app = App()

    status, _, body = asyncio.run(call(TokenLane(app, provider), sent, chunks))

    assert (status, body) == (299, b"app")
    assert app.calls == [b"".join(chunks)]


def test_other_paths_and_methods_pass_untouched(provider: Provider) -> None:
    client = machine_client(provider)
    app = App()

    status, _, _ = asyncio.run(
        call(TokenLane(app, provider), form_headers(basic(client)), [PLAIN], path="/introspect")
    )

    assert status == 299
    assert app.calls == [PLAIN]


def test_a_stalled_body_is_408_and_an_oversized_one_413_never_500(provider: Provider) -> None:
    client = machine_client(provider)
    app = App()
    limited = BodyLimits(TokenLane(app, provider), max_body=64, read_timeout=0.05)

    stalled = asyncio.run(call(limited, form_headers(basic(client)), [b"grant_type=client_cre"], stall=True))
    oversized = asyncio.run(call(limited, form_headers(basic(client)), [b"scope=" + b"a" * 100]))

    assert (stalled[0], stalled[1][b"connection"]) == (408, b"close")
    assert (oversized[0], oversized[1][b"connection"]) == (413, b"close")
    assert app.calls == []


def test_the_lanes_response_has_the_headers_of_authlibs_path(provider: Provider, http: TestClient) -> None:
    client = machine_client(provider)
    assert client.secret is not None
    credentials = (client.client_id, client.secret)
    plain = {"grant_type": "client_credentials", "scope": "invoices:read"}

    for origin in ({}, {"Origin": "https://spa.example.com"}):
        lane = http.post("/token", data=plain, auth=credentials, headers=origin)
        # A body client_id equal to the Basic one is tolerated, and sends the request through Authlib.
        through_authlib = http.post(
            "/token", data={**plain, "client_id": client.client_id}, auth=credentials, headers=origin
        )

        assert lane.status_code == through_authlib.status_code == 200
        assert {k: v for k, v in lane.headers.items() if k != "content-length"} == {
            k: v for k, v in through_authlib.headers.items() if k != "content-length"
        }
        assert ("access-control-allow-origin" in lane.headers) == bool(origin)


def issued(provider: Provider, grant_type: str) -> float:
    """The tokens counted in the metrics as issued for ``grant_type``."""
    sample = f'kubeoidc_token_requests_total{{grant_type="{grant_type}",outcome="ok"}} '
    lines = provider.metrics.exposition().decode().splitlines()
    return sum(float(line.removeprefix(sample)) for line in lines if line.startswith(sample))


def test_tokens_issued_by_the_lane_are_counted(provider: Provider, http: TestClient) -> None:
    client = machine_client(provider, accessTokenSignedResponseAlg="ES256")
    rp = RelyingParty(http, client)

    before = issued(provider, "client_credentials")
    for _ in range(3):
        assert rp.token({"grant_type": "client_credentials", "scope": "invoices:read"}).status_code == 200

    assert issued(provider, "client_credentials") == before + 3


# --- code exchange ----------------------------------------------------------------------------------


def exchange_body(request: AuthRequest, code: str, **overrides: str | None) -> bytes:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
        **overrides,
    }
    return urlencode({name: value for name, value in form.items() if value is not None}).encode()


def unsigned_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def unsigned_claims(token: str) -> dict[str, Any]:
    return unsigned_part(token, 1)


def unsigned_header(token: str) -> dict[str, Any]:
    return unsigned_part(token, 0)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="RS256-JWT"),
        pytest.param(
            {
                "grantTypes": ["authorization_code"],
                "idTokenSignedResponseAlg": "ES256",
                "accessTokenFormat": "opaque",
            },
            id="ES256-opaque-no-refresh",
        ),
        pytest.param(
            {"grantTypes": ["authorization_code", "refresh_token"], "accessTokenSignedResponseAlg": "EdDSA"},
            id="EdDSA-refresh",
        ),
    ],
)
@pytest.mark.parametrize("origin", [{}, {"Origin": "https://spa.example.com"}])
def test_a_code_exchange_is_answered_by_the_lane_as_authlibs_grant_answers(
    provider: Provider, http: TestClient, browser: Browser, spec: dict[str, Any], origin: dict[str, str]
) -> None:
    client = register(provider.registry, "web-app", spec_fields=spec)
    rp = RelyingParty(http, client)
    by_lane, by_grant = sign_in_for_code(browser, rp), sign_in_for_code(browser, rp)
    headers = form_headers(basic(client), *[(k.lower().encode(), v.encode()) for k, v in origin.items()])
    app = App()
    counted = issued(provider, "authorization_code")

    status, lane_headers, body = asyncio.run(
        call(TokenLane(app, provider), headers, [exchange_body(*by_lane)])
    )
    # A parameter the grant ignores (RFC 6749 section 3.2) and the lane does not take: Authlib's path.
    through_authlib = http.post(
        "/token",
        content=exchange_body(*by_grant, ignored="1"),
        headers={"content-type": "application/x-www-form-urlencoded", **origin},
        auth=(client.client_id, client.secret or ""),
    )

    assert (status, app.calls) == (200, [])
    assert through_authlib.status_code == 200, through_authlib.text
    lane_tokens, grant_tokens = json.loads(body), through_authlib.json()
    assert list(lane_tokens) == list(grant_tokens)
    assert ("refresh_token" in lane_tokens) == ("refresh_token" in client.objects[0]["spec"]["grantTypes"])
    assert {k: v for k, v in lane_tokens.items() if not k.endswith("token")} == {
        k: v for k, v in grant_tokens.items() if not k.endswith("token")
    }
    moving = {"iat", "exp", "at_hash", "auth_time", "jti", "sid"}
    lane_id, grant_id = unsigned_claims(lane_tokens["id_token"]), unsigned_claims(grant_tokens["id_token"])
    assert {k: v for k, v in lane_id.items() if k not in moving} == {
        k: v for k, v in grant_id.items() if k not in moving
    }
    assert set(lane_id) == set(grant_id)
    assert {k.decode(): v.decode() for k, v in lane_headers.items() if k != b"content-length"} == {
        k: v for k, v in through_authlib.headers.items() if k != "content-length"
    }
    # What the lane issued lives: the access token at userinfo and introspection, the refresh token.
    userinfo = http.get("/userinfo", headers={"Authorization": f"Bearer {lane_tokens['access_token']}"})
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == lane_id["sub"]
    assert rp.introspect(lane_tokens["access_token"]).json()["active"] is True
    if "refresh_token" in lane_tokens:
        refreshed = rp.refresh(lane_tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
    assert issued(provider, "authorization_code") == counted + 2


@pytest.mark.parametrize(
    ("case", "outcome"),
    [
        ("a-replay", "replayed"),
        ("a-wrong-verifier", "first"),
        ("no-verifier", "first"),
        ("a-wrong-redirect-uri", "first"),
        ("another-clients-code", "first"),
        ("an-unknown-code", "unknown"),
        ("another-parameter", "not-spent"),
        ("a-wrong-secret", "not-spent"),
    ],
)
def test_an_exchange_the_lane_does_not_answer_reaches_the_grant_with_the_code_spent_once(
    provider: Provider, http: TestClient, browser: Browser, case: str, outcome: str
) -> None:
    client = register(provider.registry, "web-app")
    other = register(provider.registry, "other-app")
    rp = RelyingParty(http, client)
    request, code = sign_in_for_code(browser, rp)
    if case == "a-replay":
        first = rp.exchange(request, code)
        assert first.status_code == 200
    overrides: dict[str, str | None] = {
        "a-wrong-verifier": {"code_verifier": "x" * 43},
        "no-verifier": {"code_verifier": None},
        "a-wrong-redirect-uri": {"redirect_uri": request.redirect_uri + "/elsewhere"},
        "another-parameter": {"resource": "https://api.example.com"},
    }.get(case, {})  # type: ignore[assignment]
    presented = "not-a-code" if case == "an-unknown-code" else code
    body = exchange_body(request, presented, **overrides)
    asker = other if case == "another-clients-code" else client
    secret = "wrong" if case == "a-wrong-secret" else None
    app = App()

    status, _, _ = asyncio.run(call(TokenLane(app, provider), form_headers(basic(asker, secret)), [body]))

    assert (status, app.calls) == (299, [body])
    spent: EarlySpend | None = app.scopes[0].get(SPENT_CODE)
    if outcome == "not-spent":
        assert spent is None
    else:
        assert spent is not None
        assert spent.code == presented
        found = None if spent.spent is None else ("first" if spent.spent[1].first else "replayed")
        assert (found or "unknown") == outcome
    # A code the lane spent is burnt, whatever was wrong with the request that spent it.
    if outcome in ("first", "replayed"):
        again = rp.exchange(request, code)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_the_grant_answers_a_code_the_lane_spent_from_what_the_lane_found_without_spending_it_again(
    provider: Provider, http: TestClient, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    rp = RelyingParty(http, register(provider.registry, "web-app"))
    request, code = sign_in_for_code(browser, rp)

    with caplog.at_level(logging.WARNING, logger="kubeoidc_provider.grants"):
        wrong = rp.exchange(request, code, code_verifier="x" * 43)
        # Spent a second time, it would be a replay: the grant would revoke and say so.
        assert "replayed" not in caplog.text
        replay = rp.exchange(request, code)

    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert "authorization code replayed" in caplog.text


def test_a_replay_the_lane_declines_revokes_what_the_first_exchange_issued(
    provider: Provider, http: TestClient, browser: Browser
) -> None:
    rp = RelyingParty(http, register(provider.registry, "web-app"))
    request, code = sign_in_for_code(browser, rp)
    tokens = rp.exchange(request, code).json()

    replay = rp.exchange(request, code)

    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert rp.introspect(tokens["access_token"]).json()["active"] is False
    assert rp.refresh(tokens["refresh_token"]).status_code == 400


class CountingExecutor(ThreadPoolExecutor):
    """The token threads, counting the calls handed to them."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize(("workers", "hops"), [(1, 1), (64, 0)])
def test_rsa_signatures_go_to_a_thread_unless_the_process_is_one_of_as_many_as_it_has_cores(
    make_provider: Callable[..., Provider], serve: Callable[..., Any], workers: int, hops: int
) -> None:
    provider = make_provider(workers=workers)
    executor = CountingExecutor()
    object.__setattr__(provider, "workers", executor)
    assert provider.signs_on_loop is (workers == 64)
    machine = machine_client(provider)
    web = register(provider.registry, "web-app")

    with serve(provider) as http:
        before = executor.submitted
        issued = RelyingParty(http, machine).token(
            {"grant_type": "client_credentials", "scope": "invoices:read"}
        )
        for_client = executor.submitted - before
        rp = RelyingParty(http, web)
        request, code = sign_in_for_code(Browser(http, provider.settings.issuer), rp)
        before = executor.submitted
        exchanged = rp.exchange(request, code)
        for_exchange = executor.submitted - before

    assert (issued.status_code, exchanged.status_code) == (200, 200)
    assert unsigned_header(issued.json()["access_token"])["alg"] == "RS256"
    assert unsigned_header(exchanged.json()["id_token"])["alg"] == "RS256"
    assert (for_client, for_exchange) == (hops, hops)


# --- introspection --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_an_introspection_of_a_live_token_is_answered_by_the_lane_as_authlibs_path_answers(
    provider: Provider, http: TestClient, browser: Browser, kind: str, token_format: str
) -> None:
    client = register(provider.registry, "web-app", spec_fields={"accessTokenFormat": token_format})
    rp = RelyingParty(http, client)
    token = sign_in_for_tokens(browser, rp)[kind]
    app = App()
    lane = IntrospectionLane(app, provider)

    status, _, body = asyncio.run(
        call(lane, form_headers(basic(client)), [f"token={token}".encode()], path="/introspect")
    )
    through_authlib = rp.introspect(token, client_id=client.client_id)

    assert status == 200
    assert app.calls == []
    assert json.loads(body) == through_authlib.json()
    assert json.loads(body)["active"] is True


@pytest.mark.parametrize("case", ["revoked", "another-clients", "unknown", "unsupported-hint", "no-token"])
def test_an_introspection_the_lane_does_not_answer_reaches_authlib(
    provider: Provider, http: TestClient, browser: Browser, case: str
) -> None:
    client = register(provider.registry, "web-app")
    other = register(provider.registry, "other-app")
    rp = RelyingParty(http, client)
    token = sign_in_for_tokens(browser, rp)["access_token"]
    asker = other if case == "another-clients" else client
    if case == "revoked":
        assert rp.post("/revoke", {"token": token}).status_code == 200
    body = {
        "unknown": b"token=abc",
        "unsupported-hint": f"token={token}&token_type_hint=id_token".encode(),
        "no-token": b"token_type_hint=access_token",
    }.get(case, f"token={token}".encode())
    app = App()

    status, _, _ = asyncio.run(
        call(IntrospectionLane(app, provider), form_headers(basic(asker)), [body], path="/introspect")
    )
    through_authlib = http.post(
        "/introspect",
        content=body,
        auth=(asker.client_id, asker.secret or ""),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert status == 299
    assert app.calls == [body]
    expected = {
        "unsupported-hint": {"error": "unsupported_token_type"},
        "no-token": {"error": "invalid_request"},
    }
    assert expected.get(case, {"active": False}).items() <= through_authlib.json().items()


# --- userinfo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["valid", "invalid", "none", "not-bearer"])
@pytest.mark.parametrize("origin", [{}, {"Origin": "https://spa.example.com"}])
def test_userinfo_by_get_is_answered_by_the_lane_as_the_router_answers_a_post(
    provider: Provider, http: TestClient, browser: Browser, case: str, origin: dict[str, str]
) -> None:
    client = register(provider.registry, "web-app")
    token = sign_in_for_tokens(browser, RelyingParty(http, client))["access_token"]
    authorization = {
        "valid": {"Authorization": f"Bearer {token}"},
        "invalid": {"Authorization": f"Bearer {token[:-4]}AAAA"},
        "none": {},
        "not-bearer": {"Authorization": "Basic YTpi"},
    }[case]
    app = App()
    scope_headers = [(k.lower().encode(), v.encode()) for k, v in {**authorization, **origin}.items()]

    lane_status, _, _ = asyncio.run(
        call(UserinfoLane(app, provider), scope_headers, [], path="/userinfo", method="GET")
    )
    by_get = http.get("/userinfo", headers={**authorization, **origin})
    # A POST goes through the router (and the same answer function) with the same header.
    by_post = http.post("/userinfo", headers={**authorization, **origin})

    assert app.calls == []
    assert lane_status == by_get.status_code == by_post.status_code == (200 if case == "valid" else 401)
    assert by_get.content == by_post.content
    assert dict(by_get.headers) == dict(by_post.headers)


def test_userinfo_by_post_and_head_go_through_the_router(provider: Provider) -> None:
    app = App()

    for method in ("POST", "HEAD"):
        status, _, _ = asyncio.run(
            call(UserinfoLane(app, provider), [], [b""], path="/userinfo", method=method)
        )
        assert status == 299
    assert len(app.calls) == 2


def test_a_spent_code_handed_over_in_the_asgi_scope_never_shows_in_its_repr() -> None:
    handed_over = EarlySpend("the-code-itself", None)

    assert "the-code-itself" not in repr(handed_over)
    assert "the-code-itself" not in repr({SPENT_CODE: handed_over})
