"""The chart grants the operator and the provider exactly their least set of rights, in every mode.

Rights are compared as sets of (scope, apiGroup, resource, verb, name), where scope is "cluster" for a
ClusterRole bound by a ClusterRoleBinding, or the namespace of a Role and its RoleBinding, and name is
the one object a right is limited to (resourceNames), or "" for any: a right that is missing breaks a
real install, a right that is extra is a hole.

Modes: cluster-wide or a namespace list (with or without the release namespace), signing keys managed
by the operator or by hand, one operator or several (kopf's peering).
"""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_rendering import (
    NAMESPACE,
    VALUE_SETS,
    deployment,
    objects,
    objects_of,
    of_kind,
    pod_spec,
    render,
    with_issuer,
)

Right = tuple[str, str, str, str, str]
Rules = dict[tuple[str, str], set[str]]

CLUSTER = "cluster"
ANY = ""

OPERATOR_RULES: Rules = {
    ("kubeoidc.io", "oidcclients"): {"get", "list", "watch", "patch"},
    ("kubeoidc.io", "oidcclients/status"): {"get", "patch", "update"},
    ("kubeoidc.io", "oidcclients/finalizers"): {"update"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
#: kopf's own needs at cluster scope: resource observation always, namespace observation with a list.
KOPF_CRD_RULES: Rules = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
KOPF_NAMESPACE_RULES: Rules = {("", "namespaces"): {"list", "watch"}}
#: kopf's peering, with several operator replicas.
KOPF_PEERING_RULES: Rules = {("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"}}
#: The provider reads no Secret but the signing keys: credentials' digests come in OIDCClients' status.
PROVIDER_RULES: Rules = {
    ("kubeoidc.io", "oidcclients"): {"get", "list", "watch"},
    # Names and uids, so that a re-created ServiceAccount's predecessor's tokens are refused.
    ("", "serviceaccounts"): {"get", "list", "watch"},
}
#: Where a non-resource URL right is recorded (no API group has this name).
URL = "nonResourceURL"
#: The cluster's ServiceAccount issuer discovery and keys: served at cluster scope only, read in every mode.
PROVIDER_ISSUER_DISCOVERY = {
    (CLUSTER, URL, "/.well-known/openid-configuration", "get", ANY),
    (CLUSTER, URL, "/openid/v1/jwks", "get", ANY),
}
#: IdentitySources and the Secrets they name, in the release namespace only, whatever the mode.
PROVIDER_SOURCE_RULES: Rules = {
    ("kubeoidc.io", "identitysources"): {"get", "list", "watch"},
    ("", "secrets"): {"get", "list", "watch"},
}
OPERATOR_SOURCE_RULES: Rules = {
    ("kubeoidc.io", "identitysources"): {"get", "list", "watch", "patch"},
    ("kubeoidc.io", "identitysources/status"): {"get", "patch"},
    ("", "secrets"): {"get", "list", "watch"},
}


def rights(scope: str, rules: Rules, name: str = ANY) -> set[Right]:
    return {
        (scope, group, resource, verb, name) for (group, resource), verbs in rules.items() for verb in verbs
    }


def operator_source_rights() -> set[Right]:
    return rights(NAMESPACE, OPERATOR_SOURCE_RULES)


def provider_source_rights() -> set[Right]:
    return rights(NAMESPACE, PROVIDER_SOURCE_RULES)


def operator_signing_keys_rights(secret: str) -> set[Right]:
    """The operator's rights on the managed signing-keys Secret when its namespace is not served: it
    reads and patches that one Secret, and creates it (a create cannot be limited to a name)."""
    return rights(NAMESPACE, {("", "secrets"): {"create"}}) | rights(
        NAMESPACE, {("", "secrets"): {"get", "patch"}}, secret
    )


def provider_signing_keys_rights(secret: str) -> set[Right]:
    return rights(NAMESPACE, {("", "secrets"): {"get", "list", "watch"}}, secret)


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
            for url in rule.get("nonResourceURLs", []):
                assert ref["kind"] == "ClusterRole", "URLs are granted cluster-wide only"
                assert scope == CLUSTER, "URLs are granted cluster-wide only"
                found.update((scope, URL, url, verb, ANY) for verb in rule["verbs"])
            for group in rule.get("apiGroups", []):
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames", [ANY]):
                            found.add((scope, group, resource, verb, name))
    return found


def rendered_objects(**values: Any) -> list[dict[str, Any]]:
    return objects_of(render(with_issuer(**values)))


# Cluster-wide (the default): the operator's rights on Secrets everywhere cover the managed signing keys;
# the provider reads no Secret but those keys.


def test_cluster_wide_operator_gets_exactly_its_rights_everywhere() -> None:
    assert (
        granted(objects("default"), "kubeoidc-operator")
        == rights(CLUSTER, OPERATOR_RULES) | rights(CLUSTER, KOPF_CRD_RULES) | operator_source_rights()
    )


def test_default_install_lets_the_provider_read_no_secret_but_its_signing_keys() -> None:
    assert granted(objects("default"), "kubeoidc-provider") == (
        rights(CLUSTER, PROVIDER_RULES)
        | PROVIDER_ISSUER_DISCOVERY
        | provider_signing_keys_rights("kubeoidc-signing-keys")
        | provider_source_rights()
    )


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_provider_reads_no_secret_outside_the_release_namespace(value_set: str) -> None:
    objs = objects(value_set)
    account = pod_spec(objs, "provider")["serviceAccountName"]

    secret_rights = {right for right in granted(objs, account) if right[2] == "secrets"}

    # In its own namespace it reads its signing keys and the Secrets its IdentitySources name.
    assert {scope for scope, *_ in secret_rights} <= {NAMESPACE}


def test_cluster_wide_operators_in_failover_also_keep_their_peering() -> None:
    # values-ha: three operators, hand-made signing keys.
    expected = (
        rights(CLUSTER, OPERATOR_RULES)
        | rights(CLUSTER, KOPF_CRD_RULES)
        | rights(CLUSTER, KOPF_PEERING_RULES)
        | operator_source_rights()
    )

    assert granted(objects("ha"), "kubeoidc-operator") == expected
    assert granted(objects("ha"), "kubeoidc-provider") == (
        rights(CLUSTER, PROVIDER_RULES) | PROVIDER_ISSUER_DISCOVERY | provider_source_rights()
    )


# A namespace list without the release namespace: a Role there for the managed signing keys only.


def test_namespaced_operator_gets_its_rights_only_in_the_listed_namespaces_and_on_its_keys() -> None:
    # values-all: team-a and team-b, two operators, managed keys in auth/oidc-signing-keys.
    expected = (
        rights(CLUSTER, KOPF_CRD_RULES)
        | rights(CLUSTER, KOPF_NAMESPACE_RULES)
        | rights(CLUSTER, KOPF_PEERING_RULES)
        | rights("team-a", OPERATOR_RULES)
        | rights("team-b", OPERATOR_RULES)
        | operator_signing_keys_rights("oidc-signing-keys")
        | operator_source_rights()
    )

    assert granted(objects("all"), "oidc-operator") == expected


def test_namespaced_provider_gets_only_issuer_discovery_at_cluster_scope_and_its_keys_at_home() -> None:
    expected = (
        PROVIDER_ISSUER_DISCOVERY
        | rights("team-a", PROVIDER_RULES)
        | rights("team-b", PROVIDER_RULES)
        | provider_signing_keys_rights("oidc-signing-keys")
        | provider_source_rights()
    )

    assert granted(objects("all"), "oidc-provider") == expected


def test_hand_made_keys_need_no_rights_in_an_unserved_release_namespace() -> None:
    objs = rendered_objects(watchNamespaces=["apps"], signingKeys={"managed": False})

    assert granted(objs, "kubeoidc-operator") == (
        rights(CLUSTER, KOPF_CRD_RULES)
        | rights(CLUSTER, KOPF_NAMESPACE_RULES)
        | rights("apps", OPERATOR_RULES)
        | operator_source_rights()
    )
    assert granted(objs, "kubeoidc-provider") == (
        rights("apps", PROVIDER_RULES) | PROVIDER_ISSUER_DISCOVERY | provider_source_rights()
    )
    # Only the identity sources' Roles sit in the release namespace.
    home = [
        role["metadata"]["name"]
        for role in of_kind(objs, "Role")
        if role["metadata"]["namespace"] == NAMESPACE
    ]
    assert all(name.endswith("-identity-sources") for name in home)


def test_a_served_release_namespace_needs_no_operator_role_of_its_own_for_the_keys() -> None:
    objs = rendered_objects(watchNamespaces=[NAMESPACE, "apps"])

    assert granted(objs, "kubeoidc-operator") == (
        rights(CLUSTER, KOPF_CRD_RULES)
        | rights(CLUSTER, KOPF_NAMESPACE_RULES)
        | rights(NAMESPACE, OPERATOR_RULES)
        | rights("apps", OPERATOR_RULES)
        | operator_source_rights()
    )
    assert granted(objs, "kubeoidc-provider") == (
        rights(NAMESPACE, PROVIDER_RULES)
        | rights("apps", PROVIDER_RULES)
        | PROVIDER_ISSUER_DISCOVERY
        | provider_signing_keys_rights("kubeoidc-signing-keys")
        | provider_source_rights()
    )


def test_signing_keys_roles_name_the_chosen_secret() -> None:
    objs = rendered_objects(watchNamespaces=["apps"], signingKeys={"secretName": "jwks"})

    assert granted(objs, "kubeoidc-operator") >= operator_signing_keys_rights("jwks")
    assert granted(objs, "kubeoidc-provider") >= provider_signing_keys_rights("jwks")


def test_only_several_operators_get_peering_rights() -> None:
    for value_set in VALUE_SETS:
        objs = objects(value_set)
        account = pod_spec(objs, "operator")["serviceAccountName"]
        several = deployment(objs, "operator")["spec"]["replicas"] > 1
        peering_rights = {right for right in granted(objs, account) if right[1] == "kopf.dev"}
        assert peering_rights == (rights(CLUSTER, KOPF_PEERING_RULES) if several else set()), value_set


# Every mode.


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_no_rule_uses_a_wildcard(value_set: str) -> None:
    for role in of_kind(objects(value_set), "ClusterRole") + of_kind(objects(value_set), "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), role["metadata"]["name"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_only_the_signing_keys_rules_are_limited_to_a_name(value_set: str) -> None:
    for role in of_kind(objects(value_set), "ClusterRole") + of_kind(objects(value_set), "Role"):
        for rule in role["rules"]:
            if "resourceNames" in rule:
                assert role["metadata"]["name"].endswith("-signing-keys")
                assert rule["resources"] == ["secrets"]


def test_provider_never_writes() -> None:
    writes = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}

    for value_set, account in (
        ("default", "kubeoidc-provider"),
        ("all", "oidc-provider"),
        ("ha", "kubeoidc-provider"),
    ):
        assert {right[3] for right in granted(objects(value_set), account)}.isdisjoint(writes)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_binding_names_a_role_of_the_chart(value_set: str) -> None:
    objs = objects(value_set)
    role_names = {(obj["kind"], obj["metadata"]["name"]) for obj in of_kind(objs, "ClusterRole")}
    role_names |= {(obj["kind"], obj["metadata"]["name"]) for obj in of_kind(objs, "Role")}
    accounts = {obj["metadata"]["name"] for obj in of_kind(objs, "ServiceAccount")}

    for binding in of_kind(objs, "ClusterRoleBinding") + of_kind(objs, "RoleBinding"):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in role_names
        assert {subject["name"] for subject in binding["subjects"]} <= accounts


def test_a_namespace_list_creates_no_cluster_wide_client_or_secret_rights() -> None:
    objs = rendered_objects(watchNamespaces=["apps"], operator={"replicaCount": 2})

    cluster_resources = {
        resource
        for role in of_kind(objs, "ClusterRole")
        for rule in role["rules"]
        for resource in rule.get("resources", [])
    }

    assert cluster_resources == {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}
    assert {role["metadata"]["namespace"] for role in of_kind(objs, "Role")} == {"apps", NAMESPACE}


def test_bundled_redis_gets_no_service_account_token() -> None:
    (redis,) = [
        dep for dep in of_kind(objects("all"), "Deployment") if dep["metadata"]["name"].endswith("-redis")
    ]

    assert redis["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_identity_source_rights_are_granted_in_the_release_namespace_only(value_set: str) -> None:
    objs = objects(value_set)
    for component in ("operator", "provider"):
        account = pod_spec(objs, component)["serviceAccountName"]
        on_sources = {right for right in granted(objs, account) if right[2].startswith("identitysources")}
        assert on_sources
        assert {right[0] for right in on_sources} == {NAMESPACE}


def test_the_provider_is_told_where_its_identity_sources_are() -> None:
    env = {
        e["name"]: e.get("value") for e in pod_spec(objects("default"), "provider")["containers"][0]["env"]
    }
    assert env["KUBEOIDC_PROVIDER_IDENTITY_NAMESPACE"] == NAMESPACE


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_only_the_provider_reads_non_resource_urls_and_only_the_issuer_discovery(value_set: str) -> None:
    objs = objects(value_set)
    for account in {obj["metadata"]["name"] for obj in of_kind(objs, "ServiceAccount")}:
        urls = {right for right in granted(objs, account) if right[1] == URL}
        expected = PROVIDER_ISSUER_DISCOVERY if account.endswith("-provider") else set()
        assert urls == expected, (value_set, account)


def test_without_rbac_the_chart_grants_no_issuer_discovery() -> None:
    objs = rendered_objects(rbac={"create": False})

    assert of_kind(objs, "ClusterRole") == []
    assert of_kind(objs, "ClusterRoleBinding") == []
