"""The image tier's fixtures: the container engine, and the image built once per session from the working
tree.

Outside CI, a missing engine or a failed build skips the tier with one line saying how to run it; with
``CI=true`` either one fails the run.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest
from chart_pod import REPO
from container_engine import TEST_REVISION, BuildFailed, Engine, EngineMissing, find_engine

#: Starts the reason of every skip of this tier.
SKIP_PREFIX = "image tier: "


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(SKIP_PREFIX + reason, pytrace=False)
    pytest.skip(SKIP_PREFIX + reason.splitlines()[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
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
