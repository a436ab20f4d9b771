"""The provider's Kubernetes client at the HTTP level, against a tiny API server written here that answers
byte for byte as each test says: chunked and Content-Length bodies cut at awkward places, a watch the
server ends or cuts in the middle of an event, error answers, answers that are not JSON and a watch line
longer than any object, a server
that hangs or trickles (a timeout, and the connection closed, never held), a watch cut short by
``stop``, and HTTPS with the cluster's CA and a client certificate.

The client blocks: each test calls it on a worker thread while the server answers on the test's loop.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubeoidc_contract.cluster_access import ClusterAccess, from_kubeconfig
from kubeoidc_provider import kube_api
from kubeoidc_provider.kube_api import ApiError, KubeApi
from support.certificates import CertificateAuthority, cert_pem, key_pem

PATH = "/apis/kubeoidc.io/v1alpha1/oidcclients"
#: The longest any test waits for something that happens at once when the code is right.
PATIENCE = 10.0

Answer = Callable[["Request", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    target: str
    headers: dict[str, str]


@dataclass
class TinyApiServer:
    """Answers each request with ``answer``, then waits for the client to close the connection."""

    answer: Answer
    tls: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)
    closed_by_client: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in header_lines if line)
            request = Request(request_line.split(" ")[1], headers)
            self.requests.append(request)
            self.peers.append(writer.get_extra_info("peercert"))
            await self.answer(request, reader, writer)
            while await reader.read(65536):  # until the client closes its side
                pass
            self.closed_by_client.put_nowait(None)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            self.closed_by_client.put_nowait(None)
        finally:
            writer.close()

    async def wait_closed_by_client(self) -> None:
        await asyncio.wait_for(self.closed_by_client.get(), PATIENCE)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[TinyApiServer]]]:
    started: list[TinyApiServer] = []

    async def start(answer: Answer, tls: ssl.SSLContext | None = None) -> TinyApiServer:
        server = TinyApiServer(answer, tls)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.server is not None
        server.server.close()
        await server.server.wait_closed()


def plain(server: TinyApiServer, token: str | None = None) -> KubeApi:
    return KubeApi(ClusterAccess(server.url, None, (lambda: token) if token else None))


def head(status: str, **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(*chunks: bytes) -> bytes:
    """``chunks`` as HTTP chunks, exactly as cut here (the client's reads end where a chunk ends)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)


END = b"0\r\n\r\n"


def events(*names: str) -> list[dict[str, Any]]:
    return [
        {"type": "ADDED", "object": {"metadata": {"name": name, "resourceVersion": str(n)}, "spec": {}}}
        for n, name in enumerate(names, 1)
    ]


def as_lines(documents: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(document, ensure_ascii=False).encode() + b"\n" for document in documents)


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` in pieces of the given sizes, over and over (the last piece takes what is left)."""
    pieces, at, n = [], 0, 0
    while at < len(data):
        size = sizes[n % len(sizes)]
        pieces.append(data[at : at + size])
        at, n = at + size, n + 1
    return pieces


def collect(watch: kube_api.Watch, into: list[dict[str, Any]]) -> None:
    for event in watch:
        into.append(event)


async def test_a_chunked_watch_cut_at_awkward_places_yields_each_event_whole(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    sent = events("first", "zoë-✓-second", "third")
    sent[1]["object"]["spec"] = {"displayName": "Zoë ✓ " * 300}  # one event over many chunks
    body = b"\n" + as_lines(sent[:1]) + b"\n\n" + as_lines(sent[1:])  # blank lines: keep-alives

    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Chunks of 1, 2, 3, 5, 7 and 11 bytes: ends in the middle of a line, of a multi-byte character,
        # right after and right before a newline; then each line with the next's start in one chunk.
        writer.write(head("200 OK", Content_Type="application/json", Transfer_Encoding="chunked"))
        writer.write(chunked(*cut(body[:900], [1, 2, 3, 5, 7, 11])) + chunked(body[900:]) + END)
        await writer.drain()

    server = await serve(answer)
    watch = plain(server).watch(PATH, {"resourceVersion": "7"}, read_timeout=PATIENCE)
    received: list[dict[str, Any]] = []

    await asyncio.to_thread(collect, watch, received)

    assert received == sent
    assert server.requests[0].target == f"{PATH}?resourceVersion=7&watch=true"


async def test_a_content_length_body_split_into_small_writes_is_read_whole(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    document = {"kind": "OIDCClientList", "metadata": {"resourceVersion": "9"}, "items": [{"n": "é" * 50}]}
    body = json.dumps(document).encode()

    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", Content_Type="application/json", Content_Length=str(len(body))))
        for piece in cut(body, [3, 1, 4, 1, 5, 9]):
            writer.write(piece)
            await writer.drain()

    server = await serve(answer)

    assert await asyncio.to_thread(plain(server).get_json, PATH, {"limit": 500}) == document


async def test_a_request_carries_the_servers_path_the_query_the_bearer_token_and_asks_to_close(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", Content_Length="2") + b"{}")

    server = await serve(answer)
    api = KubeApi(ClusterAccess(server.url + "/k8s/clusters/c-1/", None, lambda: "the-token"))

    await asyncio.to_thread(api.get_json, PATH, {"labelSelector": "app in (a,b)", "limit": 2})

    (request,) = server.requests
    assert request.target == f"/k8s/clusters/c-1{PATH}?labelSelector=app+in+%28a%2Cb%29&limit=2"
    assert request.headers["Authorization"] == "Bearer the-token"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Connection"] == "close"
    await server.wait_closed_by_client()


async def test_a_watch_the_server_ends_cleanly_ends_after_its_last_event(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", Transfer_Encoding="chunked") + chunked(as_lines(events("a", "b"))) + END)

    server = await serve(answer)
    received: list[dict[str, Any]] = []

    await asyncio.to_thread(collect, plain(server).watch(PATH, {}, read_timeout=PATIENCE), received)

    assert [event["object"]["metadata"]["name"] for event in received] == ["a", "b"]


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        pytest.param("chunked", chunked(as_lines(events("whole")) + b'{"type": "ADD'), id="chunked, cut"),
        pytest.param(
            "chunked",
            chunked(as_lines(events("whole")) + b'{"type": "ADD') + END,
            id="chunked, ended mid-line",
        ),
        pytest.param("close", as_lines(events("whole")) + b'{"type": "ADD', id="until close, cut"),
        pytest.param("length", as_lines(events("whole")) + b'{"type": "ADD', id="Content-Length, cut"),
    ],
)
async def test_a_watch_closed_in_the_middle_of_an_event_raises_and_never_hands_on_half_an_event(
    serve: Callable[..., Awaitable[TinyApiServer]], framing: str, body: bytes
) -> None:
    framings = {
        "chunked": head("200 OK", Transfer_Encoding="chunked"),
        "close": head("200 OK", Connection="close"),
        "length": head("200 OK", Content_Length=str(len(body) + 500)),
    }

    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(framings[framing] + body)
        await writer.drain()
        writer.close()

    server = await serve(answer)
    received: list[dict[str, Any]] = []

    with pytest.raises(http.client.IncompleteRead):
        await asyncio.to_thread(collect, plain(server).watch(PATH, {}, read_timeout=PATIENCE), received)

    assert [event["object"]["metadata"]["name"] for event in received] == ["whole"]


async def test_a_server_that_closes_before_answering_is_a_transport_error(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await serve(answer)

    with pytest.raises(http.client.RemoteDisconnected):
        await asyncio.to_thread(plain(server).get_json, PATH)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "reason"),
    [
        pytest.param(
            "403 Forbidden",
            "application/json",
            b'{"kind": "Status", "code": 403, "message": "oidcclients is forbidden"}',
            "oidcclients is forbidden",
            id="a Kubernetes Status",
        ),
        pytest.param("502 Bad Gateway", "text/html", b"<html>down</html>", "Bad Gateway", id="a page"),
        pytest.param("200 OK", "text/html", b"<html>sign in</html>", "the answer is not JSON", id="2xx page"),
        pytest.param("200 OK", "text/json", b"[1, 2]", "the answer is not a JSON object", id="2xx array"),
    ],
)  # fmt: skip
async def test_an_error_or_unreadable_answer_raises_api_error_with_the_status_and_a_short_reason(
    serve: Callable[..., Awaitable[TinyApiServer]], status: str, content_type: str, body: bytes, reason: str
) -> None:
    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, Content_Type=content_type, Content_Length=str(len(body))) + body)

    server = await serve(answer)

    with pytest.raises(ApiError) as raised:
        await asyncio.to_thread(plain(server).get_json, PATH)

    assert (raised.value.status, raised.value.reason) == (int(status.split()[0]), reason)


async def test_a_refused_watch_raises_api_error_and_one_that_streams_no_json_does_too(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    answers = iter(
        [
            head("401 Unauthorized", Content_Length="0"),
            head("200 OK", Transfer_Encoding="chunked") + chunked(b"<html>\n<body>proxy</body>\n") + END,
        ]
    )

    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(next(answers))

    api = plain(await serve(answer))

    with pytest.raises(ApiError) as refused:
        await asyncio.to_thread(list, api.watch(PATH, {}, read_timeout=PATIENCE))
    with pytest.raises(ApiError) as unreadable:
        await asyncio.to_thread(list, api.watch(PATH, {}, read_timeout=PATIENCE))

    assert (refused.value.status, refused.value.reason) == (401, "Unauthorized")
    assert (unreadable.value.status, unreadable.value.reason) == (200, "a watch event is not JSON")


async def test_a_watch_line_longer_than_any_api_object_is_refused_not_buffered_without_end(
    serve: Callable[..., Awaitable[TinyApiServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_api, "MAX_EVENT_BYTES", 4096)

    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", Transfer_Encoding="chunked") + chunked(*[b"x" * 1000] * 5))

    server = await serve(answer)

    with pytest.raises(ApiError) as refused:
        await asyncio.to_thread(list, plain(server).watch(PATH, {}, read_timeout=PATIENCE))

    assert refused.value.reason == "a watch event is longer than 4096 bytes"
    await server.wait_closed_by_client()


async def test_an_error_answer_is_read_no_further_than_its_limit_and_the_connection_is_closed(
    serve: Callable[..., Awaitable[TinyApiServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_api, "MAX_ERROR_BYTES", 4096)
    sent = asyncio.Event()

    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A proxy's error page that never ends: more than the limit at once, then nothing more.
        writer.write(head("502 Bad Gateway", Transfer_Encoding="chunked") + chunked(*[b"<p>x</p>" * 128] * 8))
        sent.set()

    server = await serve(answer)

    with pytest.raises(ApiError) as refused:
        await asyncio.to_thread(plain(server).get_json, PATH)

    assert (refused.value.status, refused.value.reason) == (502, "Bad Gateway")
    assert sent.is_set()
    await server.wait_closed_by_client()


def test_a_connection_to_the_api_server_probes_a_silent_peer_within_about_a_minute() -> None:
    with socket.socket() as sock:
        kube_api._keep_alive(sock)

        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            interval = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
            probes = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
            assert idle + interval * probes <= 60, (idle, interval, probes)


async def never_answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    pass  # the server reads on until the client gives up and closes


async def test_a_server_that_never_answers_times_out_and_the_connection_is_closed(
    serve: Callable[..., Awaitable[TinyApiServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_api, "READ_TIMEOUT", 0.5)
    server = await serve(never_answer)

    with pytest.raises(TimeoutError):
        await asyncio.to_thread(plain(server).get_json, PATH)

    await server.wait_closed_by_client()


async def test_a_server_that_trickles_its_answer_hits_the_reads_deadline_and_the_connection_is_closed(
    serve: Callable[..., Awaitable[TinyApiServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each byte comes well within a read's timeout: only a deadline for the whole answer ends this.
    monkeypatch.setattr(kube_api, "READ_TIMEOUT", 0.5)
    stop_trickling = asyncio.Event()

    async def trickle(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", Content_Length="100000") + b"{")
        while not stop_trickling.is_set():
            try:
                writer.write(b" ")
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.02)

    server = await serve(trickle)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(plain(server).get_json, PATH)
        await server.wait_closed_by_client()
    finally:
        stop_trickling.set()


async def test_a_quiet_watch_times_out_after_its_read_timeout_and_the_connection_is_closed(
    serve: Callable[..., Awaitable[TinyApiServer]],
) -> None:
    async def quiet(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head("200 OK", Transfer_Encoding="chunked") + chunked(as_lines(events("only"))))

    server = await serve(quiet)
    received: list[dict[str, Any]] = []

    with pytest.raises(TimeoutError):
        await asyncio.to_thread(collect, plain(server).watch(PATH, {}, read_timeout=0.5), received)

    assert len(received) == 1
    await server.wait_closed_by_client()


@pytest.mark.parametrize("answered", [True, False], ids=["while streaming", "while waiting for the answer"])
async def test_stop_cuts_a_watch_short_from_another_thread_and_the_iteration_just_ends(
    serve: Callable[..., Awaitable[TinyApiServer]], answered: bool
) -> None:
    async def answer(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if answered:
            writer.write(head("200 OK", Transfer_Encoding="chunked") + chunked(as_lines(events("only"))))

    server = await serve(answer)
    opened = threading.Event()
    watch = plain(server).watch(PATH, {}, read_timeout=60, opened=opened.set)
    received: list[dict[str, Any]] = []
    iterating = asyncio.ensure_future(asyncio.to_thread(collect, watch, received))
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not server.requests or (answered and not received):  # the request is in (and answered)
        assert asyncio.get_running_loop().time() < deadline, "the watch never got going"
        await asyncio.sleep(0.01)

    watch.stop()

    await asyncio.wait_for(iterating, PATIENCE)  # no error: a stop is not a failure
    assert opened.is_set() is answered
    await server.wait_closed_by_client()


@pytest.fixture
def cluster_ca() -> CertificateAuthority:
    return CertificateAuthority("cluster CA")


def tls_server_context(ca: CertificateAuthority, tmp_path: Path) -> ssl.SSLContext:
    """A server that shows a certificate of ``ca`` and asks every client for one of the same CA."""
    ca.write_server_files(tmp_path / "server.crt", tmp_path / "server.key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca.pem.decode())
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def kubeconfig(path: Path, server: str, ca: CertificateAuthority, user: str) -> Path:
    cert, key = ca.issue(user, server=False)
    data = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca.pem).decode()}}],
        "users": [{"name": "u", "user": {
            "client-certificate-data": base64.b64encode(cert_pem(cert)).decode(),
            "client-key-data": base64.b64encode(key_pem(key)).decode()}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


async def answer_empty_list(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    body = b'{"items": []}'
    writer.write(head("200 OK", Content_Length=str(len(body))) + body)


async def test_https_checks_the_server_against_the_clusters_ca_and_shows_the_client_certificate(
    serve: Callable[..., Awaitable[TinyApiServer]], cluster_ca: CertificateAuthority, tmp_path: Path
) -> None:
    server = await serve(answer_empty_list, tls_server_context(cluster_ca, tmp_path))
    access = from_kubeconfig(kubeconfig(tmp_path / "kubeconfig", server.url, cluster_ca, "kubeoidc-provider"))

    assert await asyncio.to_thread(KubeApi(access).get_json, PATH) == {"items": []}

    (peer,) = server.peers
    assert dict(name for names in peer["subject"] for name in names)["commonName"] == "kubeoidc-provider"


async def test_https_refuses_a_server_whose_certificate_another_ca_signed(
    serve: Callable[..., Awaitable[TinyApiServer]], cluster_ca: CertificateAuthority, tmp_path: Path
) -> None:
    server = await serve(answer_empty_list, tls_server_context(CertificateAuthority("impostor"), tmp_path))
    access = from_kubeconfig(kubeconfig(tmp_path / "kubeconfig", server.url, cluster_ca, "kubeoidc-provider"))

    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(KubeApi(access).get_json, PATH)

    assert server.requests == []
