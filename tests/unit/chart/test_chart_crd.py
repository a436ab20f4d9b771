"""The chart ships the project's one CRD, unchanged, and it is a valid CustomResourceDefinition."""

from __future__ import annotations

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from chart_rendering import CHART_DIR, KUBERNETES_VERSIONS, REPO

CANONICAL_CRD = REPO / "crds" / "oidcclient.yaml"


def test_chart_crd_is_the_canonical_crd_byte_for_byte() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        crds = chart.crds

    assert [crd["name"] for crd in crds] == ["crds/oidcclient.yaml"]
    assert crds[0]["data"] == CANONICAL_CRD.read_text()


def test_chart_crd_links_to_the_canonical_crd() -> None:
    link = CHART_DIR / "crds" / "oidcclient.yaml"

    assert link.is_symlink()
    assert link.resolve() == CANONICAL_CRD.resolve()


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
def test_chart_crd_is_a_valid_custom_resource_definition(kube_version: str) -> None:
    (crd,) = [doc for doc in yaml.safe_load_all(CANONICAL_CRD.read_text()) if doc]

    assert crd["kind"] == "CustomResourceDefinition"
    kubernetes_validate.validate(crd, kube_version, strict=True)
