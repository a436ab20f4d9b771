"""The image tier's fixtures: the container engine, the image built once per session from the working
tree, and a real control plane for the roles' containers.

Outside CI, a missing engine, a failed build or missing control-plane binaries skip what needs them with
one line saying how to run it; with ``CI=true`` each one fails the run.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Generator, Iterator
from typing import NoReturn

import pytest

from support.api_servers import ControlPlaneAccess
from support.chart_pod import REPO
from support.container_engine import TEST_REVISION, BuildFailed, Engine, EngineMissing, find_engine
from support.node_rp import chromium, node, relying_party

__all__ = ["chromium", "node", "relying_party"]

#: Starts the reason of every skip of this tier.
SKIP_PREFIX = "image tier: "


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(SKIP_PREFIX + reason, pytrace=False)
    pytest.skip(SKIP_PREFIX + reason.splitlines()[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Reports this tier's skips at one place, so that the summary says why in one line, not one per test."""
    report: pytest.TestReport = yield
    if report.skipped and isinstance(report.longrepr, tuple) and SKIP_PREFIX in report.longrepr[2]:
        report.longrepr = (__file__, None, report.longrepr[2])  # type: ignore[assignment]
    return report


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        found = find_engine()
    except EngineMissing as error:
        unavailable(str(error))
    try:
        yield found
    finally:
        found.remove_started()


@pytest.fixture(scope="session")
def project_version() -> str:
    version: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return version


@pytest.fixture(scope="session")
def image(engine: Engine, project_version: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image built from the working tree, under a tag of its own (removed at the end)."""
    tag = f"localhost/kubeoidc-image-tier:{uuid.uuid4().hex[:12]}"
    log = tmp_path_factory.mktemp("image-build") / "build.log"
    try:
        engine.build(REPO, tag, log, build_args={"VERSION": project_version, "REVISION": TEST_REVISION})
    except BuildFailed as error:
        unavailable(f"the image did not build (its output: {log}); run `scripts/test -m image`\n{error}")
    try:
        yield tag
    finally:
        engine.command("rmi", tag, check=False)


@pytest.fixture(scope="session")
def control_plane_access(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneAccess]:
    """A real control plane (etcd, kube-apiserver, kube-controller-manager) with the CRDs, the chart's
    ServiceAccounts and RBAC, and a token per role: the cluster tier's own control plane and release
    (tests/support/control_plane.py and release.py), started for this tier's session."""
    try:
        from support.control_plane import ControlPlane, MissingAssets, find_assets
        from support.release import NAMESPACE, Release
    except ImportError:
        pytest.skip(
            SKIP_PREFIX + "a real API server for the roles needs the cluster tier's tests/support/release.py"
        )
    try:
        assets = find_assets()
    except MissingAssets as missing:
        unavailable(f"no control plane for the roles' containers: {missing}")
    plane = ControlPlane(assets)
    plane.start()
    try:
        # The issuer plays no part in the RBAC; the containers render the chart with their own.
        release = Release(plane, tmp_path_factory.mktemp("release"), "http://127.0.0.1")
        release.apply_crds()
        release.install()
        release.wait_for_crds()
        yield ControlPlaneAccess(plane.admin_kubeconfig, lambda role: release.kubeconfigs[role], NAMESPACE)
    finally:
        plane.stop()
