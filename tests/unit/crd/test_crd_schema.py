"""The OIDCClient CRD is one a real API server accepts and `kubectl explain` can teach from.

A real kube-apiserver refuses a non-structural schema, and a CEL rule whose cost it cannot bound
(a string without maxLength, a list without maxItems); these tests hold the CRD to that without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import celpy
import kubernetes_validate

import kubeoidc_contract as contract
from kubeoidc_contract.crd import crd, openapi_schema

REPO = Path(__file__).resolve().parents[3]

Schema = Mapping[str, Any]


def walk(schema: Schema, path: str = "", in_plain_list: bool = False) -> Iterator[tuple[str, Schema, bool]]:
    """Every schema node with its path, and whether it sits in a list whose items have no identity."""
    yield path, schema, in_plain_list
    for key, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{key}", in_plain_list)
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        yield from walk(additional, f"{path}[*]", in_plain_list)
    if "items" in schema:
        plain = in_plain_list or schema.get("x-kubernetes-list-type") != "map"
        yield from walk(schema["items"], f"{path}[*]", plain)


def properties() -> Iterator[tuple[str, Schema]]:
    for path, node, _ in walk(openapi_schema()):
        for key, child in node.get("properties", {}).items():
            yield f"{path}.{key}", child


def test_crd_names_match_the_contract() -> None:
    definition = crd()
    assert definition["apiVersion"] == "apiextensions.k8s.io/v1"
    assert definition["metadata"]["name"] == contract.CRD_NAME
    spec = definition["spec"]
    assert spec["group"] == contract.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == contract.KIND
    assert spec["names"]["plural"] == contract.PLURAL
    assert spec["names"]["singular"] == contract.SINGULAR
    assert spec["names"]["shortNames"] == [contract.SHORT_NAME]
    assert [v["name"] for v in spec["versions"]] == [contract.VERSION]
    assert spec["versions"][0]["served"] is True
    assert spec["versions"][0]["storage"] is True


def test_crd_is_a_valid_customresourcedefinition_for_kubernetes_1_32() -> None:
    # Strict: a misspelt keyword (say, x-kubernetes-validation) is an error, not a silently ignored field.
    kubernetes_validate.validate(crd(), "1.32.0", strict=True)


def test_crd_has_a_status_subresource() -> None:
    assert crd()["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_printer_columns_show_client_id_ready_reason_and_age() -> None:
    columns = {
        column["name"]: column
        for column in crd()["spec"]["versions"][0]["additionalPrinterColumns"]
        if column.get("priority", 0) == 0
    }
    assert list(columns) == ["Client ID", "Ready", "Reason", "Age"]
    ready = f'.status.conditions[?(@.type=="{contract.READY_CONDITION}")]'
    assert columns["Client ID"]["jsonPath"] == ".status.clientID"
    assert columns["Ready"]["jsonPath"] == f"{ready}.status"
    assert columns["Reason"]["jsonPath"] == f"{ready}.reason"
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def test_the_packaged_crd_is_the_repository_crd() -> None:
    packaged = REPO / "kubeoidc_contract" / "crd" / "oidcclient.yaml"
    assert packaged.is_symlink()
    assert packaged.resolve() == (REPO / "crds" / "oidcclient.yaml").resolve()


def test_every_schema_node_has_a_type() -> None:
    untyped = [path or "<root>" for path, node, _ in walk(openapi_schema()) if "type" not in node]
    assert untyped == []


def test_no_field_keeps_unknown_fields() -> None:
    free_form = [
        path
        for path, node, _ in walk(openapi_schema())
        if node.get("x-kubernetes-preserve-unknown-fields") or node.get("additionalProperties") is True
    ]
    assert free_form == []


def test_every_field_has_a_description() -> None:
    # metadata is ObjectMeta: Kubernetes describes it, and a CRD may only restrict its name.
    undescribed = [path for path, node in properties() if path != ".metadata" and not node.get("description")]
    assert undescribed == []


def test_every_string_has_a_max_length() -> None:
    # apiVersion and kind are checked by the API server itself, and no rule reads them.
    unbounded = [
        path
        for path, node, _ in walk(openapi_schema())
        if node["type"] == "string" and "maxLength" not in node and path not in (".apiVersion", ".kind")
    ]
    assert unbounded == []


def test_every_list_has_max_items_and_every_map_max_properties() -> None:
    schema = openapi_schema()
    unbounded_lists = [
        path for path, node, _ in walk(schema) if node["type"] == "array" and "maxItems" not in node
    ]
    unbounded_maps = [
        path
        for path, node, _ in walk(schema)
        if "additionalProperties" in node and "maxProperties" not in node
    ]
    assert (unbounded_lists, unbounded_maps) == ([], [])


def test_redirect_uris_are_a_set_of_at_most_100() -> None:
    spec = openapi_schema()["properties"]["spec"]["properties"]
    for field in ("redirectURIs", "postLogoutRedirectURIs"):
        assert spec[field]["maxItems"] == 100
        assert spec[field]["x-kubernetes-list-type"] == "set"


def test_conditions_are_a_map_keyed_by_type() -> None:
    conditions = openapi_schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }


def test_every_rule_compiles_with_standard_cel_and_has_a_message() -> None:
    environment = celpy.Environment()
    rules = [
        (path, validation)
        for path, node, _ in walk(openapi_schema())
        for validation in node.get("x-kubernetes-validations", ())
    ]
    assert len(rules) >= 10
    for path, validation in rules:
        environment.program(environment.compile(validation["rule"]))
        # The API server refuses an empty message or one with a line break.
        assert validation.get("message", "").strip(), f"rule at {path or '<root>'} has no message"
        assert "\n" not in validation["message"]


def test_transition_rules_sit_only_where_the_old_value_is_identifiable() -> None:
    transition_rules = [
        (path, in_plain_list)
        for path, node, in_plain_list in walk(openapi_schema())
        for validation in node.get("x-kubernetes-validations", ())
        if "oldSelf" in validation["rule"]
    ]
    assert transition_rules == [(".spec", False), (".spec.clientID", False)]


def test_defaults_are_the_documented_ones() -> None:
    spec = openapi_schema()["properties"]["spec"]["properties"]
    assert spec["grantTypes"]["default"] == ["authorization_code"]
    assert spec["public"]["default"] is False
    assert spec["tokenEndpointAuthMethod"]["default"] == "client_secret_basic"
    assert spec["scopes"]["default"] == ["openid", "profile", "email"]
    assert spec["secretRotation"]["default"] == {}
    assert spec["secretRotation"]["properties"]["gracePeriod"]["default"] == "0s"
