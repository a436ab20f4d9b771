"""The chart ships the project's CRDs, unchanged, and they are valid CustomResourceDefinitions.

Helm installs a chart's `crds/` on the first install only, so both ship from the start: the OIDCClient,
the IdentitySource, and kopf's ClusterKopfPeering, which the operator needs as soon as it runs more than
one replica.
"""

from __future__ import annotations

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from support.chart_rendering import CHART_DIR, KUBERNETES_VERSIONS, REPO

CANONICAL_CRDS = {
    "oidcclient.yaml": REPO / "crds" / "oidcclient.yaml",
    "kopf-peering.yaml": REPO / "crds" / "kopf-peering.yaml",
    "identitysource.yaml": REPO / "crds" / "identitysource.yaml",
}


def test_chart_crds_are_the_canonical_crds_byte_for_byte() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        crds = {crd["name"]: crd["data"] for crd in chart.crds}

    assert crds == {f"crds/{name}": path.read_text() for name, path in CANONICAL_CRDS.items()}


@pytest.mark.parametrize("name", sorted(CANONICAL_CRDS))
def test_chart_crd_links_to_the_canonical_crd(name: str) -> None:
    link = CHART_DIR / "crds" / name

    assert link.is_symlink()
    assert link.resolve() == CANONICAL_CRDS[name].resolve()


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(CANONICAL_CRDS))
def test_chart_crd_is_a_valid_custom_resource_definition(name: str, kube_version: str) -> None:
    (crd,) = [doc for doc in yaml.safe_load_all(CANONICAL_CRDS[name].read_text()) if doc]

    assert crd["kind"] == "CustomResourceDefinition"
    kubernetes_validate.validate(crd, kube_version, strict=True)


def test_peering_crd_is_kopfs_cluster_scoped_resource() -> None:
    (crd,) = [doc for doc in yaml.safe_load_all(CANONICAL_CRDS["kopf-peering.yaml"].read_text()) if doc]

    assert crd["metadata"]["name"] == "clusterkopfpeerings.kopf.dev"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["kind"] == "ClusterKopfPeering"
    assert [version["name"] for version in crd["spec"]["versions"] if version["served"]] == ["v1"]
