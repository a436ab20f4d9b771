"""The ``kubeoidc`` command: a flag for every setting, flags over variables, --log-level honoured."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from kubeoidc import cli
from kubeoidc_operator import run as operator_run
from kubeoidc_operator.settings import OperatorSettings
from kubeoidc_provider import main as provider_main
from kubeoidc_provider.settings import ProviderSettings
from support.live import free_port


@pytest.fixture
def root_logging() -> Iterator[None]:
    """kopf's configure replaces the root logger's level and handlers: put them back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, root_logging: None) -> dict[str, Any]:
    """What each service's run() was called with, instead of running it."""
    calls: dict[str, Any] = {}

    def record(name: str) -> Any:
        def run(settings: Any, *, log_level: str) -> None:
            calls[name] = (settings, log_level)

        return run

    monkeypatch.setattr(operator_run, "run", record("operator"))
    monkeypatch.setattr(provider_main, "run", record("provider"))
    return calls


@pytest.mark.parametrize(
    ("command", "names"),
    [("operator", list(OperatorSettings.model_fields)),
     ("provider", [field.name for field in ProviderSettings.fields()])],
)  # fmt: skip
def test_every_setting_has_a_flag(command: str, names: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    shown = capsys.readouterr().out
    assert names
    for name in names:
        assert f"--{name.replace('_', '-')}" in shown, name


def test_operator_flags_win_over_environment_variables(
    monkeypatch: pytest.MonkeyPatch, started: dict[str, Any]
) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_ISSUER", "https://env.example.com")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_RESYNC_INTERVAL", "30")
    monkeypatch.setenv("KUBEOIDC_OPERATOR_LIVENESS_PORT", "9001")

    assert cli.main(["operator", "--issuer", "https://flag.example.com", "--namespaces", "a,b",
                     "--key-rotation-period", "7d"]) == 0  # fmt: skip

    settings, _ = started["operator"]
    assert settings.issuer == "https://flag.example.com"
    assert settings.namespaces == ("a", "b")
    assert settings.key_rotation_period.days == 7
    assert settings.resync_interval == 30  # from the environment: no flag given
    assert settings.liveness_port == 9001


def test_provider_flags_win_over_environment_variables(
    monkeypatch: pytest.MonkeyPatch, started: dict[str, Any]
) -> None:
    monkeypatch.setenv("KUBEOIDC_PROVIDER_ISSUER", "https://env.example.com")
    monkeypatch.setenv("KUBEOIDC_PROVIDER_PORT", "9000")
    monkeypatch.setenv("KUBEOIDC_PROVIDER_CODE_TTL", "30")

    assert cli.main(["provider", "--port", "9443", "--storage-url", "memory://"]) == 0

    settings, _ = started["provider"]
    assert settings.port == 9443
    assert settings.storage_url == "memory://"
    assert settings.issuer == "https://env.example.com"
    assert settings.code_ttl == 30


def test_environment_variables_alone_still_configure_the_operator(
    monkeypatch: pytest.MonkeyPatch, started: dict[str, Any]
) -> None:
    monkeypatch.setenv("KUBEOIDC_OPERATOR_ISSUER", "https://env.example.com")
    assert cli.main(["operator"]) == 0
    assert started["operator"][0].issuer == "https://env.example.com"


def test_an_invalid_flag_value_names_the_flag_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, started: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["provider", "--issuer", "https://login.example.com", "--port", "0"]) == 2
    assert "--port / KUBEOIDC_PROVIDER_PORT" in capsys.readouterr().err
    assert "provider" not in started


@pytest.mark.parametrize(
    "argv",
    [["--log-level", "debug", "operator", "--issuer", "https://x.example.com"],
     ["operator", "--log-level", "debug", "--issuer", "https://x.example.com"]],
)  # fmt: skip
def test_log_level_reaches_the_operator_before_or_after_the_subcommand(
    argv: list[str], started: dict[str, Any]
) -> None:
    assert cli.main(argv) == 0
    assert started["operator"][1] == "DEBUG"


def test_log_level_reaches_the_provider(started: dict[str, Any]) -> None:
    assert cli.main(["provider", "--log-level", "WARNING", "--issuer", "https://x.example.com"]) == 0
    assert started["provider"][1] == "WARNING"
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize("level", ["DEBUG", "WARNING", "ERROR"])
def test_the_operator_keeps_its_log_level_after_kopf_configures_logging(
    root_logging: None, level: str
) -> None:
    # kopf's configure() sets the root level to INFO unless told debug or quiet: the level asked wins.
    operator_run.configure_logging(level)
    assert logging.getLogger().level == getattr(logging, level)


def test_the_provider_hands_its_log_level_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.update(vars(self.config)))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    settings = ProviderSettings(issuer="https://x.example.com", host="127.0.0.1", port=free_port())
    provider_main.serve(app, settings, log_level="DEBUG")
    assert seen["log_level"] == "debug"


def test_the_provider_help_names_each_variable_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["provider", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines

    assert "KUBEOIDC_PROVIDER_ISSUER (required)" in shown
    assert "KUBEOIDC_PROVIDER_PORT (default: 8080)" in shown
    assert "KUBEOIDC_PROVIDER_NAMESPACES (default: none)" in shown
    assert "KUBEOIDC_PROVIDER_REDIS_PASSWORD (default: none)" in shown
    assert "KUBEOIDC_PROVIDER_REQUIRE_PKCE (default: True)" in shown
