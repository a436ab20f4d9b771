"""Bad input against the real server process (``kubeoidc dev``: uvicorn on loopback), over raw sockets.

Every endpoint meets oversized, chunked, slow, non-ASCII, repeated, malformed and wrongly typed input
and answers with a 4xx — never a 500, never a held connection: each answer must come before a deadline
far above the provider's body timeout (set to one second here). Endpoints that read no input (the
published documents, the stylesheet) may ignore it, but never fail on it. The server's
log never shows a traceback, even for a client that leaves in the middle of its body.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from support.devmode import DevProcess, launch, stop

#: The provider's body timeout in this test, in seconds (``body_read_timeout``).
BODY_TIMEOUT = 1
#: Every answer must come within this many seconds: far above the body timeout, far below a held
#: connection's (uvicorn would wait for a lying Content-Length forever).
DEADLINE = 15.0
#: Just over the 64 KiB the provider takes.
OVERSIZED = 70 * 1024

MACHINE = """\
apiVersion: kubeoidc.io/v1alpha1
kind: OIDCClient
metadata:
  name: machine
spec:
  grantTypes: [client_credentials]
  scopes: [reports:read]
"""

#: The endpoints that read a body.
POST_ENDPOINTS = (
    "/authorize",
    "/login",
    "/consent",
    "/token",
    "/userinfo",
    "/revoke",
    "/introspect",
    "/logout",
)
#: The endpoints that read the query (GET).
GET_ENDPOINTS = ("/authorize", "/authorize/resume", "/login", "/consent", "/userinfo", "/logout")
#: The endpoints that read no input: they may ignore it (200), never fail on it.
DOCUMENTS = (
    "/.well-known/openid-configuration",
    "/jwks",
    "/static/kubeoidc.css",
)


@dataclass(frozen=True)
class Case:
    """One bad request: its head's extra lines, its body parts (sent one after another), and whether the
    client then waits for the answer with the body still incomplete."""

    name: str
    headers: tuple[bytes, ...]
    parts: tuple[bytes, ...]


FORM = b"Content-Type: application/x-www-form-urlencoded"


def chunked(body: bytes, size: int = 10 * 1024) -> tuple[bytes, ...]:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return (*(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces), b"0\r\n\r\n")


BODY_CASES = (
    Case("oversized", (FORM, b"Content-Length: %d" % OVERSIZED), (b"a=" + b"x" * (OVERSIZED - 2),)),
    Case("chunked-oversized", (FORM, b"Transfer-Encoding: chunked"), chunked(b"a=" + b"x" * OVERSIZED)),
    # Declares more than it sends, then waits: the body timeout must end it.
    Case("slow", (FORM, b"Content-Length: 1000"), (b"grant_type",)),
    Case(
        "non-ascii",
        (FORM, b"Authorization: Basic \xff\xfe\xfd", b"Content-Length: 8"),
        (b"a=\xff\xfe\xfd\xfc\xfb",),
    ),
    Case(
        "repeated",
        (FORM, b"Content-Length: 63"),
        (b"client_id=first&client_id=other&grant_type=client_credentials&x",),
    ),
    Case("malformed", (FORM, b"Content-Length: 35"), (b"%zz&=&g=%ff%f&id_token_hint=%ff.%fe",)),
    Case("wrong-content-type", (b"Content-Type: application/json", b"Content-Length: 2"), (b"{}",)),
)
QUERY_CASES = (
    ("non-ascii", b"?client_id=\xff\xfe&response_type=%ff"),
    ("repeated", b"?client_id=a&client_id=b&redirect_uri=x&redirect_uri=y&interaction=1&interaction=2"),
    ("malformed", b"?%zz=1&&=&response_type=%&id_token_hint=%ff%fe.%ff&interaction=%"),
)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    root = tmp_path_factory.mktemp("bad-input")
    folder = root / "clients"
    folder.mkdir()
    (folder / "machine.yaml").write_text(MACHINE)
    process = launch(folder, root / "state", root, {"KUBEOIDC_PROVIDER_BODY_READ_TIMEOUT": str(BODY_TIMEOUT)})
    try:
        process.card("machine")
        yield process
    finally:
        stop(process)


def exchange(dev: DevProcess, head: bytes, parts: tuple[bytes, ...] = ()) -> int:
    """Send ``head`` and ``parts`` on a fresh connection; the answer's status, before the deadline."""
    address = urlsplit(dev.issuer)
    deadline = time.monotonic() + DEADLINE
    with socket.create_connection((address.hostname, address.port), timeout=DEADLINE) as sock:
        try:
            sock.sendall(head)
            for part in parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed before the rest was sent: the answer is already on its way
        answer = b""
        while b"\r\n" not in answer:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                raise AssertionError(f"no answer within {DEADLINE}s") from None
            if not data:
                raise AssertionError(f"connection closed without an answer: {answer!r}")
            answer += data
    status = int(answer.split(b" ", 2)[1])
    assert time.monotonic() < deadline
    return status


