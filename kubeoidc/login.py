"""``kubeoidc login``: a kubectl exec credential plugin that signs people in with the provider.

kubectl runs it (a ``users:`` entry with ``exec``, see ``kubeoidc cluster-config``) and reads a
``client.authentication.k8s.io/v1`` ExecCredential on stdout, carrying an ID token, which kube-apiserver
checks against the issuer's JWKS. Everything for the person goes to stderr.

- A cached ID token is used while it has more than ``refresh_before`` seconds left; then the refresh token
  gets a new one; only when neither works does the person sign in again.
- Signing in: the authorization code flow with PKCE (RFC 7636) through a loopback redirect (RFC 8252
  §7.3) on ``http://localhost:8000`` or ``:18000``, the ports and URIs kubelogin uses, so one OIDCClient
  serves both; a browser is opened, and the URL is printed too. Where no browser can open, or with
  ``--grant device``, the Device Authorization Grant (RFC 8628): a URL and a code to enter on any device.
- The cache is one file per issuer, client and scopes in ``$XDG_CONFIG_HOME/kubeoidc/tokens`` (else
  ``~/.config``), mode 0600 in a 0700 folder: it holds a refresh token.

Only the standard library: the plugin starts on every kubectl call that needs a new token.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE

EXEC_API_VERSION = "client.authentication.k8s.io/v1"
#: kubelogin's loopback ports: an OIDCClient listing both redirect URIs serves either tool.
DEFAULT_PORTS = (8000, 18000)
DEFAULT_SCOPES = ("openid", "profile", "email", "groups", "offline_access")
#: A cached ID token with less left than this is refreshed first (kubectl may hold it a while).
REFRESH_BEFORE = 60
#: How long the person has to finish signing in.
LOGIN_TIMEOUT = 300.0
GRANTS = ("auto", "code", "device")

Say = Callable[[str], None]


class LoginError(Exception):
    """Signing in failed; the message says why and what to do."""


@dataclass(frozen=True)
class LoginOptions:
    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: Sequence[str] = DEFAULT_SCOPES
    ca_file: Path | None = None
    grant: str = "auto"
    ports: Sequence[int] = DEFAULT_PORTS
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    open_browser: bool = True
    refresh_before: int = REFRESH_BEFORE
    timeout: float = LOGIN_TIMEOUT


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kubeoidc" / "tokens"


def exec_credential(id_token: str) -> dict[str, Any]:
    """The ExecCredential kubectl reads; it asks again once ``expirationTimestamp`` has passed."""
    expires = datetime.datetime.fromtimestamp(token_expiry(id_token), datetime.UTC)
    return {
        "apiVersion": EXEC_API_VERSION,
        "kind": "ExecCredential",
        "status": {"token": id_token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }


def token_expiry(jwt: str) -> int:
    """The ``exp`` of a JWT the provider just sent us over TLS (kube-apiserver checks the signature)."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError) as error:
        raise LoginError("the provider sent an ID token that is not a JWT with an exp") from error


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


