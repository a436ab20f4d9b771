"""The ``kubeoidc`` command: one entry point for the operator, the provider, the dev mode and tools.

Each subcommand imports only its own side, so ``kubeoidc provider`` never loads kopf.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeoidc", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("operator", help="reconcile OIDCClients into Secrets (settings: KUBEOIDC_OPERATOR_*)")
    commands.add_parser(
        "provider", help="serve OpenID Connect for the clients (settings: KUBEOIDC_PROVIDER_*)"
    )
    dev = commands.add_parser("dev", help="run everything locally from a folder of OIDCClient manifests")
    dev.add_argument(
        "folder", nargs="?", default="examples", type=Path, help="manifests (default: examples/)"
    )
    dev.add_argument(
        "--state", default=Path(".kubeoidc"), type=Path, help="state folder (default: .kubeoidc/)"
    )
    dev.add_argument("--port", default=8080, type=int, help="port on 127.0.0.1 (default: 8080)")
    keys = commands.add_parser("keys", help="signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = key_commands.add_parser("generate", help="print a new private JWKS for the provider's Secret")
    generate.add_argument("--alg", default="RS256", choices=["RS256", "ES256", "EdDSA"])
    commands.add_parser("hash-password", help="read a password on stdin, print its argon2id hash")

    args = parser.parse_args(argv)
    if args.command == "operator":
        # kopf installs its own handler (per-object context in every line); a second would double them.
        logging.getLogger().setLevel(args.log_level)
    else:
        logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except ValidationError as error:
        prefix = f"KUBEOIDC_{args.command.upper()}_"
        print(f"kubeoidc {args.command}: invalid settings:\n{_describe(error, prefix)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "operator":
        from kubeoidc_operator.run import run as run_operator
        from kubeoidc_operator.settings import SettingsError, load_settings

        try:
            settings = load_settings()
        except SettingsError as error:
            print(f"kubeoidc operator: {error}", file=sys.stderr)
            return 2
        run_operator(settings)
        return 0
    if args.command == "provider":
        from kubeoidc_provider.main import ConfigurationError
        from kubeoidc_provider.main import run as run_provider
        from kubeoidc_provider.settings import ProviderSettings

        try:
            run_provider(ProviderSettings())  # type: ignore[call-arg]
        except ConfigurationError as error:
            print(f"kubeoidc provider: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "dev":
        from kubeoidc.dev import run_dev

        return run_dev(args.folder, state_dir=args.state, port=args.port)
    if args.command == "keys":
        from kubeoidc_provider.keys import generate_jwks

        print(json.dumps(generate_jwks(args.alg), indent=2))
        return 0
    if args.command == "hash-password":
        from kubeoidc_provider.users import hash_password

        password = sys.stdin.readline().rstrip("\n")
        if not password:
            print("kubeoidc hash-password: no password on stdin", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    raise AssertionError(args.command)


def _describe(error: ValidationError, prefix: str) -> str:
    """One line per problem, naming the environment variable to fix."""
    lines = []
    for problem in error.errors():
        field = "_".join(str(part) for part in problem["loc"]).upper()
        message = "is required" if problem["type"] == "missing" else problem["msg"]
        lines.append(f"  {prefix}{field}: {message}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