def request_head(method: bytes, target: bytes, headers: tuple[bytes, ...], host: str) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (method, target), b"Host: " + host.encode(), *headers, b"", b""]
    return b"\r\n".join(lines)


def basic(dev: DevProcess) -> bytes:
    card = dev.card("machine")
    return b"Authorization: Basic " + base64.b64encode(
        f"{card['client_id']}:{card['client_secret']}".encode()
    )


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
@pytest.mark.parametrize("case", BODY_CASES, ids=lambda case: case.name)
def test_bad_bodies_get_a_4xx_before_the_deadline(dev: DevProcess, endpoint: str, case: Case) -> None:
    headers = case.headers
    if endpoint in ("/token", "/revoke", "/introspect") and not any(
        h.startswith(b"Authorization") for h in headers
    ):
        # Authenticated, so that the bad input itself is what gets refused, not a missing client.
        headers = (*headers, basic(dev))
    head = request_head(b"POST", endpoint.encode(), headers, urlsplit(dev.issuer).netloc)

    status = exchange(dev, head, case.parts)

    assert 400 <= status < 500, (case.name, endpoint, status)


@pytest.mark.parametrize("endpoint", GET_ENDPOINTS)
@pytest.mark.parametrize(("name", "query"), QUERY_CASES, ids=[name for name, _ in QUERY_CASES])
def test_bad_queries_get_a_4xx_before_the_deadline(
    dev: DevProcess, endpoint: str, name: str, query: bytes
) -> None:
    head = request_head(b"GET", endpoint.encode() + query, (), urlsplit(dev.issuer).netloc)

    status = exchange(dev, head)

    assert 400 <= status < 500, (name, endpoint, status)


@pytest.mark.parametrize("endpoint", DOCUMENTS)
def test_endpoints_without_input_ignore_bad_input_but_never_fail(dev: DevProcess, endpoint: str) -> None:
    host = urlsplit(dev.issuer).netloc
    for target, headers in (
        (endpoint.encode() + QUERY_CASES[0][1], (b"Authorization: Basic \xff\xfe",)),
        (endpoint.encode() + QUERY_CASES[1][1], ()),
    ):
        status = exchange(dev, request_head(b"GET", target, headers, host))
        assert status < 500, (endpoint, status)


def test_a_client_leaving_mid_body_leaves_no_traceback_in_the_log(dev: DevProcess) -> None:
    host = urlsplit(dev.issuer).netloc
    for endpoint in POST_ENDPOINTS:
        head = request_head(b"POST", endpoint.encode(), (FORM, b"Content-Length: 1000"), host)
        with socket.create_connection((urlsplit(dev.issuer).hostname, urlsplit(dev.issuer).port)) as sock:
            sock.sendall(head + b"grant_type=")
            time.sleep(0.1)  # the body is being read when the client goes
    # The server is still serving, and said nothing of the departures.
    assert exchange(dev, request_head(b"GET", b"/.well-known/openid-configuration", (), host)) == 200
    time.sleep(0.5)  # lets a traceback, were one written, reach the captured output
    assert "Traceback" not in dev.output()
    assert "ClientDisconnect" not in dev.output()
