"""Where a request's time goes: the provider's ASGI app driven in-process, one request at a time.

The provider is built as ``kubeoidc_server.py`` builds it (production parts, SQLite state in a
temporary folder), and each target's request is sent straight to the ASGI app (no socket, no uvicorn),
``--requests`` times in a row. Two pyinstrument profilers sample the two threads that serve a request:
the event loop's (routing, form parsing, state I/O) and the token endpoint's worker thread (the grant,
signing). Printed per target: the wall time per request (one request at a time, so also the CPU time)
and each thread's profile. With ``--cpu-only``, no profiler runs and the process's CPU time per request
is printed instead (every thread's, the in-process driver's included): a figure to compare two versions
of the code by, without a socket, wrk or a peer.

Usage: python bench/profile.py [--requests N] [--targets client_credentials,...] [--alg RS256]
       [--format jwt|opaque] [--cpu-only]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pyinstrument import Profiler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubeoidc_server import bench_oidcclient

from kubeoidc_contract.jwks import SIGNING_ALGS
from kubeoidc_provider.app import build_provider, create_app
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.state import CodeGrant, new_token
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory
from support.provider import users_yaml

ISSUER = "http://127.0.0.1:8080"
CLIENT_ID = "bench-client"
REDIRECT_URI = "https://app.example.com/callback"
USER_ID = "7b0c2f6e-alice"  # support.provider's user
TARGETS = ("client_credentials", "code_exchange", "userinfo", "introspection")

Message = dict[str, Any]


class Driver:
    """Calls an ASGI app with one request at a time, its lifespan started once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._lifespan = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {message}")

    async def stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        assert self._lifespan is not None
        await self._lifespan

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
            "state": dict(self.state),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def form_headers(basic: str) -> dict[str, str]:
    return {
        "authorization": basic,
        "content-type": "application/x-www-form-urlencoded",
        "host": "127.0.0.1:8080",
    }


async def profile(args: argparse.Namespace) -> None:
    secret = secrets.token_urlsafe(32)
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
    with tempfile.TemporaryDirectory() as folder:
        settings = ProviderSettings(
            issuer=ISSUER, storage_url=f"sqlite:///{folder}/state.db", access_token_ttl=600, code_ttl=600
        )
        registry = ClientRegistry()
        oidcclient = bench_oidcclient(
            "bench", client_id=CLIENT_ID, secret=secret, redirect_uri=REDIRECT_URI, issuer=ISSUER
        )
        spec = oidcclient["spec"]
        spec["accessTokenFormat"] = args.format
        spec["accessTokenSignedResponseAlg"] = spec["idTokenSignedResponseAlg"] = args.alg
        registry.upsert_oidcclient(oidcclient)
        registry.mark_ready()
        served = registry.get(CLIENT_ID)
        assert served is not None, "the bench's client is served from its published credentials"
        provider = build_provider(
            settings,
            registry=registry,
            users=StaticUserDirectory.from_yaml(users_yaml()),
            keys=KeySet.from_jwks(generate_jwks("RS256", also=SIGNING_ALGS)),
            storage=open_storage(settings.storage_url),
        )
        # One worker thread, profiled while a target runs: the token endpoint's grants run there.
        provider.workers.shutdown()
        workers = ThreadPoolExecutor(1)
        object.__setattr__(provider, "workers", workers)
        loop = asyncio.get_running_loop()
        driver = Driver(create_app(provider))
        await driver.start()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()

        async def new_code() -> str:
            code = new_token()
            grant = CodeGrant(
                client_id=CLIENT_ID,
                redirect_uri=REDIRECT_URI,
                scope="openid profile email",
                user_id=USER_ID,
                auth_time=int(time.time()),
                grant_id=new_token(12),
                nonce="n",
                code_challenge=challenge,
                code_challenge_method="S256",
                client_uid=served.uid,
            )
            await provider.state.save_code(code, grant, 600)
            return code

        def exchange(code: str) -> bytes:
            return urlencode(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                }
            ).encode()

        status, body = await driver.request("POST", "/token", form_headers(basic), exchange(await new_code()))
        if status != 200:
            raise RuntimeError(f"code exchange: {status} {body[:300]!r}")
        user_token = json.loads(body)["access_token"]

        requests: dict[str, Callable[[], Any]] = {
            "client_credentials": lambda: driver.request(
                "POST", "/token", form_headers(basic), b"grant_type=client_credentials&scope=api%3Aread"
            ),
            "userinfo": lambda: driver.request(
                "GET", "/userinfo", {"authorization": f"Bearer {user_token}", "host": "127.0.0.1:8080"}
            ),
            "introspection": lambda: driver.request(
                "POST", "/introspect", form_headers(basic), urlencode({"token": user_token}).encode()
            ),
        }
        for target in args.targets.split(","):
            codes = [await new_code() for _ in range(args.requests)] if target == "code_exchange" else []
            loop_profiler = Profiler(interval=0.0001, async_mode="disabled")
            worker_profiler = Profiler(interval=0.0001, async_mode="disabled")
            if not args.cpu_only:
                await loop.run_in_executor(workers, worker_profiler.start)
                loop_profiler.start()
            started, cpu_started = time.perf_counter(), time.process_time()
            for index in range(args.requests):
                if target == "code_exchange":
                    status, body = await driver.request(
                        "POST", "/token", form_headers(basic), exchange(codes[index])
                    )
                else:
                    status, body = await requests[target]()
                if status != 200:
                    raise RuntimeError(f"{target}: {status} {body[:300]!r}")
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if args.cpu_only:
                # Every thread's CPU (the loop's, the workers', the storage's), the driver's included.
                per_request = cpu / args.requests * 1e6
                print(f"=== {target} ({args.format}, {args.alg}): {per_request:.0f} us of CPU per request")
                continue
            loop_profiler.stop()
            await loop.run_in_executor(workers, worker_profiler.stop)
            per_request = elapsed / args.requests * 1e6
            print(f"=== {target} ({args.format}, {args.alg}): {per_request:.0f} us per request")
            print("--- event loop thread")
            print(loop_profiler.output_text(unicode=False, color=False, show_all=False))
            if target in ("client_credentials", "code_exchange"):
                print("--- token worker thread")
                print(worker_profiler.output_text(unicode=False, color=False, show_all=False))
        await driver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--alg", default="RS256", choices=SIGNING_ALGS)
    parser.add_argument("--format", default="jwt", choices=("jwt", "opaque"))
    parser.add_argument("--cpu-only", action="store_true", help="no profilers: CPU time per request")
    asyncio.run(profile(parser.parse_args()))


if __name__ == "__main__":
    main()
