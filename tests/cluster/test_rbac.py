"""What the API server's audit log says about the two roles over the whole session (this module runs
after the others): the chart's RBAC gave each what it asked for, and the provider only ever read.
"""

from __future__ import annotations

from collections import Counter

import pytest

from support.control_plane import ControlPlane
from support.release import Release, RoleProcess

pytestmark = pytest.mark.cluster

READS = {"get", "list", "watch"}


def requests_of(control_plane: ControlPlane, user: str) -> list[tuple[str, str, str, int]]:
    """(verb, resource, namespace, code) of every request the user made."""
    return [
        (
            event["verb"],
            "/".join(filter(None, (ref.get("resource"), ref.get("subresource")))) or event["requestURI"],
            ref.get("namespace", ""),
            event.get("responseStatus", {}).get("code", 0),
        )
        for event in control_plane.audit_events()
        if event["user"]["username"] == user
        for ref in [event.get("objectRef") or {}]
    ]


@pytest.mark.parametrize("role", ["operator", "provider"])
def test_role_was_never_forbidden_anything(
    control_plane: ControlPlane, release: Release, operator: RoleProcess, provider: RoleProcess, role: str
) -> None:
    requests = requests_of(control_plane, release.service_account(role))

    assert requests, f"the {role} made no request"
    forbidden = Counter(request for request in requests if request[3] == 403)
    assert not forbidden


def test_provider_only_reads(control_plane: ControlPlane, release: Release, provider: RoleProcess) -> None:
    verbs = {verb for verb, *_ in requests_of(control_plane, release.service_account("provider"))}

    assert verbs <= READS


def test_neither_log_shows_a_403(operator: RoleProcess, provider: RoleProcess) -> None:
    for process in (operator, provider):
        output = process.output()
        assert " 403 " not in output, process.tail()
        assert "Forbidden" not in output, process.tail()
