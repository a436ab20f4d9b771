"""The chart grants the operator and the provider exactly their least set of rights, in both scopes.

Rights are compared as sets of (scope, apiGroup, resource, verb), where scope is "cluster" for a
ClusterRole bound by a ClusterRoleBinding, or the namespace of a Role and its RoleBinding: a right that is
missing breaks a real install, a right that is extra is a hole.
"""

from __future__ import annotations

from typing import Any

import pytest
from chart_rendering import ISSUER, NAMESPACE, objects, objects_of, of_kind, render

Right = tuple[str, str, str, str]

CLUSTER = "cluster"

OPERATOR_RULES = {
    ("kubeoidc.io", "oidcclients"): {"get", "list", "watch", "patch"},
    ("kubeoidc.io", "oidcclients/status"): {"get", "patch", "update"},
    ("kubeoidc.io", "oidcclients/finalizers"): {"update"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
#: kopf's own needs at cluster scope: resource observation always, namespace observation with a list.
KOPF_CRD_RULES = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
KOPF_NAMESPACE_RULES = {("", "namespaces"): {"list", "watch"}}
PROVIDER_RULES = {
    ("kubeoidc.io", "oidcclients"): {"get", "list", "watch"},
    ("", "secrets"): {"get", "list", "watch"},
}


def rights(scope: str, rules: dict[tuple[str, str], set[str]]) -> set[Right]:
    return {(scope, group, resource, verb) for (group, resource), verbs in rules.items() for verb in verbs}


def granted(objs: list[dict[str, Any]], account: str) -> set[Right]:
    """Every right bound to the ServiceAccount `account` of the release namespace."""
    roles = {
        (obj["kind"], obj["metadata"].get("namespace", CLUSTER), obj["metadata"]["name"]): obj
        for obj in objs
        if obj["kind"] in {"Role", "ClusterRole"}
    }
    found: set[Right] = set()
    for binding in of_kind(objs, "ClusterRoleBinding") + of_kind(objs, "RoleBinding"):
        subject = {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        if subject not in binding["subjects"]:
            continue
        scope = binding["metadata"].get("namespace", CLUSTER)
        ref = binding["roleRef"]
        role_scope = CLUSTER if ref["kind"] == "ClusterRole" else scope
        role = roles[(ref["kind"], role_scope, ref["name"])]
        for rule in role["rules"]:
            assert "resourceNames" not in rule
            assert "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        found.add((scope, group, resource, verb))
    return found


def test_cluster_wide_operator_gets_exactly_its_rights_everywhere() -> None:
    assert granted(objects("default"), "kubeoidc-operator") == rights(CLUSTER, OPERATOR_RULES) | rights(
        CLUSTER, KOPF_CRD_RULES
    )


def test_cluster_wide_provider_only_reads_clients_and_secrets() -> None:
    assert granted(objects("default"), "kubeoidc-provider") == rights(CLUSTER, PROVIDER_RULES)


def test_namespaced_operator_gets_its_rights_only_in_the_listed_namespaces() -> None:
    expected = (
        rights(CLUSTER, KOPF_CRD_RULES)
        | rights(CLUSTER, KOPF_NAMESPACE_RULES)
        | rights("team-a", OPERATOR_RULES)
        | rights("team-b", OPERATOR_RULES)
    )

    assert granted(objects("all"), "oidc-operator") == expected


def test_namespaced_provider_gets_nothing_at_cluster_scope() -> None:
    expected = rights("team-a", PROVIDER_RULES) | rights("team-b", PROVIDER_RULES)

    assert granted(objects("all"), "oidc-provider") == expected


@pytest.mark.parametrize("value_set", ["default", "all"])
def test_no_rule_uses_a_wildcard(value_set: str) -> None:
    for role in of_kind(objects(value_set), "ClusterRole") + of_kind(objects(value_set), "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], role["metadata"]["name"]


def test_provider_never_writes() -> None:
    writes = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}

    for value_set, account in (("default", "kubeoidc-provider"), ("all", "oidc-provider")):
        assert {right[3] for right in granted(objects(value_set), account)}.isdisjoint(writes)


def test_every_binding_names_a_role_of_the_chart() -> None:
    objs = objects("all")
    role_names = {(obj["kind"], obj["metadata"]["name"]) for obj in of_kind(objs, "ClusterRole")}
    role_names |= {(obj["kind"], obj["metadata"]["name"]) for obj in of_kind(objs, "Role")}
    accounts = {obj["metadata"]["name"] for obj in of_kind(objs, "ServiceAccount")}

    for binding in of_kind(objs, "ClusterRoleBinding") + of_kind(objs, "RoleBinding"):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in role_names
        assert {subject["name"] for subject in binding["subjects"]} <= accounts


def test_a_namespace_list_creates_no_cluster_wide_client_or_secret_rights() -> None:
    objs = objects_of(render({"issuer": ISSUER, "watchNamespaces": ["apps"]}))

    cluster_resources = {
        resource
        for role in of_kind(objs, "ClusterRole")
        for rule in role["rules"]
        for resource in rule["resources"]
    }

    assert cluster_resources == {"customresourcedefinitions", "namespaces"}
    assert {role["metadata"]["namespace"] for role in of_kind(objs, "Role")} == {"apps"}
