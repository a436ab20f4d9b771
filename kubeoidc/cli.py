"""The ``kubeoidc`` command: one entry point for the operator, the provider, the dev mode and tools.

Each subcommand imports only its own side, so ``kubeoidc provider`` never loads kopf, nor pydantic
(only the operator's settings use it: the settings flags are built for the subcommand run alone).
``operator`` and ``provider`` take a flag for every setting (``--issuer``, ``--storage-url``, ...); a flag
wins over its environment variable (``KUBEOIDC_OPERATOR_*``, ``KUBEOIDC_PROVIDER_*``), which keeps working
alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubeoidc_contract.jwks import DEFAULT_SIGNING_ALG, SIGNING_ALGS

if TYPE_CHECKING:
    from kubeoidc_provider.settings import SettingsError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The environment prefix of each service's settings.
_SETTINGS = {"operator": "KUBEOIDC_OPERATOR_", "provider": "KUBEOIDC_PROVIDER_"}
_FLAG_PREFIX = "setting_"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(_command_of(argv))
    args = parser.parse_args(argv)
    if args.command == "operator":
        # kopf installs its own handler (per-object context in every line) when it starts; a second
        # would double every line. The level is set then too (kubeoidc_operator.run).
        logging.getLogger().setLevel(args.log_level)
    else:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger().setLevel(args.log_level)  # also when logging had a handler already
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: the first word that is not ``--log-level`` or its value."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s settings flags are added, so only its settings class is imported
    (``kubeoidc provider`` must not load the operator's, which need pydantic)."""
    parser = argparse.ArgumentParser(prog="kubeoidc", description=__doc__.splitlines()[0])
    log_level: dict[str, Any] = {"type": str.upper, "choices": LOG_LEVELS, "help": "default: INFO"}
    parser.add_argument("--log-level", default="INFO", **log_level)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Also after the subcommand (`kubeoidc operator --log-level debug`); SUPPRESS keeps the value above.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--log-level", default=argparse.SUPPRESS, **log_level)

    operator = commands.add_parser(
        "operator",
        parents=[after],
        help="reconcile OIDCClients into Secrets (settings: flags or KUBEOIDC_OPERATOR_*)",
    )
    if command == "operator":
        _add_settings_flags(operator, _operator_fields(), "operator")
    provider = commands.add_parser(
        "provider",
        parents=[after],
        help="serve OpenID Connect for the clients (settings: flags or KUBEOIDC_PROVIDER_*)",
    )
    if command == "provider":
        _add_settings_flags(provider, _provider_fields(), "provider")
    dev = commands.add_parser(
        "dev", parents=[after], help="run everything locally from a folder of OIDCClient manifests"
    )
    dev.add_argument(
        "folder", nargs="?", default="examples", type=Path, help="manifests (default: examples/)"
    )
    dev.add_argument(
        "--state", default=Path(".kubeoidc"), type=Path, help="state folder (default: .kubeoidc/)"
    )
    dev.add_argument("--port", default=8080, type=int, help="port on 127.0.0.1 (default: 8080)")
    dev.add_argument(
        "--health-port",
        type=int,
        help="port on 127.0.0.1 of /healthz, /readyz and /metrics (default: the port after --port)",
    )
    dev.add_argument(
        "--tls",
        action="store_true",
        help="serve https from a local CA made in the state folder (kube-apiserver needs https)",
    )
    _add_login(commands, after, full=command == "login")
    _add_cluster_config(commands, after, full=command == "cluster-config")
    keys = commands.add_parser("keys", parents=[after], help="signing keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = key_commands.add_parser(
        "generate",
        help="print a new private JWKS for the provider's Secret: one key per algorithm "
        f"({', '.join(SIGNING_ALGS)}), --alg's the default",
    )
    generate.add_argument(
        "--alg", default=DEFAULT_SIGNING_ALG, choices=SIGNING_ALGS, help="the default algorithm"
    )
    generate.add_argument(
        "--only", action="store_true", help="one key, for --alg only (clients naming another are not served)"
    )
    commands.add_parser(
        "hash-password", parents=[after], help="read a password on stdin, print its argon2id hash"
    )
    return parser


