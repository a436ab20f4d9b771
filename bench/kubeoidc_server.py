"""Launches the kubeoidc provider for the benchmark, built the way the tests build it, without a cluster.

The parts are the production ones (``build_provider``, ``create_app``, and ``main.serve``: uvicorn with
uvloop and httptools, no access log; with ``--workers N``, forked workers on one socket as ``kubeoidc
provider --workers N`` runs them): a static client registry fed what a cluster's provider gets, OIDCClients
with the status the operator writes (the client ID, the Secret's name and the published credentials: the
client ID and the SHA-256 of the secret) and no Secret (in a cluster the provider reads none), one user,
SQLite state in a temporary directory (``--state memory``: in memory, as the peer keeps its own;
``--state redis``: in the Redis ``--redis-url`` names) and
freshly generated keys, one per algorithm (RS256 the default, as ``kubeoidc keys generate`` makes them).
``--clients`` names the configurations to register, one client each (``ID-name``, the same secret): the
access token format and algorithm and the ID token algorithm. ``--extra-clients N`` feeds N more clients
into the registry before serving, to measure the process's memory with a large registry (the objects are
built and fed one at a time, as a watch delivers them, so only what the registry keeps stays in memory).

Usage: python bench/kubeoidc_server.py --port P --client-id ID --client-secret S --redirect-uri URI
       --state-dir DIR [--state sqlite|memory|redis] [--redis-url URL] [--clients JSON] [--workers N]
       [--extra-clients N]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import secrets
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The client objects and the user are the tests' own (tests/support), so both describe one provider.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import kubeoidc_contract as contract
from kubeoidc_contract.jwks import SIGNING_ALGS
from kubeoidc_provider.app import build_provider, create_app
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.listeners import listen
from kubeoidc_provider.main import serve
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory
from kubeoidc_provider.workers import serve_forked
from support.objects import client_objects
from support.provider import users_yaml

API_SCOPE = "api:read"
SCOPES = ["openid", "profile", "email", API_SCOPE]
GRANT_TYPES = ["authorization_code", "client_credentials"]


def bench_oidcclient(
    name: str, *, client_id: str, secret: str, redirect_uri: str, issuer: str
) -> dict[str, Any]:
    """One client's OIDCClient as the tests build it, with the credentials the operator publishes in its
    status (``published_credentials``: the client ID and the secret's SHA-256, built here from the
    contract so that the measured process loads none of the operator's modules)."""
    oidcclient, _ = client_objects(
        name,
        client_id=client_id,
        secret=secret,
        redirect_uris=[redirect_uri],
        grant_types=GRANT_TYPES,
        scopes=SCOPES,
        namespace="bench",
        issuer=issuer,
        uid=f"uid-{name}",
    )
    oidcclient["status"][contract.STATUS_CREDENTIALS] = {
        contract.CREDENTIALS_CLIENT_ID: client_id,
        contract.CREDENTIALS_SECRET_HASH: hashlib.sha256(secret.encode()).hexdigest(),
    }
    return oidcclient


def extra_clients(count: int, issuer: str) -> Iterator[dict[str, Any]]:
    for index in range(count):
        name = f"app-{index:05d}"
        yield bench_oidcclient(
            name,
            client_id=f"{name}-{secrets.token_hex(8)}",
            secret=secrets.token_urlsafe(32),
            redirect_uri=f"https://{name}.example.com/callback",
            issuer=issuer,
        )


def storage_url(args: argparse.Namespace) -> str:
    """Where the provider keeps its state, as ``--state`` says."""
    if args.state == "memory":
        return "memory://"
    if args.state == "redis":
        if not args.redis_url:
            sys.exit("--state redis needs --redis-url")
        return str(args.redis_url)
    return f"sqlite:///{args.state_dir}/kubeoidc-state.db"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--extra-clients", type=int, default=0)
    parser.add_argument(
        "--clients",
        default="[]",
        help='JSON list of {"name", "format", "accessAlg", "idAlg"}; none: one client, the defaults',
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--state",
        choices=("sqlite", "memory", "redis"),
        default="sqlite",
        help="sqlite: a file in --state-dir (durable); memory: a dict in the one process (as the peer's "
        "Map); redis: the Redis at --redis-url",
    )
    parser.add_argument("--redis-url", help="with --state redis: the Redis to keep the state in")
    args = parser.parse_args(argv)

    issuer = f"http://127.0.0.1:{args.port}"
    settings = ProviderSettings(
        issuer=issuer,
        host="127.0.0.1",
        port=args.port,
        storage_url=storage_url(args),
        access_token_ttl=600,
        # The harness mints thousands of codes before a run: give them time (the cost per code is the same).
        code_ttl=600,
    )
    configs = json.loads(args.clients)
    jwks = generate_jwks("RS256", also=SIGNING_ALGS)

    def serve_one(sockets: list[socket.socket] | None) -> None:
        registry = ClientRegistry()
        for config in configs or [None]:
            client_id = f"{args.client_id}-{config['name']}" if config else args.client_id
            oidcclient = bench_oidcclient(
                f"bench-{config['name']}" if config else "bench",
                client_id=client_id,
                secret=args.client_secret,
                redirect_uri=args.redirect_uri,
                issuer=issuer,
            )
            if config:
                oidcclient["spec"].update(
                    accessTokenFormat=config["format"],
                    accessTokenSignedResponseAlg=config["accessAlg"],
                    idTokenSignedResponseAlg=config["idAlg"],
                )
            registry.upsert_oidcclient(oidcclient)
        for oidcclient in extra_clients(args.extra_clients, issuer):
            registry.upsert_oidcclient(oidcclient)
        registry.mark_ready()
        gc.collect()
        provider = build_provider(
            settings,
            registry=registry,
            users=StaticUserDirectory.from_yaml(users_yaml()),
            keys=KeySet.from_jwks(jwks),
            storage=open_storage(settings.storage_url),
        )
        if len(registry) != len(configs or [None]) + args.extra_clients:
            sys.exit("a benchmark client was not registered")
        print(f"clients {len(registry)}", flush=True)
        serve(create_app(provider), settings, sockets=sockets)

    if args.workers == 1:
        serve_one(None)
    else:
        sys.exit(serve_forked(args.workers, [listen("127.0.0.1", args.port)], serve_one))


if __name__ == "__main__":
    main()
