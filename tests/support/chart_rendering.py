"""Renders the Helm chart for the chart tests: paths, the value sets, and the rendered objects.

Rendering goes through helm-python-sdk (the Helm 4 SDK, offline: no cluster, no helm binary). Renders are
cached per value set, since every test reads the same few.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "kubeoidc"
VALUES_FILES = {
    # Every option of the chart, each set (most to something other than its default).
    "all": REPO / "tests" / "unit" / "chart" / "values-all.yaml",
    # Several replicas of each role, a Redis URL from a Secret, signing keys made by hand.
    "ha": REPO / "tests" / "unit" / "chart" / "values-ha.yaml",
}
RELEASE = "kubeoidc"
NAMESPACE = "auth"
ISSUER = "https://login.example.com"

#: Kubernetes versions the rendered manifests must be valid for.
KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")

#: The value sets every render test runs with: the defaults (plus the one required value), and the
#: values files above.
VALUE_SETS = ("default", *VALUES_FILES)


def values_for(value_set: str) -> dict[str, Any]:
    """The user-supplied values of a value set."""
    if value_set == "default":
        return {"issuer": ISSUER}
    loaded: dict[str, Any] = yaml.safe_load(VALUES_FILES[value_set].read_text())
    return loaded


def load_chart() -> helm.Chart:
    return helm.Chart.load(CHART_DIR)


def render(values: Mapping[str, Any]) -> dict[str, str]:
    """Renders the chart like `helm template`; returns template path -> rendered text."""
    with load_chart() as chart:
        return chart.render(dict(values), name=RELEASE, namespace=NAMESPACE)


@functools.cache
def _rendered_json(value_set: str) -> str:
    return json.dumps(render(values_for(value_set)))


def rendered(value_set: str) -> dict[str, str]:
    """The cached render of a value set (a fresh copy each call)."""
    files: dict[str, str] = json.loads(_rendered_json(value_set))
    return files


def manifests(files: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """The rendered Kubernetes manifests (template path, text); NOTES.txt is not one."""
    for path, text in sorted(files.items()):
        if path.endswith(".yaml") and text.strip():
            yield path, text


def objects_of(files: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in a render."""
    found: list[dict[str, Any]] = []
    for _, text in manifests(files):
        found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def objects(value_set: str) -> list[dict[str, Any]]:
    return objects_of(rendered(value_set))


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objs if obj["kind"] == kind]


def deployment(objs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (found,) = [
        obj
        for obj in of_kind(objs, "Deployment")
        if obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container's environment: name -> value, or name -> {"valueFrom": ...} for a reference."""
    return {
        item["name"]: item["value"] if "value" in item else {"valueFrom": item["valueFrom"]}
        for item in container.get("env", [])
    }


def pod_spec(objs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(objs, component)["spec"]["template"]["spec"]
    return spec


def container_of(objs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (container,) = pod_spec(objs, component)["containers"]
    found: dict[str, Any] = container
    return found


def with_issuer(**values: Any) -> dict[str, Any]:
    """The default values plus these."""
    return {"issuer": ISSUER, **values}
