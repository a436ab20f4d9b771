"""The container engine the image tier drives: podman (building with buildah when it is there) or docker.

Found on PATH. When ``BASE_IMAGE`` is set (a local stand-in for the Dockerfile's base, e.g. where no
registry is reachable), it is passed as the ``BASE`` build argument and nothing is pulled;
``BUILD_CA_MOUNT`` (a ``-v`` argument for podman/buildah) gives the build's RUN steps a CA bundle.
Containers run with the host's network, so a server started by a test on loopback is reachable from the
container and the container's loopback listeners from the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The revision label the test build carries (the Dockerfile's REVISION argument).
TEST_REVISION = "image-tier-test"

HOW_TO_RUN = "then run `scripts/test -m image`"


class EngineMissing(Exception):
    """No usable container engine: the message says what is missing."""


class BuildFailed(Exception):
    """The image did not build: the message holds the end of the build's output."""


@dataclass
class Engine:
    """One container engine's command line; remembers the containers it started, to remove exactly those."""

    cli: str
    build_command: list[str]
    is_podman: bool
    started: list[str] = field(default_factory=list)

    def command(
        self, *args: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=timeout, check=check)

    def build(self, context: Path, tag: str, log: Path, build_args: dict[str, str] | None = None) -> str:
        """Builds ``context`` as ``tag``; returns the image id. The output goes to ``log``."""
        arguments = [*self.build_command, "-t", tag]
        for name, value in {**_stand_in_base(), **(build_args or {})}.items():
            arguments += ["--build-arg", f"{name}={value}"]
        mount = os.environ.get("BUILD_CA_MOUNT")
        if mount and self.is_podman:
            arguments += ["-v", mount]
        with log.open("w") as output:
            result = subprocess.run(
                [*arguments, str(context)], stdout=output, stderr=subprocess.STDOUT, timeout=1800, check=False
            )
        if result.returncode != 0:
            tail = log.read_text().strip().splitlines()[-15:]
            raise BuildFailed(f"{' '.join(arguments[:2])} exited {result.returncode}:\n" + "\n".join(tail))
        return self.command("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()

    def run(self, image: str, flags: Sequence[str], args: Sequence[str] = ()) -> str:
        """Starts a detached container with the host's network; returns its id."""
        result = self.command("run", "-d", "--network", "host", *flags, image, *args)
        container = result.stdout.strip().splitlines()[-1]
        self.started.append(container)
        return container

    def run_to_end(self, image: str, flags: Sequence[str], args: Sequence[str] = ()) -> str:
        """Runs a container to its end (``--rm``) and returns what it printed; fails on a non-zero exit."""
        result = self.command(
            "run", "--rm", "--network", "host", *flags, image, *args, timeout=120, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def logs(self, container: str) -> str:
        result = self.command("logs", container, check=False)
        return result.stdout + result.stderr

    def running(self, container: str) -> bool:
        result = self.command("inspect", "--format", "{{.State.Running}}", container, check=False)
        return result.stdout.strip() == "true"

    def signal(self, container: str, name: str) -> None:
        self.command("kill", "--signal", name, container)

    def wait_exit(self, container: str, timeout: float) -> tuple[int, float]:
        """Waits up to ``timeout`` seconds for the container to end: (exit code, seconds waited)."""
        started = time.monotonic()
        result = self.command("wait", container, timeout=timeout)
        return int(result.stdout.strip().splitlines()[-1]), time.monotonic() - started

    def remove(self, container: str) -> None:
        self.command("rm", "-f", container, check=False)
        if container in self.started:
            self.started.remove(container)

    def remove_started(self) -> None:
        for container in list(self.started):
            self.remove(container)

    def image_config(self, image: str) -> dict[str, str]:
        """The image's user, entrypoint and labels, as ``inspect`` gives them."""
        fields = {
            "user": "{{.Config.User}}",
            "entrypoint": "{{json .Config.Entrypoint}}",
            "labels": "{{json .Config.Labels}}",
            "size": "{{.Size}}",
        }
        return {
            name: self.command("image", "inspect", "--format", template, image).stdout.strip()
            for name, template in fields.items()
        }


def _stand_in_base() -> dict[str, str]:
    base = os.environ.get("BASE_IMAGE")
    return {"BASE": base} if base else {}


def find_engine() -> Engine:
    """podman (building with buildah if present), else docker with a reachable daemon."""
    pull = ["--pull=never"] if os.environ.get("BASE_IMAGE") else []
    podman = shutil.which("podman")
    if podman:
        buildah = shutil.which("buildah")
        build = [buildah, "bud", "--layers", *pull] if buildah else [podman, "build", "--layers", *pull]
        return Engine(podman, build, is_podman=True)
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0:
            return Engine(docker, [docker, "build"], is_podman=False)
        raise EngineMissing(f"docker's daemon does not answer: start it (or install podman), {HOW_TO_RUN}")
    raise EngineMissing(f"no podman or docker on PATH: install one, {HOW_TO_RUN}")
