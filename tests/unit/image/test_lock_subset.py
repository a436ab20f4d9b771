"""scripts/lock-subset picks a tool and everything it needs out of the lock, hashes included, so that the
image's SBOM tool installs hash-checked without the rest of the test tools."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[3]
LOCK = REPO / "requirements-test.txt"


def load_script() -> ModuleType:
    path = REPO / "scripts" / "lock-subset"
    loader = importlib.machinery.SourceFileLoader("lock_subset", str(path))
    spec = importlib.util.spec_from_loader("lock_subset", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


lock_subset = load_script()


PIN = re.compile(r"^([A-Za-z0-9][^=\s]*)==(\S+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {lock_subset.normalize(match[1]): match[2] for match in PIN.finditer(text)}


def needs(name: str, seen: set[str] | None = None) -> set[str]:
    """What the installed distribution ``name`` requires on this platform, transitively (no extras)."""
    seen = set() if seen is None else seen
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        dependency = lock_subset.normalize(requirement.name)
        if dependency not in seen:
            seen.add(dependency)
            needs(dependency, seen)
    return seen


def test_the_subset_holds_the_tool_and_all_it_needs_at_the_locked_versions() -> None:
    lock = LOCK.read_text()

    chosen = pins(lock_subset.subset(lock, ["cyclonedx-bom"]))

    assert "cyclonedx-bom" in chosen
    assert needs("cyclonedx-bom") <= set(chosen)
    locked = pins(lock)
    assert all(locked[name] == version for name, version in chosen.items())
    # Nothing that only the other test tools need.
    assert not {"pytest", "kopf", "kmock", "mypy"} & set(chosen)


def test_every_entry_of_the_subset_keeps_its_hashes() -> None:
    text = lock_subset.subset(LOCK.read_text(), ["cyclonedx-bom"])

    entries = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.M)
    assert all("--hash=sha256:" in entry for entry in entries if entry.strip())


def test_an_unknown_package_is_refused() -> None:
    with pytest.raises(SystemExit, match="not in the lock: no-such-tool"):
        lock_subset.subset(LOCK.read_text(), ["no-such-tool"])
