"""A relying party's back-channel logout endpoint (Back-Channel Logout 1.0 §2.5), served on loopback.

It records every POST it receives and answers 200, as an application would; a test reads the logout
tokens and checks each one as §2.6 tells a relying party to (:func:`verify_logout_token`). Two paths
behave as broken applications do: under ``/hang`` the answer waits until the test ends (an application
that hangs), under ``/flaky`` the first ``FLAKY_FAILURES`` POSTs get a 503 (one that is restarting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import KeySet

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
FLAKY_FAILURES = 2
#: The longest a ``/hang`` answer is held (it is released at once when the receiver stops).
HANG_BOUND = 60.0


@dataclass
class Received:
    """One POST to the receiver: its path, content type and form fields."""

    path: str
    content_type: str
    form: dict[str, list[str]]


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)
    release: threading.Event = field(default_factory=threading.Event)

    def posts_to(self, path: str) -> list[Received]:
        with self.condition:
            return [post for post in self.received if post.path == path]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` POSTs, waiting for them up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self.received)} logout POSTs arrived, {count} expected")
                self.condition.wait(remaining)
            return list(self.received)


@contextmanager
def backchannel_receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port; its ``url`` + any path is a back-channel logout URI."""
    receiver: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            assert receiver is not None
            with receiver.condition:
                receiver.received.append(
                    Received(self.path, self.headers.get("Content-Type", ""), parse_qs(body))
                )
                receiver.condition.notify_all()
                earlier = sum(1 for post in receiver.received if post.path == self.path) - 1
            if self.path.startswith("/hang"):
                receiver.release.wait(HANG_BOUND)
            failing = self.path.startswith("/flaky") and earlier < FLAKY_FAILURES
            self.send_response(503 if failing else 200)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="backchannel-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def verify_logout_token(token: str, jwks: Mapping[str, Any], *, issuer: str, audience: str) -> dict[str, Any]:
    """The claims of a logout token, checked as Back-Channel Logout 1.0 §2.6 asks of a relying party."""
    # The signature, by the published keys.
    decoded = jwt.decode(token, KeySet.import_key_set(cast(Any, dict(jwks))))
    header, claims = decoded.header, dict(decoded.claims)
    assert header.get("typ") == "logout+jwt", header
    assert claims["iss"] == issuer
    assert claims["aud"] == audience or audience in claims["aud"]
    now = time.time()
    assert now - 300 <= claims["iat"] <= now + 5
    assert claims.get("exp", now + 1) > now
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert "nonce" not in claims
    assert claims.get("sub") or claims.get("sid")
    return claims