class TokenCache:
    """One JSON file per issuer, client and scopes, readable by its owner only."""

    def __init__(self, options: LoginOptions) -> None:
        name = hashlib.sha256(
            "\x00".join([options.issuer, options.client_id, " ".join(options.scopes)]).encode()
        ).hexdigest()[:32]
        self.path = options.cache_dir / f"{name}.json"

    def load(self) -> dict[str, Any]:
        try:
            value = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def save(self, tokens: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = self.path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"id_token": tokens["id_token"], "refresh_token": tokens.get("refresh_token")}, file)
        os.replace(scratch, self.path)  # a concurrent kubectl reads the old file or the new one

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class Provider:
    """The issuer's endpoints, over HTTPS verified with the given CA (or the system's)."""

    def __init__(self, options: LoginOptions) -> None:
        self.options = options
        self.context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
        self.metadata = self._get(f"{options.issuer}/.well-known/openid-configuration")
        if self.metadata.get("issuer") != options.issuer:
            raise LoginError(f"{options.issuer} announces another issuer: {self.metadata.get('issuer')}")

    def _get(self, url: str) -> dict[str, Any]:
        try:
            # The URL is checked to be https (or http on loopback) first: no file: or other scheme.
            with urllib.request.urlopen(_web_url(url), context=self.context, timeout=30) as answer:  # noqa: S310
                body: dict[str, Any] = json.load(answer)
                return body
        except (urllib.error.URLError, ValueError, OSError) as error:
            raise LoginError(f"cannot read {url}: {error}") from error

    def post(self, endpoint: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """POST a form to one of the metadata's endpoints; the status and the JSON answer."""
        url = self.metadata.get(endpoint)
        if not isinstance(url, str):
            raise LoginError(f"the provider has no {endpoint}")
        data = dict(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.options.client_secret is not None:
            pair = f"{_quote(self.options.client_id)}:{_quote(self.options.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            data["client_id"] = self.options.client_id
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(_web_url(url), body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:  # noqa: S310
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.load(error)
            except ValueError:
                return error.code, {"error": f"HTTP {error.code}"}
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise LoginError(f"cannot reach {url}: {error}") from error


def credential(options: LoginOptions, say: Say) -> dict[str, Any]:
    """The ExecCredential for kubectl: from the cache, a refresh, or a new sign-in."""
    cache = TokenCache(options)
    cached = cache.load()
    id_token = cached.get("id_token")
    if isinstance(id_token, str) and token_expiry(id_token) - time.time() > options.refresh_before:
        return exec_credential(id_token)
    provider = Provider(options)
    refresh_token = cached.get("refresh_token")
    if isinstance(refresh_token, str):
        status, tokens = provider.post(
            "token_endpoint", {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if status == 200 and isinstance(tokens.get("id_token"), str):
            cache.save(tokens)
            return exec_credential(tokens["id_token"])
        # Expired, revoked or reused: sign in again.
        cache.clear()
    tokens = sign_in(provider, options, say)
    cache.save(tokens)
    return exec_credential(tokens["id_token"])


def sign_in(provider: Provider, options: LoginOptions, say: Say) -> dict[str, Any]:
    if options.grant == "device":
        return device_grant(provider, options, say)
    try:
        return code_flow(provider, options, say)
    except _NoBrowser:
        if "device_authorization_endpoint" not in provider.metadata:
            raise LoginError("no browser can be opened here, and the provider has no device grant") from None
        say("kubeoidc login: no browser can be opened here; using a code to enter on another device.")
        return device_grant(provider, options, say)


class _NoBrowser(Exception):
    pass


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def code_flow(provider: Provider, options: LoginOptions, say: Say) -> dict[str, Any]:
    """Authorization code + PKCE through a loopback redirect (RFC 8252 §7.3)."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier, challenge = _pkce()
    with _LoopbackServer.bind(options.ports, state, options.issuer) as loopback:
        redirect_uri = f"http://localhost:{loopback.port}"
        url = (
            provider.metadata["authorization_endpoint"]
            + "?"
            + urllib.parse.urlencode(
                {
                    "response_type": "code",
                    "client_id": options.client_id,
                    "redirect_uri": redirect_uri,
                    "scope": " ".join(options.scopes),
                    "state": state,
                    "nonce": nonce,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
        )
        # --no-browser: the person opens the printed URL (on this machine: the redirect is loopback).
        if options.open_browser and not _open_browser(url) and options.grant == "auto":
            raise _NoBrowser()
        say(f"kubeoidc login: sign in at\n  {url}")
        code = loopback.wait(options.timeout)
    status, tokens = provider.post(
        "token_endpoint",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    _check_tokens(status, tokens)
    if claims_of(tokens["id_token"]).get("nonce") != nonce:
        raise LoginError("the ID token does not carry this sign-in's nonce: refused")
    return tokens


def _open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def device_grant(provider: Provider, options: LoginOptions, say: Say) -> dict[str, Any]:
    """RFC 8628: show the code, poll the token endpoint at the interval asked for."""
    status, answer = provider.post("device_authorization_endpoint", {"scope": " ".join(options.scopes)})
    if status != 200:
        raise LoginError(f"the provider refused the device grant: {_describe(answer)}")
    interval = int(answer.get("interval", 5))
    complete = answer.get("verification_uri_complete")
    say(
        f"kubeoidc login: open {answer['verification_uri']} on any device and enter the code "
        f"{answer['user_code']}" + (f"\n  or open {complete}" if complete else "")
    )
    deadline = time.monotonic() + min(options.timeout, float(answer.get("expires_in", options.timeout)))
    while time.monotonic() < deadline:
        time.sleep(interval)
        status, tokens = provider.post(
            "token_endpoint", {"grant_type": DEVICE_CODE_GRANT_TYPE, "device_code": answer["device_code"]}
        )
        error = tokens.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        _check_tokens(status, tokens)
        return tokens
    raise LoginError("the code was not entered in time: run the command again")


def _check_tokens(status: int, tokens: Mapping[str, Any]) -> None:
    if status != 200:
        raise LoginError(f"the provider refused to issue tokens: {_describe(tokens)}")
    if not isinstance(tokens.get("id_token"), str):
        raise LoginError("the provider sent no ID token: the client needs the openid scope")


def _describe(answer: Mapping[str, Any]) -> str:
    error = answer.get("error", "unknown error")
    description = answer.get("error_description")
    return f"{error} ({description})" if description else str(error)


def _web_url(url: str) -> str:
    """``url`` if it is https, or http on a loopback address (``kubeoidc dev``); never file: or others."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    ):
        return url
    raise LoginError(f"refusing {url}: the provider must be reached over https")


def _quote(value: str) -> str:
    # RFC 6749 §2.3.1: client credentials are form-encoded before HTTP Basic.
    return urllib.parse.quote(value, safe="")


class _LoopbackServer:
    """Receives the one authorization response on a loopback port, then stops."""

    def __init__(self, server: http.server.HTTPServer, state: str, issuer: str) -> None:
        self.server = server
        self.port = server.server_address[1]
        self.state = state
        self.issuer = issuer
        self.result: tuple[str | None, str | None] | None = None
        self.done = threading.Event()

    @classmethod
    def bind(cls, ports: Sequence[int], state: str, issuer: str) -> _LoopbackServer:
        holder: list[_LoopbackServer] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                holder[0].handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # the request line holds the code

        for port in ports:
            try:
                server = http.server.HTTPServer(("127.0.0.1", port), Handler)
            except OSError:
                continue
            holder.append(cls(server, state, issuer))
            return holder[0]
        raise LoginError(f"no free loopback port among {', '.join(map(str, ports))} for the redirect")

    def __enter__(self) -> _LoopbackServer:
        threading.Thread(target=self.server.serve_forever, name="kubeoidc-login", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        first = {name: values[0] for name, values in query.items()}
        if self.done.is_set() or first.get("state") != self.state:
            # Not our sign-in (a stale tab, a favicon): answer, but keep waiting for ours.
            self._answer(request, 400, "This is not the sign-in kubeoidc login is waiting for.")
            return
        if "iss" in first and first["iss"] != self.issuer:  # RFC 9207: refuse a mixed-up response
            self.result = (None, "the response came from another issuer")
        elif "error" in first:
            self.result = (None, f"{first['error']} ({first.get('error_description', '')})")
        else:
            self.result = (first.get("code"), None if first.get("code") else "no code in the response")
        ok = self.result[1] is None
        self._answer(
            request,
            200 if ok else 400,
            "Signed in. You can close this window and go back to the terminal."
            if ok
            else "Signing in failed: see the terminal.",
        )
        self.done.set()

    @staticmethod
    def _answer(request: http.server.BaseHTTPRequestHandler, status: int, text: str) -> None:
        body = f"<!doctype html><title>kubeoidc login</title><p>{text}</p>".encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def wait(self, timeout: float) -> str:
        if not self.done.wait(timeout):
            raise LoginError("signing in was not finished in time: run the command again")
        assert self.result is not None
        code, error = self.result
        if error is not None or code is None:
            raise LoginError(f"signing in failed: {error}")
        return code


def main(options: LoginOptions) -> int:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:
        document = credential(options, say)
    except LoginError as error:
        say(f"kubeoidc login: {error}")
        return 1
    print(json.dumps(document))
    return 0