def _add_login(commands: Any, after: argparse.ArgumentParser, *, full: bool) -> None:
    """The ``login`` subcommand; its flags only when it runs (``full``): their defaults come from
    ``kubeoidc.login``, whose imports (an HTTP server, a browser opener) other commands need not load."""
    login = commands.add_parser(
        "login",
        parents=[after],
        help="kubectl exec credential plugin: sign in, print an ExecCredential with an ID token",
    )
    if not full:
        return
    from kubeoidc.login import DEFAULT_PORTS, DEFAULT_SCOPES, GRANTS, REFRESH_BEFORE

    login.add_argument("--issuer", required=True, help="the provider's issuer URL (https)")
    login.add_argument("--client-id", required=True, help="the cluster login client's ID")
    login.add_argument("--client-secret", help="for a confidential client (a public one needs none)")
    login.add_argument("--certificate-authority", type=Path, help="PEM CA the issuer's certificate chains to")
    login.add_argument(
        "--scopes", default=" ".join(DEFAULT_SCOPES), help=f"default: {' '.join(DEFAULT_SCOPES)}"
    )
    login.add_argument(
        "--grant",
        choices=GRANTS,
        default="auto",
        help="code: browser and loopback redirect; device: a code to enter elsewhere; auto (default): "
        "code, or device when no browser can open",
    )
    login.add_argument(
        "--listen-port",
        type=int,
        action="append",
        help="loopback port for the redirect, tried in order "
        f"(default: {', '.join(map(str, DEFAULT_PORTS))})",
    )
    login.add_argument("--no-browser", action="store_true", help="print the URL, open no browser")
    login.add_argument("--token-cache-dir", type=Path, help="default: $XDG_CONFIG_HOME/kubeoidc/tokens")
    login.add_argument(
        "--refresh-before",
        type=int,
        default=REFRESH_BEFORE,
        help=f"refresh a cached token with fewer seconds left than this (default: {REFRESH_BEFORE})",
    )


def _add_cluster_config(commands: Any, after: argparse.ArgumentParser, *, full: bool) -> None:
    """The ``cluster-config`` subcommand; its flags only when it runs (``full``), as for ``login``."""
    config = commands.add_parser(
        "cluster-config",
        parents=[after],
        help="print kube-apiserver's AuthenticationConfiguration and the kubeconfig user for kubeoidc login",
    )
    if not full:
        return
    from kubeoidc.cluster_config import DEFAULT_PREFIX, USERNAME_CLAIMS

    config.add_argument("--issuer", required=True, help="the provider's issuer URL (https)")
    config.add_argument("--client-id", required=True, help="the cluster login client's ID (the audience)")
    config.add_argument("--certificate-authority", type=Path, help="PEM CA of the issuer's certificate")
    config.add_argument("--username-claim", choices=USERNAME_CLAIMS, default="email", help="default: email")
    config.add_argument("--username-prefix", help=f"default: none for email, {DEFAULT_PREFIX!r} for sub")
    config.add_argument("--groups-prefix", default=DEFAULT_PREFIX, help=f"default: {DEFAULT_PREFIX}")
    config.add_argument("--user", default="oidc", help="the kubeconfig user's name (default: oidc)")
    config.add_argument(
        "--only",
        choices=("authentication", "kubeconfig"),
        help="print only kube-apiserver's AuthenticationConfiguration, or only the kubeconfig user",
    )


#: A setting as the flags show it: its name and the help's "(required)" / "(default: ...)".
SettingFlag = tuple[str, str]


def _default_text(required: bool, default: Any) -> str:
    if required:
        return "required"
    return f"default: {default}" if default not in (None, "", ()) else "default: none"


def _operator_fields() -> list[SettingFlag]:
    from pydantic_core import PydanticUndefined

    from kubeoidc_operator.settings import OperatorSettings

    return [
        (
            name,
            _default_text(field.is_required(), None if field.default is PydanticUndefined else field.default),
        )
        for name, field in OperatorSettings.model_fields.items()
    ]


def _provider_fields() -> list[SettingFlag]:
    from kubeoidc_provider.settings import ProviderSettings

    return [(field.name, _default_text(field.required, field.default)) for field in ProviderSettings.fields()]


