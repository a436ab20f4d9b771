"""The ``cluster`` tier: kubeoidc on a real control plane (etcd, kube-apiserver, kube-controller-manager).

One control plane per session, the CRDs applied once. The chart's default release (cluster-wide) is
installed once: its RBAC applied as rendered, its operator and provider run as processes of their own,
each with a token of its own ServiceAccount (never an admin), shared by the tests that need them. Two
more releases come with the modules that test them (limited to some namespaces; two operator replicas),
which stop the shared processes meanwhile. Each test module works in a namespace of its own.

Without the binaries (``KUBEBUILDER_ASSETS``), every test of the tier is skipped with one line saying how
to get them, unless ``CI=true``: then the tier fails, since CI must run it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from support.admin import Admin
from support.control_plane import HOW_TO_GET_THE_BINARIES, ControlPlane, MissingAssets, find_assets
from support.live import free_port
from support.node_rp import chromium, node, relying_party
from support.release import (
    FAILOVER_NAMESPACE,
    NAMESPACE,
    SCOPED_NAMESPACE,
    Release,
    RoleProcess,
    running,
    start_provider,
)

__all__ = ["chromium", "node", "relying_party"]


@functools.cache
def missing_assets() -> str | None:
    """Why the control plane cannot start here, or None."""
    try:
        find_assets()
    except MissingAssets as missing:
        return str(missing)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Raised here rather than in a fixture, so that the skip has one location and -ra shows one line.
    problem = missing_assets()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        item.session.shouldfail = f"the cluster tier cannot run: {problem}"
        pytest.fail(f"the cluster tier cannot run: {problem}; {HOW_TO_GET_THE_BINARIES}", pytrace=False)
    pytest.skip(f"cluster tier: {HOW_TO_GET_THE_BINARIES}")


#: The module that reads what the session did from the API server's audit log.
_AUDIT_MODULE = "test_rbac.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The audit module runs after every other module, except those that restart the API server under
    the shared processes (marked ``apiserver_restart``), whatever order they were collected in; each
    module's tests stay together, so its module-scoped fixtures are set up once."""
    audit = [item for item in items if item.path.name == _AUDIT_MODULE]
    rest = [item for item in items if item.path.name != _AUDIT_MODULE]
    restarting = [item for item in rest if item.get_closest_marker("apiserver_restart")]
    others = [item for item in rest if not item.get_closest_marker("apiserver_restart")]
    items[:] = others + audit + restarting


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A failure shows what the operators and providers said last.
    report: pytest.TestReport = yield
    if report.failed:
        for process in running():
            report.sections.append((f"{process.role} ({process.log.name}), last lines", process.tail()))
    return report


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The control plane; its components' output and audit log stay in pytest's temporary folder."""
    plane = ControlPlane(
        find_assets(),
        audited=[NAMESPACE, SCOPED_NAMESPACE, FAILOVER_NAMESPACE],
        logs=tmp_path_factory.mktemp("control-plane"),
    )
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def admin(control_plane: ControlPlane) -> Admin:
    return Admin(control_plane.admin_kubeconfig)


@pytest.fixture(scope="session")
def issuer_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def release(
    control_plane: ControlPlane, admin: Admin, issuer_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Release:
    """The CRDs (Established and served) and the chart's ServiceAccounts and RBAC, a kubeconfig per role."""
    installed = Release(control_plane, tmp_path_factory.mktemp("release"), f"http://127.0.0.1:{issuer_port}")
    installed.set_up(admin.serves_oidcclients)
    return installed


@pytest.fixture(scope="session")
def shared_operator(release: Release) -> Iterator[RoleProcess]:
    """The release's operator, cluster-wide as the chart installs it by default; shared by the session."""
    process = release.operator()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def shared_provider(
    release: Release, shared_operator: RoleProcess, admin: Admin, issuer_port: int
) -> Iterator[RoleProcess]:
    """The release's provider; the chart's default: it reads the signing keys the operator makes."""
    process = start_provider(release, issuer_port, admin.find_secret)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def operator(shared_operator: RoleProcess) -> RoleProcess:
    """The shared operator, running (a module that needs it stopped stops it; the next test restarts it)."""
    shared_operator.ensure_running()
    return shared_operator


@pytest.fixture
def provider(operator: RoleProcess, shared_provider: RoleProcess) -> RoleProcess:
    """The shared provider, running, beside the shared operator."""
    shared_provider.ensure_running()
    return shared_provider


@pytest.fixture(scope="module")
def namespace(request: pytest.FixtureRequest, admin: Admin, release: Release) -> str:
    """A namespace of the test module's own, named after it (``test_operator.py``: ``operator``)."""
    stem = Path(str(request.path)).stem.removeprefix("test_")
    name = re.sub(r"[^a-z0-9-]", "-", stem.lower())
    admin.create_namespace(name)
    return name
