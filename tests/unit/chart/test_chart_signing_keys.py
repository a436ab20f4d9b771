"""The provider's signing keys: kept and rotated by the operator (the default), or made by hand."""

from __future__ import annotations

import helm_python as helm
import pytest

from support.chart_rendering import container_of, env_of, objects, objects_of, pod_spec, render, with_issuer

KEY_SETTINGS = {
    "KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET",
    "KUBEOIDC_OPERATOR_KEY_ALG",
    "KUBEOIDC_OPERATOR_KEY_ROTATION_PERIOD",
    "KUBEOIDC_OPERATOR_KEY_PUBLISH_AHEAD",
    "KUBEOIDC_OPERATOR_KEY_RETIRE_AFTER",
}


def test_managed_keys_live_in_one_secret_that_both_roles_name_alike() -> None:
    objs = objects("default")
    operator = env_of(container_of(objs, "operator"))
    provider = env_of(container_of(objs, "provider"))

    assert operator["KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET"] == "auth/kubeoidc-signing-keys"
    assert provider["KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET"] == "auth/kubeoidc-signing-keys"
    assert "KUBEOIDC_PROVIDER_SIGNING_KEYS_FILE" not in provider


def test_managed_keys_are_not_mounted_so_the_provider_follows_the_secret_itself() -> None:
    objs = objects("default")
    volumes = pod_spec(objs, "provider")["volumes"]

    assert "signing-keys" not in {volume["name"] for volume in volumes}
    assert all(volume.get("secret", {}).get("secretName") != "kubeoidc-signing-keys" for volume in volumes)


def test_hand_made_keys_are_mounted_from_the_named_secret_and_the_operator_leaves_them_alone() -> None:
    objs = objects_of(render(with_issuer(signingKeys={"managed": False, "secretName": "my-jwks"})))
    container = container_of(objs, "provider")
    provider = env_of(container)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(objs, "provider")["volumes"]}

    assert provider["KUBEOIDC_PROVIDER_SIGNING_KEYS_FILE"] == "/etc/kubeoidc/signing-keys/jwks.json"
    assert "KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET" not in provider
    assert mounts["signing-keys"] == {
        "name": "signing-keys",
        "mountPath": "/etc/kubeoidc/signing-keys",
        "readOnly": True,
    }
    assert volumes["signing-keys"]["secret"]["secretName"] == "my-jwks"
    assert volumes["signing-keys"]["secret"]["items"] == [{"key": "jwks.json", "path": "jwks.json"}]
    assert not KEY_SETTINGS & set(env_of(container_of(objs, "operator")))


def test_the_rotation_schedule_reaches_the_operator() -> None:
    keys = {"alg": "EdDSA", "rotationPeriod": "30d", "publishAhead": "36h", "retireAfter": "2h"}
    operator = env_of(container_of(objects_of(render(with_issuer(signingKeys=keys))), "operator"))

    assert {name: operator[name] for name in KEY_SETTINGS} == {
        "KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET": "auth/kubeoidc-signing-keys",
        "KUBEOIDC_OPERATOR_KEY_ALG": "EdDSA",
        "KUBEOIDC_OPERATOR_KEY_ROTATION_PERIOD": "30d",
        "KUBEOIDC_OPERATOR_KEY_PUBLISH_AHEAD": "36h",
        "KUBEOIDC_OPERATOR_KEY_RETIRE_AFTER": "2h",
    }


@pytest.mark.parametrize(
    ("publish_ahead", "rotation_period"), [("24h", "1d"), ("2d", "47h59m"), ("1h30m", "90m")]
)
def test_publishing_a_key_no_sooner_than_it_signs_stops_the_render(
    publish_ahead: str, rotation_period: str
) -> None:
    keys = {"publishAhead": publish_ahead, "rotationPeriod": rotation_period}

    with pytest.raises(helm.HelmRenderError, match=r"signingKeys\.publishAhead .* must be shorter than"):
        render(with_issuer(signingKeys=keys))


def test_the_schedule_is_not_checked_for_hand_made_keys() -> None:
    render(with_issuer(signingKeys={"managed": False, "publishAhead": "30d", "rotationPeriod": "1d"}))


def test_a_publish_ahead_just_shorter_than_the_period_renders() -> None:
    render(with_issuer(signingKeys={"publishAhead": "23h59m59s", "rotationPeriod": "1d"}))
