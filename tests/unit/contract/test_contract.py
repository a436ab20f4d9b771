"""The contract package: a leaf that loads nothing heavy, and the one home of the rules both sides share."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys

import helm_python as helm
import pytest

import kubeoidc_contract as contract
from kubeoidc_contract import crd, split_object_ref
from kubeoidc_contract.durations import SPEC_UNITS, duration_pattern, parse_duration
from kubeoidc_contract.issuer import check_issuer
from support.chart_rendering import REPO, render, with_issuer


def test_importing_the_whole_contract_loads_no_other_part_of_the_project_and_nothing_heavy() -> None:
    forbidden = ("kubeoidc", "kubeoidc_operator", "kubeoidc_provider", "kopf", "kubernetes", "starlette",
                 "authlib", "joserfc", "redis", "celpy", "pydantic")  # fmt: skip
    modules = "kubeoidc_contract, kubeoidc_contract.crd, kubeoidc_contract.durations, "
    modules += "kubeoidc_contract.issuer, kubeoidc_contract.jwks"
    code = (
        f"import sys, {modules}; kubeoidc_contract.crd.grant_types(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_crd_grace_period_is_written_in_the_one_duration_grammar() -> None:
    assert crd.spec_pattern("secretRotation", "gracePeriod").pattern == duration_pattern(SPEC_UNITS)
    assert parse_duration(crd.default_grace_period()) == datetime.timedelta(0)


def test_the_crd_lists_read_as_the_crd_writes_them() -> None:
    assert crd.grant_types() == (
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    )
    assert crd.auth_methods() == (
        "client_secret_basic",
        "client_secret_post",
        "none",
        contract.SERVICE_ACCOUNT_AUTH_METHOD,
        contract.PRIVATE_KEY_JWT_AUTH_METHOD,
    )
    assert crd.default_grant_types() == frozenset({"authorization_code"})
    assert crd.default_auth_method() == "client_secret_basic"
    assert crd.default_scopes() == ("openid", "profile", "email")
    assert crd.spec_pattern("clientID").fullmatch("abcdefgh")
    assert not crd.spec_pattern("clientID").fullmatch("short")


def test_the_values_the_provider_serves_with_are_written_as_the_crd_writes_them() -> None:
    # The contract writes these out so that a provider never parses YAML: each must be the CRD's own.
    spec = crd.openapi_schema()["properties"]["spec"]["properties"]

    assert crd.grant_types() == tuple(spec["grantTypes"]["items"]["enum"])
    assert crd.default_grant_types() == frozenset(spec["grantTypes"]["default"])
    assert crd.auth_methods() == tuple(spec["tokenEndpointAuthMethod"]["enum"])
    assert crd.default_auth_method() == spec["tokenEndpointAuthMethod"]["default"]
    assert crd.default_scopes() == tuple(spec["scopes"]["default"])
    assert crd.id_token_claims() == tuple(spec["idTokenClaims"]["items"]["enum"])
    assert crd.access_token_formats() == tuple(spec["accessTokenFormat"]["enum"])
    assert crd.default_access_token_format() == spec["accessTokenFormat"]["default"]


def test_reading_the_values_the_provider_serves_with_never_loads_yaml() -> None:
    readers = ("grant_types", "default_grant_types", "auth_methods", "default_auth_method", "default_scopes",
               "id_token_claims", "access_token_formats", "default_access_token_format")  # fmt: skip
    code = (
        "import sys; from kubeoidc_contract import crd; "
        f"[getattr(crd, name)() for name in {readers!r}]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'yaml'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_identity_source_spec_gets_every_default_of_the_crd_where_its_parent_is_given() -> None:
    schema = crd.identity_source_schema()["properties"]["spec"]

    def defaults_of(node: dict[str, object], path: str = "") -> set[str]:
        # Every path to a default in the CRD, as a dotted path ("[]" for a list's items).
        found = {path} if "default" in node else set()
        for name, child in node.get("properties", {}).items():  # type: ignore[attr-defined]
            found |= defaults_of(child, f"{path}.{name}" if path else name)
        if "items" in node:
            found |= defaults_of(node["items"], f"{path}.[]")  # type: ignore[arg-type]
        return found

    def present(value: object, path: list[str]) -> bool:
        if not path:
            return True
        if path[0] == "[]":
            return isinstance(value, list) and all(present(item, path[1:]) for item in value)
        return isinstance(value, dict) and path[0] in value and present(value[path[0]], path[1:])

    def skeleton(node: dict[str, object]) -> object:
        # Every object and list present (a list with one item), no value given: only defaults fill it.
        if node.get("type") == "array" and "items" in node:
            return [skeleton(node["items"])]  # type: ignore[arg-type]
        if node.get("type") == "object":
            properties: dict[str, dict[str, object]] = node.get("properties", {})  # type: ignore[assignment]
            return {name: skeleton(child) for name, child in properties.items()
                    if child.get("type") in ("object", "array")}  # fmt: skip
        return None

    filled = crd.identity_source_spec(skeleton(schema))  # type: ignore[arg-type]

    expected = defaults_of(schema)
    assert expected, "the IdentitySource CRD has defaults"
    assert all(present(filled, path.split(".")) for path in expected), expected


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("1d12h", 129600), ("90m", 5400)])
def test_settings_durations_may_count_days(text: str, seconds: int) -> None:
    assert parse_duration(text, units="dhms") == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "issuer", ["https://login.example.com", "http://127.0.0.1:8080/oidc", "http://[::1]"]
)
def test_an_acceptable_issuer_is_kept_as_given(issuer: str) -> None:
    assert check_issuer(issuer) == issuer


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        ("login.example.com", "absolute"),
        ("ftp://login.example.com", "absolute"),
        ("http://login.example.com", "https"),
        ("https://login.example.com/?a=b", "query"),
        ("https://login.example.com/#top", "fragment"),
    ],
)
def test_an_issuer_relying_parties_could_not_use_is_refused(issuer: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_issuer(issuer)


@pytest.mark.parametrize("ref", ["name", "/name", "ns/", "a/b/c"])
def test_an_object_reference_needs_a_namespace_and_a_name(ref: str) -> None:
    with pytest.raises(ValueError, match="namespace/name"):
        split_object_ref(ref)
    assert split_object_ref("kubeoidc/signing-keys") == ("kubeoidc", "signing-keys")


def test_the_chart_reads_durations_in_the_one_grammar() -> None:
    schema = json.loads((REPO / "charts" / "kubeoidc" / "values.schema.json").read_text())
    keys = schema["properties"]["signingKeys"]["properties"]
    samples = ["0s", "30d", "1d12h", "90m", "1h0m5s", "", "1.5h", "-1s", "h", "30 d", "1w", "5"]
    for name in ("rotationPeriod", "publishAhead", "retireAfter"):
        chart = re.compile(keys[name]["pattern"])
        for text in samples:
            assert bool(chart.match(text)) == bool(re.fullmatch(duration_pattern("dhms"), text)), (name, text)


@pytest.mark.parametrize(
    ("publish_ahead", "rotation_period"),
    [("1d", "24h"), ("86399s", "1d"), ("1h30m", "90m"), ("1d1s", "1d"), ("2d", "47h59m60s")],
)
def test_the_charts_duration_helper_agrees_with_the_contract(
    publish_ahead: str, rotation_period: str
) -> None:
    # The chart refuses to publish a key no sooner than it signs, comparing with its own helper.
    values = with_issuer(signingKeys={"publishAhead": publish_ahead, "rotationPeriod": rotation_period})
    refused = parse_duration(publish_ahead, units="dhms") >= parse_duration(rotation_period, units="dhms")
    if refused:
        with pytest.raises(helm.HelmRenderError, match="must be shorter than"):
            render(values)
    else:
        render(values)
