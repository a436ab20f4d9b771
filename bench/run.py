"""The benchmark: kubeoidc's provider against the ceiling and the peer, on loopback, with wrk.

Three servers, each its own process with one worker, started here:

- ``ceiling``: a bare Starlette app on uvicorn (uvloop + httptools) returning a small JSON body
  (``ceiling.py``): what one Python worker can serve at best;
- ``peer``: panva's oidc-provider on Node (``node/peer.mjs``), one confidential client per configuration
  (``CLIENTS``: access token format and algorithm, ID token algorithm), one key per algorithm, JWT or
  opaque access tokens for client_credentials through a resource indicator;
- ``kubeoidc``: the provider (``kubeoidc_server.py``), the same clients, SQLite state, the same
  algorithms.

The targets named ``..._memory`` run on another pair whose kubeoidc keeps its state in memory
(``memory://``), as the peer keeps its own in every row (its default adapter, a ``Map``): the same
state on both sides, where the other rows compare kubeoidc's durable SQLite writes with the peer's
``Map``. The targets named ``..._redis`` run on a pair that both keep their state in one Redis started
here (``redis-server``, no persistence, each side in a database of its own): kubeoidc on ``redis://``,
the peer through a Redis adapter (``node/peer.mjs``), as a deployment of several replicas of either
keeps it. Redis's own CPU is in neither side's figures.

The targets named ``..._workers2`` run on a second pair started with two processes each (``kubeoidc
provider --workers 2``; node's cluster module for the peer), against the same ceiling.

Each target is measured on each server in turn (peer, kubeoidc, ceiling, then again: A B C A B C...),
after a warm-up, with one wrk thread; the table gives the medians over the rounds of requests/s (2xx
only), p50 and p99 latency, the server's RSS after its last run, and the ratios kubeoidc/peer and
kubeoidc/ceiling. Codes for the code-exchange target are minted before each run by signing in once and
calling the authorization endpoint with the session cookie. Then: the provider's RSS with a large
registry, and the operator's time to reconcile N OIDCClients to Ready on a real API server, the cluster
test tier's control plane (``operator_scale.py``; ``KUBEBUILDER_ASSETS`` names its binaries; not in
``--quick``, whose operator run is the cluster tier's).

Usage: python bench/run.py [--quick] [--duration S] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2

BENCH = Path(__file__).resolve().parent
CLIENT_ID = "bench-client"
REDIRECT_URI = "https://app.example.com/callback"
API_SCOPE = "api:read"
USER_SCOPE = "openid profile email"
USERNAME = "alice"
PASSWORD = "correct horse battery staple"  # kubeoidc_server.py's user

SERVERS = ("peer", "kubeoidc", "ceiling")


@dataclass(frozen=True)
class ClientConfig:
    """One registered client's token choices, the same on both servers (its ID: ``CLIENT_ID-name``)."""

    name: str
    #: ``jwt`` or ``opaque``: the access tokens of client_credentials (a code exchange's access token is
    #: opaque on the peer whatever this says, without a resource indicator; see ``TARGETS``).
    format: str
    access_alg: str
    id_alg: str

    @property
    def client_id(self) -> str:
        return f"{CLIENT_ID}-{self.name}"

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "format": self.format, "accessAlg": self.access_alg, "idAlg": self.id_alg}


CLIENTS = {
    config.name: config
    for config in (
        ClientConfig("jwt-rs256", "jwt", "RS256", "RS256"),
        ClientConfig("jwt-es256", "jwt", "ES256", "ES256"),
        ClientConfig("jwt-eddsa", "jwt", "EdDSA", "EdDSA"),
        ClientConfig("opaque-rs256", "opaque", "RS256", "RS256"),
        ClientConfig("opaque-es256", "opaque", "ES256", "ES256"),
    )
}


@dataclass(frozen=True)
class Target:
    """What is requested (``kind``), by which client, on servers of how many processes."""

    label: str
    kind: str
    client: str
    #: Both servers' configuration, as the table states it.
    configuration: str
    workers: int = 1
    #: Where the state is kept: ``sqlite`` (kubeoidc's in a file, durable; the peer's in a Map),
    #: ``memory`` (in memory on both sides) or ``redis`` (in one Redis, both sides).
    state: str = "sqlite"
    #: The least kubeoidc/peer and kubeoidc/ceiling ratios (issue 16's targets).
    goals: tuple[float | None, float | None] = (None, None)


