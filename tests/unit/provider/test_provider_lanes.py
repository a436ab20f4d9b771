"""The lanes (client_credentials, introspection, userinfo): a plain request is answered ahead of routing and
Authlib, with the response Authlib's path gives; every other request reaches the app with its body
intact, and a body refused for its size or pace gets 413 or 408 from the lane's position too (never a
500)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from kubeoidc_provider.body_limits import BodyLimits
from kubeoidc_provider.context import Provider
from kubeoidc_provider.endpoints.client_credentials_lane import ClientCredentialsLane
from kubeoidc_provider.endpoints.introspection_lane import IntrospectionLane
from kubeoidc_provider.endpoints.userinfo_lane import UserinfoLane
from support.provider import RegisteredClient, register
from support.provider_flow import Browser, RelyingParty, sign_in_for_tokens

PLAIN = b"grant_type=client_credentials&scope=invoices%3Aread"


def machine_client(provider: Provider, **spec: Any) -> RegisteredClient:
    return register(
        provider.registry,
        "billing",
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["invoices:read"],
        spec_fields=spec,
    )


def basic(client: RegisteredClient, secret: str | None = None) -> bytes:
    return b"Basic " + base64.b64encode(f"{client.client_id}:{secret or client.secret}".encode())


class App:
    """The app behind the lane: records what reached it, and the body it read."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
    lane = ClientCredentialsLane(app, provider)

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

    status, _, body = asyncio.run(call(ClientCredentialsLane(app, provider), sent, chunks))

    assert (status, body) == (299, b"app")
    assert app.calls == [b"".join(chunks)]


def test_other_paths_and_methods_pass_untouched(provider: Provider) -> None:
    client = machine_client(provider)
    app = App()

    status, _, _ = asyncio.run(
        call(ClientCredentialsLane(app, provider), form_headers(basic(client)), [PLAIN], path="/introspect")
    )

    assert status == 299
    assert app.calls == [PLAIN]


def test_a_stalled_body_is_408_and_an_oversized_one_413_never_500(provider: Provider) -> None:
    client = machine_client(provider)
    app = App()
    limited = BodyLimits(ClientCredentialsLane(app, provider), max_body=64, read_timeout=0.05)

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


def test_tokens_issued_by_the_lane_are_counted(provider: Provider, http: TestClient) -> None:
    client = machine_client(provider, accessTokenSignedResponseAlg="ES256")
    rp = RelyingParty(http, client)
    sample = 'kubeoidc_token_requests_total{grant_type="client_credentials",outcome="ok"} '

    def issued() -> float:
        lines = provider.metrics.exposition().decode().splitlines()
        return sum(float(line.removeprefix(sample)) for line in lines if line.startswith(sample))

    before = issued()
    for _ in range(3):
        assert rp.token({"grant_type": "client_credentials", "scope": "invoices:read"}).status_code == 200

    assert issued() == before + 3


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
