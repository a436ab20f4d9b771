"""Outgrowing one replica: providers sharing a Redis, disruption budgets, spreading over nodes, and
operators failing over through kopf's peering; and the settings that cannot work stop the render.
"""

from __future__ import annotations

import base64
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


def test_by_default_one_provider_keeps_its_sqlite_state_on_a_claim_that_outlives_rollouts() -> None:
    objs = objects("default")
    mounts = {m["name"]: m["mountPath"] for m in container_of(objs, "provider")["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(objs, "provider")["volumes"]}
    (claim,) = of_kind(objs, "PersistentVolumeClaim")

    assert env_of(container_of(objs, "provider"))[REDIS_URL] == "sqlite:////var/lib/kubeoidc/state.db"
    assert mounts["state"] == "/var/lib/kubeoidc"
    assert volumes["state"] == {
        "name": "state",
        "persistentVolumeClaim": {"claimName": "kubeoidc-provider-state"},
    }
    assert claim["metadata"]["name"] == "kubeoidc-provider-state"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    # The old pod lets go of the file (and the claim) before the new one opens it.
    assert deployment(objs, "provider")["spec"]["replicas"] == 1
    assert deployment(objs, "provider")["spec"]["strategy"] == {"type": "Recreate"}
    assert of_kind(objs, "PodDisruptionBudget") == []


def test_an_existing_claim_is_mounted_and_none_is_created() -> None:
    persistence = {"existingClaim": "kept-state", "storageClassName": "fast"}
    objs = rendered_objects(provider={"storage": {"sqlite": {"persistence": persistence}}})
    volumes = {v["name"]: v for v in pod_spec(objs, "provider")["volumes"]}

    assert volumes["state"]["persistentVolumeClaim"] == {"claimName": "kept-state"}
    assert of_kind(objs, "PersistentVolumeClaim") == []


def test_without_persistence_the_state_is_on_an_empty_dir_and_no_claim_is_made() -> None:
    objs = rendered_objects(provider={"storage": {"sqlite": {"persistence": {"enabled": False}}}})
    volumes = {v["name"]: v for v in pod_spec(objs, "provider")["volumes"]}

    assert "emptyDir" in volumes["state"]
    assert of_kind(objs, "PersistentVolumeClaim") == []


def test_a_redis_url_is_passed_as_it_is_and_the_pod_gets_no_state_volume() -> None:
    url = "redis+sentinel://sentinel-1:26379,sentinel-2:26379/mymaster/0"
    objs = rendered_objects(provider={"replicaCount": 2, "storage": redis(url=url)})
    volumes = {v["name"] for v in pod_spec(objs, "provider")["volumes"]}

    assert env_of(container_of(objs, "provider"))[REDIS_URL] == url
    assert "state" not in volumes
    assert of_kind(objs, "PersistentVolumeClaim") == []
    assert "strategy" not in deployment(objs, "provider")["spec"]
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
    assert container["command"] == ["sh", "-c"]
    assert "exec redis-server - --save '' --appendonly no" in container["args"][0]
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


@pytest.mark.parametrize("persistence", [True, False])
def test_sqlite_with_several_providers_stops_the_render(persistence: bool) -> None:
    values = {"replicaCount": 2, "storage": {"sqlite": {"persistence": {"enabled": persistence}}}}
    with pytest.raises(
        helm.HelmRenderError,
        match=r"replicaCount is 2, but provider\.storage\.type sqlite .* needs provider\.storage\.type=redis",
    ):
        render(with_issuer(provider=values))


def bundled_redis(**auth: Any) -> list[dict[str, Any]]:
    return rendered_objects(provider={"storage": redis(bundled={"enabled": True, "auth": auth})})


def test_the_bundled_redis_requires_a_generated_password_that_the_provider_reads_from_its_secret() -> None:
    objs = bundled_redis()
    (secret,) = of_kind(objs, "Secret")
    reference = {"valueFrom": {"secretKeyRef": {"name": "kubeoidc-redis", "key": "password"}}}
    redis_env, provider_env = env_of(container_of(objs, "redis")), env_of(container_of(objs, "provider"))

    assert secret["metadata"]["name"] == "kubeoidc-redis"
    assert len(base64.b64decode(secret["data"]["password"])) == 40
    # Redis is started with requirepass from the Secret (on its standard input, in no argument list);
    # its probes authenticate with it too.
    assert redis_env["REDIS_PASSWORD"] == reference
    assert redis_env["REDISCLI_AUTH"] == reference
    assert container_of(objs, "redis")["args"] == [
        "printf 'requirepass \"%s\"\\n' \"$REDIS_PASSWORD\" | exec redis-server - --save '' --appendonly no"
    ]
    assert "--protected-mode" not in str(container_of(objs, "redis"))
    assert provider_env["KUBEOIDC_PROVIDER_REDIS_PASSWORD"] == reference
    assert "@" not in provider_env[REDIS_URL]
    assert of_kind(objs, "ConfigMap") == []


def test_the_bundled_redis_password_may_come_from_an_existing_secret() -> None:
    objs = bundled_redis(existingSecret={"name": "my-redis-auth", "key": "secret"})
    reference = {"valueFrom": {"secretKeyRef": {"name": "my-redis-auth", "key": "secret"}}}

    assert of_kind(objs, "Secret") == []
    assert env_of(container_of(objs, "redis"))["REDIS_PASSWORD"] == reference
    assert env_of(container_of(objs, "provider"))["KUBEOIDC_PROVIDER_REDIS_PASSWORD"] == reference


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
