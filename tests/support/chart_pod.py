"""How the chart runs a container, turned into the container engine's ``run`` flags.

The chart is rendered with its default values (helm-python-sdk, offline). Every field of the container's
and the pod's security context becomes a flag, and each emptyDir volume (and the state claim) a tmpfs mount:
a field this module cannot express fails the tests, so the image tier always runs the image the way the
chart in this tree does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "kubeoidc"
RELEASE = "kubeoidc"
NAMESPACE = "auth"
#: Kubernetes' terminationGracePeriodSeconds when the pod spec sets none.
KUBERNETES_DEFAULT_GRACE_SECONDS = 30


class Unsupported(Exception):
    """A part of the chart's pod that these flags cannot reproduce."""


def render(values: Mapping[str, Any], namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The chart's objects, rendered like `helm template` into the release namespace ``namespace``."""
    with helm.Chart.load(CHART_DIR) as chart:
        files = chart.render(dict(values), name=RELEASE, namespace=namespace)
    return [
        doc
        for path, text in sorted(files.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@dataclass(frozen=True)
class ChartPod:
    """One role's pod as the chart renders it."""

    pod: dict[str, Any]
    container: dict[str, Any]

    @classmethod
    def of(cls, objects: list[dict[str, Any]], component: str) -> ChartPod:
        (deployment,) = [
            obj
            for obj in objects
            if obj["kind"] == "Deployment"
            and obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
        ]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        return cls(pod, container)

    @property
    def grace_seconds(self) -> int:
        return int(self.pod.get("terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE_SECONDS))

    @property
    def user(self) -> tuple[int, int]:
        context = {**self.pod.get("securityContext", {}), **self.container.get("securityContext", {})}
        return int(context["runAsUser"]), int(context["runAsGroup"])

    @property
    def fs_group(self) -> int | None:
        value = self.pod.get("securityContext", {}).get("fsGroup")
        return int(value) if value is not None else None

    def writable_paths(self) -> set[str]:
        """The container's mount paths that are not read-only (each an emptyDir or a claim)."""
        return {mount["mountPath"] for mount in self.container["volumeMounts"] if not mount.get("readOnly")}

    def env(self) -> dict[str, str]:
        return {item["name"]: item["value"] for item in self.container.get("env", []) if "value" in item}

    def run_flags(
        self, engine_is_podman: bool, secret_folders: Mapping[str, Path] | None = None
    ) -> list[str]:
        """The ``run`` flags: the security context and the volumes.

        ``secret_folders`` maps a secret volume's name to a host folder mounted read-only in its place;
        secret volumes without one are left out (read-only, they never add a writable path).
        """
        flags = _security_flags(
            self.pod.get("securityContext", {}), self.container.get("securityContext", {})
        )
        if engine_is_podman:
            # podman's --read-only adds writable tmpfs mounts (/tmp, /var/tmp, /run) unless told not to.
            flags.append("--read-only-tmpfs=false")
        volumes = {volume["name"]: volume for volume in self.pod.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            if set(mount) - {"name", "mountPath", "readOnly"}:
                raise Unsupported(f"volume mount options {sorted(mount)}")
            volume = volumes[mount["name"]]
            path = mount["mountPath"]
            if "emptyDir" in volume:
                if mount.get("readOnly") or volume["emptyDir"].get("medium"):
                    raise Unsupported(f"emptyDir {mount['name']} with options {volume['emptyDir']}")
                size = _tmpfs_size(volume["emptyDir"]["sizeLimit"])
                # The kubelet makes an emptyDir world-writable (0777).
                flags.append(f"--tmpfs={path}:rw,exec,nosuid,nodev,size={size},mode=0777")
            elif "persistentVolumeClaim" in volume:
                if mount.get("readOnly"):
                    raise Unsupported(f"claim {mount['name']} mounted read-only")
                # What outlives the pod is the cluster's business; to the container the claim is a
                # writable folder (the kubelet gives it to the pod's fsGroup, as writable as this).
                flags.append(f"--tmpfs={path}:rw,exec,nosuid,nodev,size=256m,mode=0777")
            elif "secret" in volume:
                if not mount.get("readOnly"):
                    raise Unsupported(f"secret volume {mount['name']} mounted writable")
                if mount["name"] in (secret_folders or {}):
                    flags.append(f"--volume={(secret_folders or {})[mount['name']]}:{path}:ro")
            else:
                raise Unsupported(f"volume {mount['name']}: {sorted(volume)}")
        return flags


def _security_flags(pod_context: Mapping[str, Any], container_context: Mapping[str, Any]) -> list[str]:
    context = {**pod_context, **container_context}
    flags: list[str] = []
    handled = set()
    for key, value in context.items():
        handled.add(key)
        if key == "runAsNonRoot":
            if value is not True or int(context["runAsUser"]) == 0:
                raise Unsupported("runAsNonRoot without a non-root runAsUser")
        elif key == "runAsUser":
            flags.append(f"--user={int(value)}:{int(context.get('runAsGroup', value))}")
        elif key == "runAsGroup":
            pass  # With runAsUser.
        elif key == "fsGroup":
            # The kubelet adds fsGroup to the container's groups and gives it the volumes.
            flags.append(f"--group-add={int(value)}")
        elif key == "readOnlyRootFilesystem":
            if value is True:
                flags.append("--read-only")
        elif key == "allowPrivilegeEscalation":
            if value is False:
                flags.append("--security-opt=no-new-privileges")
        elif key == "capabilities":
            if set(value) - {"drop", "add"}:
                raise Unsupported(f"capabilities {value}")
            flags += [f"--cap-drop={cap}" for cap in value.get("drop", [])]
            flags += [f"--cap-add={cap}" for cap in value.get("add", [])]
        elif key == "seccompProfile":
            # The engine's default seccomp profile is the runtime default.
            if value != {"type": "RuntimeDefault"}:
                raise Unsupported(f"seccompProfile {value}")
        elif key == "privileged":
            if value:
                raise Unsupported("privileged")
        else:
            raise Unsupported(f"securityContext.{key}")
    return flags


def _tmpfs_size(quantity: str) -> str:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(quantity))
    if not match:
        raise Unsupported(f"sizeLimit {quantity}")
    number, unit = match.groups()
    return number + {"Ki": "k", "Mi": "m", "Gi": "g", None: ""}[unit]