def _add_settings_flags(parser: argparse.ArgumentParser, fields: list[SettingFlag], command: str) -> None:
    """``--<field>`` for every field of the service's settings, each named after its variable."""
    prefix = _SETTINGS[command]
    group = parser.add_argument_group("settings", f"each wins over its environment variable {prefix}<NAME>")
    for name, default in fields:
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"{_FLAG_PREFIX}{name}",
            metavar=name.upper(),
            help=f"{prefix}{name.upper()} ({default})",
        )


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, as keyword arguments: the settings rank those over variables."""
    return {
        key.removeprefix(_FLAG_PREFIX): value
        for key, value in vars(args).items()
        if key.startswith(_FLAG_PREFIX) and value is not None
    }


def _run(args: argparse.Namespace) -> int:
    if args.command == "operator":
        from kubeoidc_operator.run import run as run_operator
        from kubeoidc_operator.settings import SettingsError, load_settings

        try:
            settings = load_settings(**settings_overrides(args))
        except SettingsError as error:
            print(f"kubeoidc operator: {error}", file=sys.stderr)
            return 2
        run_operator(settings, log_level=args.log_level)
        return 0
    if args.command == "provider":
        from kubeoidc_provider.main import ConfigurationError
        from kubeoidc_provider.main import run as run_provider
        from kubeoidc_provider.settings import ProviderSettings
        from kubeoidc_provider.settings import SettingsError as InvalidSettings

        try:
            provider_settings = ProviderSettings(**settings_overrides(args))
        except InvalidSettings as error:
            print(f"kubeoidc provider: invalid settings:\n{_describe(error)}", file=sys.stderr)
            return 2
        try:
            run_provider(provider_settings, log_level=args.log_level)
        except ConfigurationError as error:
            print(f"kubeoidc provider: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "dev":
        from kubeoidc.dev import run_dev

        return run_dev(
            args.folder, state_dir=args.state, port=args.port, health_port=args.health_port, tls=args.tls
        )
    if args.command == "login":
        return _login(args)
    if args.command == "cluster-config":
        from kubeoidc.cluster_config import render

        if not args.issuer.startswith("https://"):
            print("kubeoidc cluster-config: kube-apiserver accepts only an https issuer", file=sys.stderr)
            return 2
        try:
            print(
                render(
                    issuer=args.issuer.rstrip("/"),
                    client_id=args.client_id,
                    ca_file=args.certificate_authority.resolve() if args.certificate_authority else None,
                    username_claim=args.username_claim,
                    username_prefix=args.username_prefix,
                    groups_prefix=args.groups_prefix,
                    user_name=args.user,
                    only=args.only,
                ),
                end="",
            )
        except OSError as error:
            print(f"kubeoidc cluster-config: cannot read the CA: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "keys":
        from kubeoidc_provider.keys import generate_jwks

        also = () if args.only else SIGNING_ALGS
        print(json.dumps(generate_jwks(args.alg, also=also), indent=2))
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


def _login(args: argparse.Namespace) -> int:
    from kubeoidc.login import DEFAULT_PORTS, LoginOptions, default_cache_dir
    from kubeoidc.login import main as login_main

    return login_main(
        LoginOptions(
            issuer=args.issuer.rstrip("/"),
            client_id=args.client_id,
            client_secret=args.client_secret,
            scopes=tuple(args.scopes.split()),
            ca_file=args.certificate_authority,
            grant=args.grant,
            ports=tuple(args.listen_port or DEFAULT_PORTS),
            cache_dir=args.token_cache_dir or default_cache_dir(),
            open_browser=not args.no_browser,
            refresh_before=args.refresh_before,
        )
    )


def _describe(error: SettingsError) -> str:
    """One line per problem, naming the flag and the environment variable to fix."""
    lines = []
    for problem in error.problems:
        if problem.field is None:  # a rule across fields: its message names them
            lines.append(f"  {problem.message}")
        else:
            flag = problem.field.replace("_", "-")
            lines.append(f"  --{flag} / {error.prefix}{problem.field.upper()}: {problem.message}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
