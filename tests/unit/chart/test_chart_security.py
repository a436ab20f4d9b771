"""Every container the chart runs is locked down: non-root, read-only root, no privileges, no capabilities.

That includes the bundled Redis: it runs as the chart's non-root user, its only writable path an emptyDir.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_rendering import VALUE_SETS, objects, of_kind

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


def pods(value_set: str) -> list[dict[str, Any]]:
    return [dep["spec"]["template"]["spec"] for dep in of_kind(objects(value_set), "Deployment")]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_container_runs_locked_down(value_set: str) -> None:
    containers = [c for pod in pods(value_set) for c in pod["containers"] + pod.get("initContainers", [])]
    # The operator and the provider, and in values-all the bundled Redis.
    assert len(containers) == (3 if value_set == "all" else 2)

    for container in containers:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["runAsUser"] == 65532, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["seccompProfile"] == RUNTIME_DEFAULT, container["name"]
        assert context.get("privileged", False) is False, container["name"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pod_runs_as_the_image_user_with_the_default_seccomp_profile(value_set: str) -> None:
    for pod in pods(value_set):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 65532
        assert context["fsGroup"] == 65532
        assert context["seccompProfile"] == RUNTIME_DEFAULT
        assert "hostNetwork" not in pod
        assert "hostPID" not in pod


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_writable_path_is_an_empty_dir_or_the_state_claim(value_set: str) -> None:
    for pod in pods(value_set):
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            for mount in container["volumeMounts"]:
                volume = volumes[mount["name"]]
                if mount.get("readOnly"):
                    assert "secret" in volume
                elif "persistentVolumeClaim" in volume:
                    assert mount["mountPath"] == "/var/lib/kubeoidc", "only the provider's state persists"
                else:
                    assert "emptyDir" in volume, mount["mountPath"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_container_has_probes_and_resources(value_set: str) -> None:
    for pod in pods(value_set):
        for container in pod["containers"]:
            assert "livenessProbe" in container
            assert container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"]