#: Where each side keeps its state, for the targets that write it (the peer: its default adapter).
_DURABLE = "kubeoidc's state in SQLite, the peer's in a Map"
_IN_MEMORY = "state in memory on both sides (kubeoidc memory://, the peer's Map)"
_IN_REDIS = "state in one Redis on both sides (kubeoidc redis://, the peer through a Redis adapter)"
_OPAQUE_USER = "ID token RS256, opaque access token (stored hashed by kubeoidc)"
#: Targets, in the order they run; userinfo and introspection use an access token from a code exchange.
TARGETS: dict[str, Target] = {
    "discovery": Target("discovery", "discovery", "jwt-rs256", "-", goals=(1.5, 1.0)),
    "jwks": Target("JWKS", "jwks", "jwt-rs256", "3 keys: RS256, ES256, EdDSA", goals=(1.5, 1.0)),
    "token_client_credentials": Target(
        "token (client_credentials)",
        "client_credentials",
        "jwt-rs256",
        "JWT access token, RS256",
        goals=(1.5, None),
    ),
    "token_client_credentials_es256": Target(
        "token (client_credentials, ES256)",
        "client_credentials",
        "jwt-es256",
        "JWT access token, ES256",
        goals=(1.5, None),
    ),
    "token_client_credentials_eddsa": Target(
        "token (client_credentials, EdDSA)",
        "client_credentials",
        "jwt-eddsa",
        "JWT access token, EdDSA",
        goals=(1.5, None),
    ),
    "token_client_credentials_opaque": Target(
        "token (client_credentials, opaque)",
        "client_credentials",
        "opaque-rs256",
        f"opaque access token; {_DURABLE}",
        goals=(1.5, None),
    ),
    "token_code_exchange": Target(
        "token (code exchange)",
        "code_exchange",
        "opaque-rs256",
        f"{_OPAQUE_USER}; {_DURABLE}",
        goals=(1.5, None),
    ),
    "token_code_exchange_es256": Target(
        "token (code exchange, ES256)",
        "code_exchange",
        "opaque-es256",
        f"ID token ES256, opaque access token; {_DURABLE}",
        goals=(1.5, None),
    ),
    "userinfo": Target("userinfo", "userinfo", "opaque-rs256", "opaque access token", goals=(1.2, None)),
    "introspection": Target(
        "introspection", "introspection", "opaque-rs256", "opaque access token", goals=(1.5, None)
    ),
    "token_client_credentials_workers2": Target(
        "token (client_credentials, 2 processes)",
        "client_credentials",
        "jwt-rs256",
        "JWT access token, RS256; 2 processes each",
        workers=2,
        goals=(1.5, None),
    ),
    "token_client_credentials_es256_workers2": Target(
        "token (client_credentials, ES256, 2 processes)",
        "client_credentials",
        "jwt-es256",
        "JWT access token, ES256; 2 processes each",
        workers=2,
        goals=(1.5, None),
    ),
    "token_client_credentials_opaque_memory": Target(
        "token (client_credentials, opaque, state in memory)",
        "client_credentials",
        "opaque-rs256",
        f"opaque access token; {_IN_MEMORY}",
        state="memory",
        goals=(1.5, None),
    ),
    "token_code_exchange_memory": Target(
        "token (code exchange, state in memory)",
        "code_exchange",
        "opaque-rs256",
        f"{_OPAQUE_USER}; {_IN_MEMORY}",
        state="memory",
        goals=(1.5, None),
    ),
    "token_code_exchange_es256_memory": Target(
        "token (code exchange, ES256, state in memory)",
        "code_exchange",
        "opaque-es256",
        f"ID token ES256, opaque access token; {_IN_MEMORY}",
        state="memory",
        goals=(1.5, None),
    ),
    "token_client_credentials_opaque_redis": Target(
        "token (client_credentials, opaque, state in Redis)",
        "client_credentials",
        "opaque-rs256",
        f"opaque access token; {_IN_REDIS}",
        state="redis",
        goals=(1.5, None),
    ),
    "token_code_exchange_redis": Target(
        "token (code exchange, state in Redis)",
        "code_exchange",
        "opaque-rs256",
        f"{_OPAQUE_USER}; {_IN_REDIS}",
        state="redis",
        goals=(1.5, None),
    ),
    "token_code_exchange_es256_redis": Target(
        "token (code exchange, ES256, state in Redis)",
        "code_exchange",
        "opaque-es256",
        f"ID token ES256, opaque access token; {_IN_REDIS}",
        state="redis",
        goals=(1.5, None),
    ),
    "introspection_redis": Target(
        "introspection (state in Redis)",
        "introspection",
        "opaque-rs256",
        f"opaque access token; {_IN_REDIS}",
        state="redis",
        goals=(1.5, None),
    ),
}
RSS_GOAL_MIB = 64.0
#: The operator's goal: this many OIDCClients Ready within that many seconds of the first create.
OPERATOR_GOAL = (10_000, 60.0)


