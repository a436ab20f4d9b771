"""The OIDCClient CRD on a real API server: it is accepted (structural, CEL rules within the cost
budget), serves the examples, applies the defaults the local checks assume, and refuses every bad
manifest of the unit tests with the same message, in the same place.

The cases are the unit tests' own (``tests/unit/crd/test_oidcclient_validation.py``): what cel-python
decides there, the API server decides here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

import kubeoidc_contract as contract
from kubeoidc.manifest import RULES_NOT_CHECKED, Violation, apply_defaults
from kubeoidc_contract.crd import openapi_schema
from support.admin import Admin
from support.control_plane import ControlPlane
from support.release import Release, eventually
from unit.crd.test_oidcclient_validation import (
    BAD_SPECS,
    CLIENT_ID_IMMUTABLE,
    CLIENT_ID_KEPT,
    NAME_LENGTH,
    client,
    example_documents,
)

pytestmark = pytest.mark.cluster


#: A strict decoding error names the unknown field in its message only.
UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')


def refusal(error: ApiException) -> tuple[int, list[Violation]]:
    """The HTTP status of a refusal and its causes, as (field, message) pairs ("" for the object)."""
    status = json.loads(error.body or "{}")
    causes = [
        Violation(cause.get("field", "").replace("<nil>", ""), cause.get("message", ""))
        for cause in (status.get("details") or {}).get("causes") or ()
    ]
    if not causes:
        causes = [
            Violation(field, "unknown field") for field in UNKNOWN_FIELD.findall(status.get("message", ""))
        ]
    return error.status or 0, causes


def same_message(expected: str, served: str) -> bool:
    """Whether the server's message says what the local check says (which it may prefix with the value).

    Kubernetes 1.32 and later count a string's length in bytes, and say so; earlier ones in characters.
    """
    return expected in served or expected.replace(" characters", " bytes") in served


def refused(admin: Admin, namespace: str, manifest: dict[str, Any]) -> tuple[int, list[Violation]]:
    with pytest.raises(ApiException) as caught:
        admin.create_client(namespace, manifest, dry_run=True)
    return refusal(caught.value)


def test_oidcclient_crd_is_established_with_its_cel_rules_within_the_cost_budget(
    admin: Admin, release: Release
) -> None:
    crd = admin.crd(contract.CRD_NAME)

    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True"
    assert "NonStructuralSchema" not in conditions
    assert crd["status"]["acceptedNames"]["shortNames"] == [contract.SHORT_NAME]


@pytest.mark.parametrize("manifest", example_documents())
def test_example_is_accepted_by_the_api_server(
    admin: Admin, namespace: str, manifest: dict[str, Any]
) -> None:
    created = admin.create_client(namespace, manifest, dry_run=True)

    assert created["metadata"]["name"] == manifest["metadata"]["name"]


@pytest.mark.parametrize("manifest", example_documents())
def test_api_server_applies_the_defaults_the_local_checks_apply(
    admin: Admin, namespace: str, manifest: dict[str, Any]
) -> None:
    created = admin.create_client(namespace, manifest, dry_run=True)

    assert created["spec"] == apply_defaults(manifest)["spec"]


@pytest.mark.parametrize(("spec", "violation"), BAD_SPECS)
def test_bad_manifest_is_refused_by_the_api_server_with_the_intended_message(
    admin: Admin, namespace: str, spec: dict[str, Any], violation: Violation
) -> None:
    status, causes = refused(admin, namespace, client(**spec))

    assert status in (400, 422)
    first, *others = causes
    assert first.field == violation.field
    assert same_message(violation.message, first.message), first.message
    # After a broken bound (enum, maxItems, maxLength) the server skips the CEL rules, and says so.
    assert [(other.field, same_message(RULES_NOT_CHECKED, other.message)) for other in others] in (
        [],
        [("", True)],
    )


def test_a_name_longer_than_a_label_value_is_refused_by_the_api_server(admin: Admin, namespace: str) -> None:
    status, causes = refused(admin, namespace, client(name="a" * 64))

    assert status == 422
    assert [NAME_LENGTH in cause.message for cause in causes] == [True]


def test_changing_a_pinned_client_id_is_refused_by_the_api_server(admin: Admin, namespace: str) -> None:
    admin.create_client(namespace, client("pinned-changed", clientID="grafana-prod-1"))

    with pytest.raises(ApiException) as caught:
        admin.patch_client(namespace, "pinned-changed", {"spec": {"clientID": "grafana-prod-2"}})

    status, causes = refusal(caught.value)
    assert status == 422
    assert [(c.field, CLIENT_ID_IMMUTABLE in c.message) for c in causes] == [("spec.clientID", True)]


def test_removing_a_pinned_client_id_is_refused_by_the_api_server(admin: Admin, namespace: str) -> None:
    admin.create_client(namespace, client("pinned-removed", clientID="grafana-prod-3"))

    with pytest.raises(ApiException) as caught:
        admin.patch_client(namespace, "pinned-removed", {"spec": {"clientID": None}})

    status, causes = refusal(caught.value)
    assert status == 422
    assert [(c.field, CLIENT_ID_KEPT in c.message) for c in causes] == [("spec.clientID", True)]


def test_kubectl_explain_teaches_every_field_of_the_spec(
    control_plane: ControlPlane, release: Release
) -> None:
    schema = openapi_schema()["properties"]["spec"]["properties"]

    def explain(path: str) -> str | None:
        try:
            return control_plane.kubectl("explain", path)
        except RuntimeError:  # the CRD's OpenAPI document is published a moment after it is Established
            return None

    eventually(lambda: explain(contract.PLURAL), "the API server to publish the CRD's OpenAPI document")
    for field, definition in schema.items():
        explained = control_plane.kubectl("explain", f"{contract.PLURAL}.spec.{field}")
        first_words = " ".join(definition["description"].split()[:4])
        assert first_words in " ".join(explained.split()), (field, explained)
