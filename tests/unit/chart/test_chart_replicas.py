"""Outgrowing one replica: providers sharing a Redis, disruption budgets, spreading over nodes, and
operators failing over through kopf's peering; and the settings that cannot work stop the render.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from support.chart_rendering import (
    NAMESPACE,
    container_of,
    deployment,
    env_of,
    objects,
    objects_of,
    of_kind,
    pod_spec,
    render,
    with_issuer,
)

REDIS_URL = "KUBEOIDC_PROVIDER_STORAGE_URL"


def rendered_objects(**values: Any) -> list[dict[str, Any]]:
    return objects_of(render(with_issuer(**values)))


def redis(**settings: Any) -> dict[str, Any]:
    return {"type": "redis", "redis": settings}


def selector(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kubeoidc",
        "app.kubernetes.io/instance": "kubeoidc",
        "app.kubernetes.io/component": component,
    }


# The provider's state.


def test_one_provider_keeps_its_state_in_sqlite_on_an_empty_dir() -> None:
    objs = objects("default")
    mounts = {m["name"]: m["mountPath"] for m in container_of(objs, "provider")["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(objs, "provider")["volumes"]}

    assert env_of(container_of(objs, "provider"))[REDIS_URL] == "sqlite:////var/lib/kubeoidc/state.db"
    assert mounts["state"] == "/var/lib/kubeoidc"
    assert "emptyDir" in volumes["state"]
    assert of_kind(objs, "PodDisruptionBudget") == []


def test_a_redis_url_is_passed_as_it_is_and_the_pod_gets_no_state_volume() -> None:
    url = "redis+sentinel://sentinel-1:26379,sentinel-2:26379/mymaster/0"
    objs = rendered_objects(provider={"replicaCount": 2, "storage": redis(url=url)})
    volumes = {v["name"] for v in pod_spec(objs, "provider")["volumes"]}

    assert env_of(container_of(objs, "provider"))[REDIS_URL] == url
    assert "state" not in volumes
    assert [obj for obj in objs if obj["metadata"]["labels"]["app.kubernetes.io/component"] == "redis"] == []


def test_a_redis_url_with_a_password_comes_from_a_secret() -> None:
    objs = objects("ha")

    assert env_of(container_of(objs, "provider"))[REDIS_URL] == {
        "valueFrom": {"secretKeyRef": {"name": "kubeoidc-redis", "key": "url"}}
    }
    assert deployment(objs, "provider")["spec"]["replicas"] == 2


def test_the_bundled_redis_runs_in_memory_only_and_admits_only_the_providers() -> None:
    objs = rendered_objects(provider={"replicaCount": 2, "storage": redis(bundled={"enabled": True})})
    container = container_of(objs, "redis")
    (service,) = [svc for svc in of_kind(objs, "Service") if svc["metadata"]["name"] == "kubeoidc-redis"]
    (policy,) = of_kind(objs, "NetworkPolicy")

    assert env_of(container_of(objs, "provider"))[REDIS_URL] == "redis://kubeoidc-redis:6379/0"
    assert container["image"] == "redis:7.4-alpine"
    assert container["command"] == ["redis-server"]
    assert container["args"][:4] == ["--save", "", "--appendonly", "no"]
    assert container["readinessProbe"]["exec"]["command"] == ["redis-cli", "ping"]
    assert container["livenessProbe"]["exec"]["command"] == ["redis-cli", "ping"]
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert deployment(objs, "redis")["spec"]["replicas"] == 1
    assert service["spec"]["selector"] == selector("redis")
    assert service["spec"]["ports"] == [
        {"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}
    ]
    assert policy["spec"]["podSelector"] == {"matchLabels": selector("redis")}
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": selector("provider")}}],
            "ports": [{"port": "redis", "protocol": "TCP"}],
        }
    ]


def test_sqlite_with_several_providers_stops_the_render() -> None:
    with pytest.raises(
        helm.HelmRenderError, match=r"provider\.replicaCount is 2, but provider\.storage\.type sqlite"
    ):
        render(with_issuer(provider={"replicaCount": 2}))


@pytest.mark.parametrize(
    ("storage", "count"),
    [
        (redis(), 0),
        (redis(url="redis://redis:6379/0", existingSecret={"name": "redis-url"}), 2),
        (redis(url="redis://redis:6379/0", bundled={"enabled": True}), 2),
    ],
)
def test_redis_storage_needs_exactly_one_redis(storage: dict[str, Any], count: int) -> None:
    with pytest.raises(helm.HelmRenderError, match=f"needs exactly one Redis, but {count} are set"):
        render(with_issuer(provider={"storage": storage}))


def test_a_bundled_redis_without_redis_storage_stops_the_render() -> None:
    with pytest.raises(helm.HelmRenderError, match=r"set that too"):
        render(with_issuer(provider={"storage": {"redis": {"bundled": {"enabled": True}}}}))


# Disruption budgets and spreading.


@pytest.mark.parametrize("value_set", ["all", "ha"])
def test_several_replicas_get_a_disruption_budget_over_their_own_pods(value_set: str) -> None:
    objs = objects(value_set)
    budgets = {
        pdb["metadata"]["labels"]["app.kubernetes.io/component"]: pdb
        for pdb in of_kind(objs, "PodDisruptionBudget")
    }

    assert set(budgets) == {"operator", "provider"}
    for component, budget in budgets.items():
        assert budget["metadata"]["namespace"] == NAMESPACE
        assert budget["spec"]["selector"] == deployment(objs, component)["spec"]["selector"]
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert budgets["provider"]["spec"]["minAvailable"] == (2 if value_set == "all" else 1)


@pytest.mark.parametrize("component", ["provider", "operator"])
def test_a_budget_that_would_block_every_drain_stops_the_render(component: str) -> None:
    values = {component: {"replicaCount": 2, "podDisruptionBudget": {"minAvailable": 2}}}
    if component == "provider":
        values["provider"]["storage"] = redis(url="redis://redis:6379/0")

    with pytest.raises(
        helm.HelmRenderError, match=rf"{component}\.podDisruptionBudget\.minAvailable \(2\) must be below"
    ):
        render(with_issuer(**values))


@pytest.mark.parametrize("value_set", ["default", "ha"])
@pytest.mark.parametrize("component", ["provider", "operator"])
def test_replicas_are_spread_over_nodes_by_default(value_set: str, component: str) -> None:
    affinity = pod_spec(objects(value_set), component)["affinity"]

    assert affinity == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector(component)},
                    },
                }
            ]
        }
    }


def test_an_explicit_affinity_replaces_the_default_spreading() -> None:
    node_affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["auth"]}]}
                ]
            }
        }
    }
    objs = rendered_objects(operator={"affinity": node_affinity}, provider={"affinity": node_affinity})

    assert pod_spec(objs, "operator")["affinity"] == node_affinity
    assert pod_spec(objs, "provider")["affinity"] == node_affinity


# Operator failover.


def test_one_operator_is_recreated_and_peers_with_nobody() -> None:
    objs = objects("default")
    env = env_of(container_of(objs, "operator"))

    assert deployment(objs, "operator")["spec"]["strategy"] == {"type": "Recreate"}
    assert of_kind(objs, "ClusterKopfPeering") == []
    assert not {"KUBEOIDC_OPERATOR_PEERING", "KUBEOIDC_OPERATOR_PRIORITY"} & set(env)


def test_several_operators_share_a_cluster_peering_named_after_the_release() -> None:
    objs = objects("ha")
    dep = deployment(objs, "operator")
    env = env_of(container_of(objs, "operator"))
    (peering,) = of_kind(objs, "ClusterKopfPeering")

    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == f"{NAMESPACE}.kubeoidc"
    assert "namespace" not in peering["metadata"]
    assert env["KUBEOIDC_OPERATOR_PEERING"] == peering["metadata"]["name"]
    assert env["KUBEOIDC_OPERATOR_PEERING_LIFETIME"] == "60"
    # No fixed priority: each replica draws its own at start, so they never tie (a tie pauses all).
    assert "KUBEOIDC_OPERATOR_PRIORITY" not in env