@dataclass(frozen=True)
class Mode:
    duration: float
    warmup: float
    rounds: int
    connections: int
    registry_clients: int
    operator_clients: tuple[int, ...]


FULL = Mode(
    duration=10, warmup=2, rounds=3, connections=16, registry_clients=10_000, operator_clients=(1000, 10_000)
)
QUICK = Mode(duration=1, warmup=1, rounds=1, connections=8, registry_clients=10_000, operator_clients=())


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (a server's forked workers), from ``/proc/<pid>/task/*/children``."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += process_tree(int(child))
    return found


def rss_mib(pid: int) -> float:
    """The resident set (VmRSS) of the process and its workers, in MiB."""
    total = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


@dataclass
class Server:
    """A server process started by the harness, listening on 127.0.0.1:port."""

    name: str
    argv: list[str]
    port: int
    ready_path: str
    log: Path
    cwd: Path | None = None
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> None:
        with self.log.open("wb") as log:
            env = {**os.environ, **self.env} if self.env else None
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx2.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_path} in {timeout}s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @contextmanager
    def running(self) -> Iterator[Server]:
        try:
            self.start()
            yield self
        finally:
            self.stop()


def kubeoidc_server(
    workdir: Path,
    secret: str,
    extra_clients: int = 0,
    name: str = "kubeoidc",
    *,
    workers: int = 1,
    state: str = "sqlite",
    redis_url: str | None = None,
    clients: tuple[ClientConfig, ...] = (),
) -> Server:
    """The provider; with ``clients``, one client per configuration (else one with the defaults); its
    state in SQLite or, with ``state="memory"``, in memory, or with ``state="redis"`` in ``redis_url``."""
    port = free_port()
    state_dir = workdir / f"{name}-state"
    state_dir.mkdir()
    argv = [
        sys.executable,
        str(BENCH / "kubeoidc_server.py"),
        f"--port={port}",
        f"--client-id={CLIENT_ID}",
        f"--client-secret={secret}",
        f"--redirect-uri={REDIRECT_URI}",
        f"--state-dir={state_dir}",
        f"--extra-clients={extra_clients}",
        f"--workers={workers}",
        f"--state={state}",
        *([f"--redis-url={redis_url}"] if redis_url else []),
        f"--clients={json.dumps([config.as_json() for config in clients])}",
    ]
    return Server(name, argv, port, "/.well-known/openid-configuration", workdir / f"{name}.log")


