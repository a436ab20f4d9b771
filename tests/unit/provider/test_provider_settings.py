"""The provider's settings: keyword arguments over ``KUBEOIDC_PROVIDER_*`` variables, strings parsed to
each field's type, bounds and rules checked, every problem named by its variable, the secret hidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeoidc_provider.settings import ProviderSettings, Secret, SettingsError
from support.live import free_port
from support.provider import ISSUER, signing_jwks

PREFIX = "KUBEOIDC_PROVIDER_"


def problems_of(**values: object) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        ProviderSettings(**values)  # type: ignore[arg-type]  # the wrong types are the point
    return [raised.value.describe(problem) for problem in raised.value.problems]


def test_variables_are_parsed_to_each_fields_type(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ISSUER": "https://login.example.com/", "PORT": " 8443 ", "NAMESPACES": "a, b,,c",
                        "USERS_FILE": "/etc/users.yaml", "REQUIRE_PKCE": "off", "BODY_READ_TIMEOUT": "2.5",
                        "SIGNING_KEYS_FILE": ""}.items():  # fmt: skip
        monkeypatch.setenv(PREFIX + name, value)

    settings = ProviderSettings()  # type: ignore[call-arg]  # the issuer comes from the environment

    assert settings.issuer == "https://login.example.com"  # the trailing slash is dropped
    assert settings.port == 8443
    assert settings.namespaces == ["a", "b", "c"]
    assert settings.users_file == Path("/etc/users.yaml")
    assert settings.require_pkce is False
    assert settings.body_read_timeout == 2.5
    assert settings.signing_keys_file is None  # an empty variable leaves an optional path unset
    assert settings.health_port == 9090  # the default


def test_keyword_arguments_win_over_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "PORT", "9000")
    monkeypatch.setenv(PREFIX + "CODE_TTL", "30")

    settings = ProviderSettings(issuer=ISSUER, port=9443)

    assert (settings.port, settings.code_ttl) == (9443, 30)


@pytest.mark.parametrize(
    ("values", "problem"),
    [({"port": 0}, f"{PREFIX}PORT: must be at least 1, not 0"),
     ({"port": "65536"}, f"{PREFIX}PORT: must be at most 65535, not 65536"),
     ({"code_ttl": "ten"}, f"{PREFIX}CODE_TTL: must be an integer, not 'ten'"),
     ({"body_read_timeout": 0}, f"{PREFIX}BODY_READ_TIMEOUT: must be more than 0, not 0"),
     ({"require_pkce": "maybe"}, f"{PREFIX}REQUIRE_PKCE: must be true or false, not 'maybe'"),
     ({"workers": 65}, f"{PREFIX}WORKERS: must be at most 64, not 65"),
     ({"signing_keys_secret": "no-namespace"}, f"{PREFIX}SIGNING_KEYS_SECRET: must be namespace/name"),
     ({"forwarded_allow_ips": "10.0.0.0/33"}, f"{PREFIX}FORWARDED_ALLOW_IPS: '10.0.0.0/33' is not an IP"),
     ({"port": 9090}, "health_port and port are both 9090"),
     ({"tls_cert_file": "tls.crt"}, "tls_cert_file and tls_key_file go together")],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_its_variable(values: dict[str, object], problem: str) -> None:
    (found,) = problems_of(issuer=ISSUER, **values)
    assert found.startswith(problem), found


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PREFIX + "ISSUER", raising=False)

    assert problems_of(port="x", login_attempts=0) == [
        f"{PREFIX}ISSUER: is required",
        f"{PREFIX}PORT: must be an integer, not 'x'",
        f"{PREFIX}LOGIN_ATTEMPTS: must be at least 1, not 0",
    ]


def test_an_unknown_keyword_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="no setting prot"):
        ProviderSettings(issuer=ISSUER, prot=8080)  # type: ignore[call-arg]


def test_the_redis_password_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "REDIS_PASSWORD", "s3cret-from-env")

    settings = ProviderSettings(issuer=ISSUER)

    assert settings.redis_password == Secret("s3cret-from-env")
    assert settings.redis_password.get_secret_value() == "s3cret-from-env"
    for shown in (repr(settings), str(settings), repr(settings.redis_password), str(settings.redis_password)):
        assert "s3cret" not in shown


def test_the_provider_command_never_imports_pydantic(tmp_path: Path) -> None:
    # A fresh interpreter runs `kubeoidc provider` up to the point the server would listen: settings,
    # keys, state and the app are all built, and the modules loaded by then are what it serves with.
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(signing_jwks()))
    # The registry's watch is started by the server (never here): a kubeconfig naming any API will do.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))  # fmt: skip
    script = """
import sys, uvicorn
from kubeoidc.cli import main
def listen(self, sockets=None):
    print("LOADED", " ".join(sorted(name for name in sys.modules if name.startswith("pydantic"))))
uvicorn.Server.run = listen
sys.exit(main(sys.argv[1:]))
"""
    argv = [sys.executable, "-c", script, "provider", f"--issuer={ISSUER}", f"--port={free_port()}",
            f"--health-port={free_port()}",
            f"--signing-keys-file={keys}", "--storage-url=memory://", "--registry-stale-after=0"]  # fmt: skip
    environment = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=environment)

    assert result.returncode == 0, result.stderr
    assert "LOADED \n" in result.stdout, result.stdout


def test_bounds_are_shown_as_written() -> None:
    assert problems_of(issuer=ISSUER, refresh_token_ttl=5, body_read_timeout="0.0") == [
        f"{PREFIX}REFRESH_TOKEN_TTL: must be at least 60, not 5",
        f"{PREFIX}BODY_READ_TIMEOUT: must be more than 0, not 0",
    ]
