"""The operator's API client (``kube``) against a small local HTTP server: what each answer becomes, what
goes out, and a kept-alive connection that the server closed while idle."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from kubeoidc_contract.cluster_access import ClusterAccess
from kubeoidc_operator.errors import Conflict, NotFound, Refused, Unavailable
from kubeoidc_operator.kube import MERGE_PATCH, KubeApi


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next of ``answers`` (status, JSON body) and records it. After each
    answer it closes the connection without saying so when ``drop_after_answer`` is set, as an API
    server does to a connection idle too long."""

    protocol_version = "HTTP/1.1"
    answers: ClassVar[list[tuple[int, dict[str, Any] | bytes]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []
    drop_after_answer: ClassVar[bool] = False

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(body) if body else None,
            }
        )
        status, document = self.answers.pop(0)
        payload = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if self.drop_after_answer:
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"answers": [], "seen": [], "drop_after_answer": False})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_status_patch_is_a_merge_patch_of_the_status_subresource_with_the_bearer_token(
    server: tuple[str, type[Recorder]],
) -> None:
    url, handler = server
    handler.answers.append((200, {"metadata": {"name": "web", "resourceVersion": "7"}}))

    with KubeApi(ClusterAccess(url, token=lambda: "the-token")) as api:
        answer = api.patch_client_status("team-a", "web", {"clientID": "abc"})

    assert answer["metadata"]["resourceVersion"] == "7"
    [request] = handler.seen
    assert request["method"] == "PATCH"
    assert request["path"] == "/apis/kubeoidc.io/v1alpha1/namespaces/team-a/oidcclients/web/status"
    assert request["content_type"] == MERGE_PATCH
    assert request["authorization"] == "Bearer the-token"
    assert request["body"] == {"status": {"clientID": "abc"}}


def test_answers_404_409_and_403_become_not_found_conflict_and_refused_with_the_servers_message(
    server: tuple[str, type[Recorder]],
) -> None:
    url, handler = server
    handler.answers += [
        (404, {"kind": "Status", "code": 404}),
        (409, {"kind": "Status", "code": 409, "message": "the object has been modified"}),
        (403, {"kind": "Status", "code": 403, "message": 'secrets "x" is forbidden'}),
        (404, {}),
    ]

    with KubeApi(ClusterAccess(url)) as api:
        assert api.find_secret("team-a", "web-oidc") is None
        with pytest.raises(Conflict, match="the object has been modified"):
            api.patch_secret("team-a", "web-oidc", {"metadata": {"resourceVersion": "1"}})
        with pytest.raises(Refused, match='answered 403: secrets "x" is forbidden') as refused:
            api.create_secret("team-a", {"metadata": {"name": "x"}})
        with pytest.raises(NotFound):
            api.get_client("team-a", "gone")

    assert refused.value.status == 403


def test_a_delete_with_a_uid_sends_the_uid_as_a_precondition(server: tuple[str, type[Recorder]]) -> None:
    url, handler = server
    handler.answers.append((200, {"kind": "Status", "status": "Success"}))

    with KubeApi(ClusterAccess(url)) as api:
        api.delete_secret("team-a", "old-oidc", uid="u-1")

    [request] = handler.seen
    assert request["method"] == "DELETE"
    assert request["body"]["preconditions"] == {"uid": "u-1"}


def test_a_kept_alive_connection_the_server_closed_while_idle_is_opened_again(
    server: tuple[str, type[Recorder]],
) -> None:
    url, handler = server
    handler.drop_after_answer = True
    handler.answers += [(200, {"metadata": {"name": "a"}}), (200, {"metadata": {"name": "b"}})]

    with KubeApi(ClusterAccess(url)) as api:
        first = api.get_client("team-a", "a")
        second = api.get_client("team-a", "b")

    assert (first["metadata"]["name"], second["metadata"]["name"]) == ("a", "b")
    assert [request["path"].rsplit("/", 1)[1] for request in handler.seen] == ["a", "b"]


def test_a_success_that_is_not_json_is_taken_for_an_api_server_away_not_a_crash(
    server: tuple[str, type[Recorder]],
) -> None:
    url, handler = server
    handler.answers.append((200, b"<html>a proxy's page</html>"))

    with KubeApi(ClusterAccess(url)) as api, pytest.raises(Unavailable, match="not JSON"):
        api.get_client("team-a", "web")