def peer_server(
    workdir: Path, secret: str, *, workers: int = 1, name: str = "peer", redis_url: str | None = None
) -> Server:
    """The peer; its state in a Map, or with ``redis_url`` in that Redis."""
    port = free_port()
    node = BENCH / "node"
    if not (node / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError("the peer is not installed: run `npm ci` in bench/node")
    clients = json.dumps([config.as_json() for config in CLIENTS.values()])
    argv = ["node", "peer.mjs", str(port), CLIENT_ID, secret, REDIRECT_URI, clients]
    return Server(
        name,
        argv,
        port,
        "/.well-known/openid-configuration",
        workdir / f"{name}.log",
        cwd=node,
        env={"WORKERS": str(workers), **({"PEER_REDIS_URL": redis_url} if redis_url else {})},
    )


@contextmanager
def redis_running(workdir: Path, timeout: float = 30) -> Iterator[str]:
    """A Redis of the bench's own (no persistence), for the pair that keeps its state there: its URL."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    log = workdir / "redis.log"
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir)]
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _answers_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ceiling_server(workdir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(BENCH / "ceiling.py"), str(port)]
    return Server("ceiling", argv, port, "/", workdir / "ceiling.log")


# -- a relying party: sign in once, mint codes, exchange one ----------------------------------------


class RelyingParty:
    """What a confidential client does against one provider, found through its discovery document."""

    def __init__(self, base: str, secret: str, client_id: str = CLIENT_ID) -> None:
        self.base = base
        self.secret = secret
        self.client_id = client_id
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.discovery_path = "/.well-known/openid-configuration"
        document = httpx2.get(base + self.discovery_path, timeout=10).json()
        self.paths = {
            name: urlsplit(document[name]).path
            for name in (
                "authorization_endpoint",
                "token_endpoint",
                "userinfo_endpoint",
                "introspection_endpoint",
                "jwks_uri",
            )
        }
        self.verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=")
        self.authorize_query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": USER_SCOPE,
                "state": "bench-state",
                "nonce": "bench-nonce",
                "code_challenge": challenge.decode(),
                "code_challenge_method": "S256",
            }
        )
        self.cookie = ""

    @property
    def authorize_url(self) -> str:
        return f"{self.paths['authorization_endpoint']}?{self.authorize_query}"

    def sign_in(self) -> str:
        """Drive the authorization endpoint and its pages once, as a browser would; return a code.

        The login form is filled with the user's credentials and the consent form allowed; a provider
        whose interaction answers with redirects only (the peer's) is followed the same way.
        """
        with httpx2.Client(base_url=self.base, timeout=30) as browser:
            url = self.base + self.authorize_url
            response = browser.get(url)
            for _ in range(20):
                if response.status_code == 200 and "<form" in response.text:
                    url, form = _fill_form(url, response.text)
                    response = browser.post(url, data=form)
                    continue
                location = response.headers.get("location")
                if response.status_code not in (302, 303) or not location:
                    raise RuntimeError(
                        f"sign-in stopped at {url}: {response.status_code} {response.text[:300]}"
                    )
                if location.startswith(REDIRECT_URI):
                    self.cookie = "; ".join(
                        f"{cookie.name}={cookie.value}"
                        for cookie in browser.cookies.jar
                        if cookie.path == "/"
                    )
                    return _code_from(location)
                url = urljoin(url, location)
                response = browser.get(url)
        raise RuntimeError("sign-in did not end")

    def mint_codes(self, count: int, threads: int = 4) -> list[str]:
        """``count`` authorization codes, from the signed-in session (no page: consent is remembered)."""
        if not self.cookie:
            self.sign_in()
        host, port = urlsplit(self.base).hostname or "127.0.0.1", urlsplit(self.base).port
        codes: list[str] = []
        lock = threading.Lock()
        errors: list[str] = []

        def work(share: int) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            mine: list[str] = []
            try:
                for _ in range(share):
                    connection.request("GET", self.authorize_url, headers={"Cookie": self.cookie})
                    response = connection.getresponse()
                    response.read()
                    location = response.getheader("location") or ""
                    if response.status not in (302, 303) or not location.startswith(REDIRECT_URI):
                        raise RuntimeError(f"authorize answered {response.status} {location[:200]}")
                    mine.append(_code_from(location))
            except Exception as error:
                errors.append(str(error))
            finally:
                connection.close()
                with lock:
                    codes.extend(mine)

        shares = [count // threads + (1 if index < count % threads else 0) for index in range(threads)]
        workers = [threading.Thread(target=work, args=(share,)) for share in shares]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if errors:
            raise RuntimeError(f"minting codes failed: {errors[0]}")
        return codes

    def exchange_form(self, code: str) -> str:
        """The code exchange's form; ``code`` goes in as it is (codes are URL-safe, or ``{code}``)."""
        rest = {
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT_URI,
            "code_verifier": self.verifier,
        }
        return f"code={code}&{urlencode(rest)}"

    def access_token(self) -> str:
        """A user's access token (scope openid profile email), from one code exchange."""
        response = httpx2.post(
            self.base + self.paths["token_endpoint"],
            content=self.exchange_form(self.mint_codes(1)[0]),
            headers={"Authorization": self.basic, "Content-Type": "application/x-www-form-urlencoded"},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def _code_from(location: str) -> str:
    values = parse_qs(urlsplit(location).query)
    if "code" not in values:
        raise RuntimeError(f"no code in the redirect: {location[:300]}")
    return values["code"][0]


def _fill_form(url: str, html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    if 'name="password"' in html:
        form.update(username=USERNAME, password=PASSWORD)
    else:
        form.update(decision="allow")
    return urljoin(url, action.group(1) if action else url), form


# -- wrk --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request; a body containing ``{code}`` takes a fresh code from a file per request."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    check: Callable[[int, bytes], bool] = lambda status, body: status == 200


@dataclass
class Run:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    #: CPU time (user + system, every thread) the server process used during the run.
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Successful (2xx) requests per second."""
        return (self.requests - self.errors) / self.seconds

    @property
    def cores(self) -> float:
        """How many CPUs the server kept busy, on average."""
        return self.cpu_seconds / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / max(self.requests - self.errors, 1) * 1e6


_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"status\\":%d,"
    .. "\\"socket\\":%d,\\"p50\\":%d,\\"p99\\":%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def lua_script(request: Request, codes_file: Path | None) -> str:
    lines = [f"wrk.method = {_lua(request.method)}", f"wrk.path = {_lua(request.path)}"]
    lines += [f"wrk.headers[ {_lua(name)} ] = {_lua(value)}" for name, value in request.headers.items()]
    if codes_file is None:
        if request.body:
            lines.append(f"wrk.body = {_lua(request.body)}")
    else:
        prefix, _, suffix = request.body.partition("{code}")
        lines += [
            "local codes, used = {}, 0",
            "function init(args)",
            f"  for line in io.lines({_lua(str(codes_file))}) do codes[#codes + 1] = line end",
            "end",
            "function request()",
            "  used = used + 1",
            # Past the last code, an unknown one: a 400 that never replays (a replay revokes a grant).
            '  local code = codes[used] or "exhausted"',
            f"  return wrk.format(nil, nil, nil, {_lua(prefix)} .. code .. {_lua(suffix)})",
            "end",
        ]
    return "\n".join(lines) + "\n" + _DONE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its workers, all their threads (``/proc/<pid>/stat``
    fields 14 and 15)."""
    total = 0
    for member in process_tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(base: str, script: str, seconds: float, connections: int, workdir: Path, pid: int) -> Run:
    path = workdir / f"wrk-{secrets.token_hex(4)}.lua"
    path.write_text(script)
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        "--timeout",
        "10s",
        "-s",
        str(path),
        base,
    ]
    cpu_before = cpu_seconds(pid)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu = cpu_seconds(pid) - cpu_before
    path.unlink()
    line = next((line for line in result.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return Run(
        requests=data["requests"],
        errors=data["status"] + data["socket"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p99_ms=data["p99"] / 1000,
        cpu_seconds=cpu,
    )


# -- the targets ------------------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def _json_has(*keys: str) -> Callable[[int, bytes], bool]:
    def check(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        document = json.loads(body)
        return all(document.get(key) for key in keys)

    return check


def _access_token_of(config: ClientConfig) -> Callable[[int, bytes], bool]:
    """A 200 whose access token has the configuration's form (and, for a JWT, its algorithm)."""

    def check(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        token = json.loads(body)["access_token"]
        if config.format == "opaque":
            return "." not in token
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        return token.count(".") == 2 and bool(header.get("alg") == config.access_alg)

    return check


def _id_token_alg(alg: str) -> Callable[[int, bytes], bool]:
    def check(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        document = json.loads(body)
        header = json.loads(base64.urlsafe_b64decode(document["id_token"].split(".")[0] + "=="))
        return bool(document.get("access_token")) and header.get("alg") == alg

    return check


def requests_for(party: RelyingParty, target: str, token: str | None) -> Request:
    paths = party.paths
    basic = {"Authorization": party.basic, "Content-Type": FORM}
    kind, config = TARGETS[target].kind, CLIENTS[TARGETS[target].client]
    if kind == "discovery":
        return Request("GET", party.discovery_path, check=_json_has("issuer", "jwks_uri"))
    if kind == "jwks":
        return Request("GET", paths["jwks_uri"], check=_json_has("keys"))
    if kind == "client_credentials":
        body = urlencode({"grant_type": "client_credentials", "scope": API_SCOPE})
        return Request("POST", paths["token_endpoint"], basic, body, _access_token_of(config))
    if kind == "code_exchange":
        body = party.exchange_form("{code}")
        return Request("POST", paths["token_endpoint"], basic, body, _id_token_alg(config.id_alg))
    assert token is not None
    if kind == "userinfo":
        bearer = {"Authorization": f"Bearer {token}"}
        return Request("GET", paths["userinfo_endpoint"], bearer, check=_json_has("sub", "email"))
    if kind == "introspection":
        body = urlencode({"token": token})
        return Request("POST", paths["introspection_endpoint"], basic, body, _json_has("active", "sub"))
    raise ValueError(target)


CEILING_REQUEST = Request("GET", "/", check=_json_has("status"))


def check_once(base: str, request: Request, body: str) -> None:
    """One request before the load: the harness measures answers that are right, or stops."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request(request.method, request.path, body=body or None, headers=request.headers)
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    if not request.check(response.status, content):
        raise RuntimeError(
            f"{request.method} {base}{request.path}: unexpected {response.status} {content[:300]!r}"
        )


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    server: str
    runs: list[Run] = field(default_factory=list)
    rss_mib: float = 0.0

    @property
    def rate(self) -> float:
        """The median of the rounds' rates: one round disturbed by another process does not move it."""
        return statistics.median(run.rate for run in self.runs)

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds' rates: how noisy this row was."""
        rates = [run.rate for run in self.runs]
        return (max(rates) - min(rates)) / self.rate if len(rates) > 1 else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs)

    @property
    def cores(self) -> float:
        return statistics.median(run.cores for run in self.runs)

    @property
    def cpu_us_per_request(self) -> float:
        return statistics.median(run.cpu_us_per_request for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)


class Bench:
    def __init__(
        self, mode: Mode, targets: tuple[str, ...], workdir: Path, log: Callable[[str], None]
    ) -> None:
        self.mode = mode
        self.targets = targets
        self.workdir = workdir
        self.log = log
        self.rows: dict[tuple[str, str], Row] = {}
        self.code_rates: dict[str, float] = {}

    def measure(self, servers: dict[str, Server], secret: str) -> None:
        """Measure this bench's targets on ``servers`` (a peer, a kubeoidc, a ceiling), each target
        through a relying party of its own client on each server."""
        parties: dict[tuple[str, str], RelyingParty] = {}
        tokens: dict[tuple[str, str], str] = {}
        for target in self.targets:
            client_id = CLIENTS[TARGETS[target].client].client_id
            kind = TARGETS[target].kind
            requests: dict[str, Request] = {}
            for name in ("peer", "kubeoidc"):
                party = parties.get((name, client_id))
                if party is None:
                    party = parties[name, client_id] = RelyingParty(servers[name].base, secret, client_id)
                if kind in ("userinfo", "introspection") and (name, client_id) not in tokens:
                    tokens[name, client_id] = party.access_token()
                requests[name] = requests_for(party, target, tokens.get((name, client_id)))
            requests["ceiling"] = CEILING_REQUEST
            for name, request in requests.items():
                self.rows[target, name] = Row(target, name)
                if kind == "code_exchange" and name != "ceiling":
                    body = request.body.replace("{code}", parties[name, client_id].mint_codes(1)[0])
                else:
                    body = request.body
                check_once(servers[name].base, request, body)
            party_of = {name: parties[name, client_id] for name in ("peer", "kubeoidc")}
            label = TARGETS[target].label
            self.log(f"{label}: warm-up")
            for name in SERVERS:
                self._run(target, name, servers[name], requests[name], self.mode.warmup, party_of.get(name))
            for round_number in range(self.mode.rounds):
                for name in SERVERS:
                    run = self._run(
                        target, name, servers[name], requests[name], self.mode.duration, party_of.get(name)
                    )
                    self.rows[target, name].runs.append(run)
                    self.log(
                        f"{label} round {round_number + 1} {name}: {run.rate:.0f} req/s, "
                        f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, errors {run.errors}"
                    )
            for name in SERVERS:
                self.rows[target, name].rss_mib = rss_mib(servers[name].pid)

    def _run(
        self,
        target: str,
        name: str,
        server: Server,
        request: Request,
        seconds: float,
        party: RelyingParty | None,
    ) -> Run:
        if TARGETS[target].kind != "code_exchange" or party is None:
            script = lua_script(request, None)
            return run_wrk(server.base, script, seconds, self.mode.connections, self.workdir, server.pid)
        # Enough codes for the run at the last rate seen, with room; run again with more if they ran out.
        rate = self.code_rates.get(f"{target} {name}", 1000.0)
        count = math.ceil(rate * seconds * 1.5) + 50
        for _ in range(4):
            codes_file = self.workdir / f"codes-{name}.txt"
            started = time.monotonic()
            codes_file.write_text("\n".join(party.mint_codes(count)) + "\n")
            self.log(f"  minted {count} codes on {name} in {time.monotonic() - started:.1f}s")
            script = lua_script(request, codes_file)
            run = run_wrk(server.base, script, seconds, self.mode.connections, self.workdir, server.pid)
            codes_file.unlink()
            if run.requests <= count:
                self.code_rates[f"{target} {name}"] = max(run.rate, 1.0)
                return run
            self.log(f"  codes ran out on {name} ({run.requests} requests > {count} codes): again with more")
            rate = self.code_rates[f"{target} {name}"] = max(rate, run.requests / seconds)
            count = math.ceil(rate * seconds * 2) + 50
        raise RuntimeError(f"could not mint enough codes for {name}")


# -- memory and the operator -------------------------------------------------------------------------


def provider_rss(workdir: Path, secret: str, extra_clients: int) -> tuple[float, int]:
    """RSS of a fresh provider with 1 + ``extra_clients`` clients, after a few hundred requests."""
    server = kubeoidc_server(workdir, secret, extra_clients, name=f"kubeoidc-rss-{extra_clients}")
    with server.running():
        party = RelyingParty(server.base, secret)
        token_request = requests_for(party, "token_client_credentials", None)
        with httpx2.Client(base_url=server.base) as client:
            for _ in range(100):
                client.get(party.discovery_path)
                client.post(token_request.path, content=token_request.body, headers=token_request.headers)
        party.access_token()
        clients = int(re.findall(r"clients (\d+)", server.log.read_text())[0])
        return rss_mib(server.pid), clients


def operator_scale(counts: tuple[int, ...], timeout: float) -> list[dict[str, Any]]:
    """One control plane, one operator, a run per count (``timeout`` seconds each at most)."""
    argv = [sys.executable, str(BENCH / "operator_scale.py"), *map(str, counts), f"--timeout={timeout:g}"]
    limit = len(counts) * (timeout + 120) + 120
    result = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or len(lines) != len(counts):
        raise RuntimeError(
            f"operator_scale.py failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}"
        )
    return [json.loads(line.removeprefix("RESULT ")) for line in lines]


# -- the report ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    memory = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    peer_version = json.loads((BENCH / "node/node_modules/oidc-provider/package.json").read_text())["version"]
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model.group(1).strip() if model else platform.processor(),
        "memory": f"{int(memory.group(1)) / 1024 / 1024:.1f} GiB" if memory else "?",
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "python": platform.python_version(),
        "node": node,
        "oidc-provider": peer_version,
        "wrk": (wrk.stdout + wrk.stderr).split()[1] if (wrk.stdout + wrk.stderr).split() else "?",
    }


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def verdict(target: str, versus_peer: float, versus_ceiling: float) -> str:
    peer_goal, ceiling_goal = TARGETS[target].goals
    goals = []
    if peer_goal is not None:
        goals.append((f">= {peer_goal}x peer", versus_peer >= peer_goal))
    if ceiling_goal is not None:
        goals.append((f">= {ceiling_goal:.0%} of ceiling", versus_ceiling >= ceiling_goal))
    if not goals:
        return "(no goal)"
    return ", ".join(f"{text}: {'met' if met else 'MISSED'}" for text, met in goals)


def table(rows: dict[tuple[str, str], Row]) -> str:
    header = (
        "| target | configuration (both) | server | req/s | spread | p50 ms | p99 ms | cores | CPU us/req "
        "| RSS MiB | errors | kubeoidc/peer | kubeoidc/ceiling | goal |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for target, about in TARGETS.items():
        if (target, "kubeoidc") not in rows:
            continue
        kubeoidc = rows[target, "kubeoidc"].rate
        versus_peer = kubeoidc / rows[target, "peer"].rate
        versus_ceiling = kubeoidc / rows[target, "ceiling"].rate
        for name in SERVERS:
            row = rows[target, name]
            mine = name == "kubeoidc"
            lines.append(
                f"| {about.label} | {about.configuration if mine else ''} | {name} | {row.rate:.0f} "
                f"| {row.spread:.0%} | {row.p50_ms:.2f} "
                f"| {row.p99_ms:.2f} | {row.cores:.2f} | {row.cpu_us_per_request:.0f} | {row.rss_mib:.1f} "
                f"| {row.errors} "
                f"| {_ratio(versus_peer if mine else None)} | {_ratio(versus_ceiling if mine else None)} "
                f"| {verdict(target, versus_peer, versus_ceiling) if mine else ''} |"
            )
    return "\n".join(lines)


def scale_table(registry: list[tuple[float, int]], operator: list[dict[str, Any]]) -> str:
    lines = [
        "| measure | clients | seconds | operator CPU s | RSS MiB | writes per client | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for rss, clients in registry:
        goal = ""
        if clients > 1:
            goal = f"<= {RSS_GOAL_MIB:.0f} MiB: {'met' if rss <= RSS_GOAL_MIB else 'MISSED'}"
        lines.append(
            f"| provider: fresh, after 200 requests and a sign-in | {clients} | - | - | {rss:.1f} | - "
            f"| {goal} |"
        )
    for result in operator:
        if result["ready"] == result["count"]:
            seconds = f"{result['seconds']:.2f}"
        else:
            seconds = f"timed out: {result['ready']} Ready after {result['seconds']:.0f}"
        goal = ""
        if result["count"] == OPERATOR_GOAL[0]:
            met = result["ready"] == result["count"] and result["seconds"] <= OPERATOR_GOAL[1]
            goal = f"<= {OPERATOR_GOAL[1]:.0f} s: {'met' if met else 'MISSED'}"
        lines.append(
            f"| operator: OIDCClients created on a real API server, until all Ready | {result['count']} "
            f"| {seconds} | {result['operator_cpu_seconds']:.2f} | {result['peak_rss_mib']:.1f} (peak) "
            f"| {result['writes_per_client']:.2f} | {goal} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="seconds, not minutes: keeps the harness working"
    )
    parser.add_argument("--duration", type=float, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per target and server")
    parser.add_argument("--rounds", type=int, help="measured runs per target and server")
    parser.add_argument("--connections", type=int, help="wrk connections")
    parser.add_argument("--targets", help=f"comma-separated subset of {','.join(TARGETS)}")
    parser.add_argument("--skip-scale", action="store_true", help="no registry RSS, no operator scale")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    overrides = {
        key: value
        for key, value in {
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "connections": args.connections,
        }.items()
        if value is not None
    }
    mode = Mode(**{**asdict(mode), **overrides})
    targets = tuple(args.targets.split(",")) if args.targets else tuple(TARGETS)
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian package wrk)")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    about = machine()
    print(
        f"machine: {about['cpus']} CPUs ({about['cpu']}), {about['memory']}, load {about['load']}; "
        f"Python {about['python']}, Node {about['node']}, oidc-provider {about['oidc-provider']}, "
        f"wrk {about['wrk']}"
    )
    print(
        f"mode: {'quick' if args.quick else 'full'}: {mode.duration:g}s per run, {mode.rounds} round(s), "
        f"{mode.warmup:g}s warm-up, {mode.connections} connections, 1 wrk thread"
    )
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="kubeoidc-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        clients = tuple(CLIENTS.values())
        ceiling = stack.enter_context(ceiling_server(workdir).running())
        bench = Bench(mode, targets, workdir, log)
        pairs = sorted({(TARGETS[target].workers, TARGETS[target].state) for target in targets})
        # sqlite, then memory, then Redis; one process before two: the order of TARGETS.
        pairs.sort(key=lambda pair: (("sqlite", "memory", "redis").index(pair[1]), pair[0]))
        for workers, state in pairs:
            # One pair of servers per process count and state, each measured on its own (the others
            # stopped).
            suffix = ("" if workers == 1 else f"-{workers}w") + ("" if state == "sqlite" else f"-{state}")
            names = (f"peer{suffix}", f"kubeoidc{suffix}")
            with ExitStack() as pair:
                # Each side in a database of its own, in the one Redis.
                redis = pair.enter_context(redis_running(workdir)) if state == "redis" else None
                servers = {
                    "peer": pair.enter_context(
                        peer_server(
                            workdir,
                            secret,
                            workers=workers,
                            name=names[0],
                            redis_url=f"{redis}/2" if redis else None,
                        ).running()
                    ),
                    "kubeoidc": pair.enter_context(
                        kubeoidc_server(
                            workdir,
                            secret,
                            name=names[1],
                            workers=workers,
                            state=state,
                            redis_url=f"{redis}/1" if redis else None,
                            clients=clients,
                        ).running()
                    ),
                    "ceiling": ceiling,
                }
                bench.targets = tuple(
                    target
                    for target in targets
                    if (TARGETS[target].workers, TARGETS[target].state) == (workers, state)
                )
                bench.measure(servers, secret)
        bench.targets = targets
        stack.close()
        print()
        print(table(bench.rows))

        registry: list[tuple[float, int]] = []
        operator: list[dict[str, Any]] = []
        if not args.skip_scale:
            for extra in (0, mode.registry_clients):
                rss, served = provider_rss(workdir, secret, extra)
                registry.append((rss, served))
                log(f"provider with {served} clients: {rss:.1f} MiB")
            if mode.operator_clients:
                operator = operator_scale(mode.operator_clients, max(60.0, max(mode.operator_clients) * 0.05))
                for result in operator:
                    log(f"operator, {result['count']} OIDCClients: {result}")
            print()
            print(scale_table(registry, operator))
    print()
    print(f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if args.json:
        figures = {
            "machine": about,
            "mode": asdict(mode),
            "rows": [
                {
                    "target": row.target,
                    "server": row.server,
                    "rate": row.rate,
                    "p50_ms": row.p50_ms,
                    "p99_ms": row.p99_ms,
                    "rss_mib": row.rss_mib,
                    "cores": row.cores,
                    "cpu_us_per_request": row.cpu_us_per_request,
                    "errors": row.errors,
                    "runs": [asdict(run) for run in row.runs],
                }
                for row in bench.rows.values()
            ],
            "registry": [{"clients": clients, "rss_mib": rss} for rss, clients in registry],
            "operator": operator,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
