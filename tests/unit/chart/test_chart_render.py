"""The chart lints, renders valid manifests for Kubernetes 1.29 to 1.33, and types and documents values."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from kubeoidc_provider.forwarded import TrustedProxies
from kubeoidc_provider.settings import ProviderSettings
from support.chart_rendering import (
    CHART_DIR,
    ISSUER,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    VALUE_SETS,
    container_of,
    deployment,
    env_of,
    manifests,
    objects,
    objects_of,
    of_kind,
    pod_spec,
    render,
    rendered,
    values_for,
)

WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


def chart_crds() -> dict[tuple[str, str], dict[str, Any]]:
    """The CRDs the chart ships, by (apiVersion, kind) of the resources they serve."""
    served: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((CHART_DIR / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                if version["served"]:
                    api_version = f"{crd['spec']['group']}/{version['name']}"
                    served[(api_version, crd["spec"]["names"]["kind"])] = {
                        "scope": crd["spec"]["scope"],
                        "schema": version["schema"]["openAPIV3Schema"],
                    }
    return served


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """kubernetes-validate knows only built-in kinds (a custom resource only warns): a custom resource
    is checked against the chart's own CRD instead, for its kind, scope and schema."""
    crd = chart_crds().get((obj["apiVersion"], obj["kind"]))
    assert crd is not None, f"{obj['kind']} is neither a built-in kind nor served by a CRD of the chart"
    assert ("namespace" in obj["metadata"]) == (crd["scope"] == "Namespaced")
    jsonschema.validate(obj, crd["schema"])


def leaf_paths(values: Any, prefix: str = "") -> set[str]:
    """Dotted paths of the leaves of a values tree (an empty map or list is a leaf)."""
    if isinstance(values, dict) and values:
        paths: set[str] = set()
        for key, value in values.items():
            paths |= leaf_paths(value, f"{prefix}{key}.")
        return paths
    return {prefix.rstrip(".")}


@pytest.mark.parametrize("value_set", VALUE_SETS)
@pytest.mark.parametrize("kube_version", ["v1.29.0", "v1.33.0"])
def test_chart_lints_without_warnings(value_set: str, kube_version: str) -> None:
    report = helm.lint(CHART_DIR, values_for(value_set), strict=True, kube_version=kube_version)

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_manifests_are_valid_kubernetes_objects(value_set: str, kube_version: str) -> None:
    objs = objects(value_set)
    assert objs

    for obj in objs:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            validate_custom_resource(obj)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_manifests_pass_yamllint(value_set: str) -> None:
    # Helm's toYaml writes block sequences unindented ("drop:\n- ALL") while the templates indent
    # theirs, so sequence indentation is left free; everything else is yamllint's relaxed profile.
    config = YamlLintConfig(
        "extends: relaxed\n"
        "rules:\n"
        "  line-length: disable\n"
        "  indentation: {spaces: consistent, indent-sequences: whatever}\n"
    )

    problems = [
        f"{path}:{problem.line}: {problem.desc} ({problem.rule})"
        for path, text in manifests(rendered(value_set))
        for problem in linter.run(text, config)
    ]

    assert problems == []


def test_default_render_holds_one_of_each_object_cluster_wide() -> None:
    kinds = sorted(obj["kind"] for obj in objects("default"))

    assert kinds == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",  # the provider's ServiceAccount issuer discovery
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Deployment",
        "Deployment",
        "PersistentVolumeClaim",  # the provider's SQLite state, kept across rollouts
        "Role",  # the provider's read of its signing keys
        "Role",  # the identity sources' rights, in the release namespace (operator)
        "Role",  # the identity sources' rights, in the release namespace (provider)
        "RoleBinding",
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceAccount",
    ]


def test_namespaced_objects_land_in_the_release_namespace() -> None:
    for obj in objects("default"):
        if obj["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_every_object_carries_the_recommended_labels() -> None:
    for value_set in VALUE_SETS:
        for obj in objects(value_set):
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == "kubeoidc"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/part-of"] == "kubeoidc"
            assert labels["app.kubernetes.io/component"] in {"operator", "provider", "redis"}
            assert labels["app.kubernetes.io/version"] == "0.1.0"


def test_image_tag_defaults_to_the_app_version() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        app_version = chart.metadata["appVersion"]
    images = {
        container["image"]
        for dep in of_kind(objects("default"), "Deployment")
        for container in dep["spec"]["template"]["spec"]["containers"]
    }

    assert images == {f"kubeoidc/kubeoidc:{app_version}"}


def test_custom_image_and_pull_secrets_reach_every_deployment() -> None:
    objs = objects("all")
    images = {
        "operator": "registry.example.com/platform/kubeoidc:0.1.0-rc.1",
        "provider": "registry.example.com/platform/kubeoidc:0.1.0-rc.1",
        "redis": "registry.example.com/mirror/redis:7.4.2-alpine",
    }

    assert len(of_kind(objs, "Deployment")) == len(images)
    for component, image in images.items():
        assert container_of(objs, component)["image"] == image
        assert container_of(objs, component)["imagePullPolicy"] == "Always"
        assert pod_spec(objs, component)["imagePullSecrets"] == [{"name": "regcred"}]


def test_operator_runs_alone_with_its_settings_and_keeps_the_signing_keys() -> None:
    dep = deployment(objects("default"), "operator")
    (container,) = dep["spec"]["template"]["spec"]["containers"]

    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert container["args"] == ["operator"]
    assert env_of(container) == {
        "KUBEOIDC_OPERATOR_ISSUER": ISSUER,
        "KUBEOIDC_OPERATOR_NAMESPACES": "",
        "KUBEOIDC_OPERATOR_RESYNC_INTERVAL": "300",
        "KUBEOIDC_OPERATOR_LIVENESS_PORT": "8081",
        "KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET": "auth/kubeoidc-signing-keys",
        "KUBEOIDC_OPERATOR_IDENTITY_NAMESPACE": "auth",
        "KUBEOIDC_OPERATOR_KEY_ALG": "RS256",
        "KUBEOIDC_OPERATOR_KEY_ROTATION_PERIOD": "720h",
        "KUBEOIDC_OPERATOR_KEY_PUBLISH_AHEAD": "24h",
        "KUBEOIDC_OPERATOR_KEY_RETIRE_AFTER": "24h",
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {"name": "healthz", "containerPort": 8081, "protocol": "TCP"} in container["ports"]


def test_provider_listens_on_all_interfaces_and_follows_the_managed_signing_keys() -> None:
    dep = deployment(objects("default"), "provider")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert container["args"] == ["provider"]
    assert env == {
        "KUBEOIDC_PROVIDER_ISSUER": ISSUER,
        "KUBEOIDC_PROVIDER_HOST": "0.0.0.0",
        "KUBEOIDC_PROVIDER_PORT": "8080",
        "KUBEOIDC_PROVIDER_WORKERS": "1",
        "KUBEOIDC_PROVIDER_HEALTH_PORT": "9090",
        "KUBEOIDC_PROVIDER_FORWARDED_ALLOW_IPS": "127.0.0.1",
        "KUBEOIDC_PROVIDER_NAMESPACES": "",
        "KUBEOIDC_PROVIDER_REGISTRY_STALE_AFTER": "60",
        "KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET": "auth/kubeoidc-signing-keys",
        "KUBEOIDC_PROVIDER_IDENTITY_NAMESPACE": "auth",
        "KUBEOIDC_PROVIDER_USERS_FILE": "/etc/kubeoidc/users/users.yaml",
        "KUBEOIDC_PROVIDER_STORAGE_URL": "sqlite:////var/lib/kubeoidc/state.db",
    }
    assert env["KUBEOIDC_PROVIDER_USERS_FILE"].startswith(mounts["users"] + "/")
    assert set(volumes) == {"users", "state", "tmp"}
    assert volumes["users"]["secret"]["secretName"] == "kubeoidc-users"
    assert volumes["users"]["secret"]["items"] == [{"key": "users.yaml", "path": "users.yaml"}]
    assert mounts["state"] == "/var/lib/kubeoidc"
    assert volumes["state"]["persistentVolumeClaim"] == {"claimName": "kubeoidc-provider-state"}
    assert mounts["tmp"] == "/tmp"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_probes_and_metrics_use_the_health_port_which_no_service_or_ingress_routes(value_set: str) -> None:
    objs = objects(value_set)
    container = container_of(objs, "provider")

    assert env_of(container)["KUBEOIDC_PROVIDER_HEALTH_PORT"] == "9090"
    assert {"name": "health", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    provider_services = [
        service
        for service in of_kind(objs, "Service")
        if service["metadata"]["labels"]["app.kubernetes.io/component"] == "provider"
    ]
    assert [port["targetPort"] for service in provider_services for port in service["spec"]["ports"]] == [
        "http"
    ]
    for ingress in of_kind(objs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"name": "http"}


def test_service_points_at_the_provider_pods() -> None:
    objs = objects("default")
    (service,) = of_kind(objs, "Service")
    pod_labels = deployment(objs, "provider")["spec"]["template"]["metadata"]["labels"]

    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "provider"


def test_every_option_reaches_the_rendered_objects() -> None:
    objs = objects("all")
    values = values_for("all")
    operator = deployment(objs, "operator")
    provider = deployment(objs, "provider")
    operator_pod = operator["spec"]["template"]
    provider_pod = provider["spec"]["template"]
    operator_env = env_of(container_of(objs, "operator"))
    provider_env = env_of(container_of(objs, "provider"))
    (ingress,) = of_kind(objs, "Ingress")
    (service,) = [
        obj for obj in of_kind(objs, "Service") if obj["metadata"]["name"] == "platform-oidc-provider"
    ]
    (peering,) = of_kind(objs, "ClusterKopfPeering")
    budgets = {
        pdb["metadata"]["name"]: pdb["spec"]["minAvailable"] for pdb in of_kind(objs, "PodDisruptionBudget")
    }
    redis = container_of(objs, "redis")

    assert operator["metadata"]["name"] == "platform-oidc-operator"
    assert operator_pod["metadata"]["labels"]["app.kubernetes.io/name"] == "oidc"
    assert operator_env["KUBEOIDC_OPERATOR_NAMESPACES"] == "team-a,team-b"
    assert operator_env["KUBEOIDC_OPERATOR_RESYNC_INTERVAL"] == "120"
    assert provider_env["KUBEOIDC_PROVIDER_NAMESPACES"] == "team-a,team-b"
    assert operator["spec"]["replicas"] == 2
    assert peering["metadata"]["name"] == "platform-oidc"
    assert operator_env["KUBEOIDC_OPERATOR_PEERING"] == "platform-oidc"
    assert operator_env["KUBEOIDC_OPERATOR_PEERING_LIFETIME"] == "30"
    assert budgets == {"platform-oidc-operator": "50%", "platform-oidc-provider": 2}
    assert provider["spec"]["replicas"] == 3
    # The ingress controllers' CIDRs are believed too.
    assert provider_env["KUBEOIDC_PROVIDER_FORWARDED_ALLOW_IPS"] == (
        "10.0.0.0/8,192.168.0.0/16,10.42.0.0/16,fd00:42::/64"
    )
    assert provider_env["KUBEOIDC_PROVIDER_REDIS_PASSWORD"] == {
        "valueFrom": {"secretKeyRef": {"name": "platform-oidc-redis-auth", "key": "redis-password"}}
    }
    assert provider_env["KUBEOIDC_PROVIDER_REGISTRY_STALE_AFTER"] == "120"
    assert provider_env["KUBEOIDC_PROVIDER_WORKERS"] == "2"
    assert provider_env["KUBEOIDC_PROVIDER_STORAGE_URL"] == "redis://platform-oidc-redis:6379/0"
    assert redis["resources"] == values["provider"]["storage"]["redis"]["bundled"]["resources"]
    assert operator_env["KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET"] == "auth/oidc-signing-keys"
    assert provider_env["KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET"] == "auth/oidc-signing-keys"
    assert operator_env["KUBEOIDC_OPERATOR_KEY_ALG"] == "ES256"
    assert operator_env["KUBEOIDC_OPERATOR_KEY_ROTATION_PERIOD"] == "90d"
    assert operator_env["KUBEOIDC_OPERATOR_KEY_PUBLISH_AHEAD"] == "48h"
    assert operator_env["KUBEOIDC_OPERATOR_KEY_RETIRE_AFTER"] == "12h"
    assert operator_pod["metadata"]["annotations"] == {"example.com/scrape": "false"}
    assert provider_pod["metadata"]["annotations"] == {"example.com/scrape": "true"}
    assert operator_pod["spec"]["serviceAccountName"] == "oidc-operator"
    assert provider_pod["spec"]["serviceAccountName"] == "oidc-provider"
    for pod, component in ((operator_pod, "operator"), (provider_pod, "provider")):
        for key in ("nodeSelector", "tolerations", "affinity"):
            assert pod["spec"][key] == values[component][key]
        assert pod["spec"]["containers"][0]["resources"] == values[component]["resources"]
    assert {v["name"]: v for v in provider_pod["spec"]["volumes"]}["users"]["secret"][
        "secretName"
    ] == "oidc-users"
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["port"] == 8443
    for account in of_kind(objs, "ServiceAccount"):
        assert account["metadata"]["annotations"] == {"example.com/role": "oidc"}
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "login-tls", "hosts": ["login.example.com"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "login.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/"
    assert path["backend"]["service"] == {"name": "platform-oidc-provider", "port": {"name": "http"}}


def test_existing_service_accounts_and_rbac_can_be_brought_by_the_user() -> None:
    values = {
        "issuer": ISSUER,
        "serviceAccount": {"create": False, "operatorName": "my-operator", "providerName": "my-provider"},
        "rbac": {"create": False},
    }

    objs = objects_of(render(values))

    assert sorted(obj["kind"] for obj in objs) == [
        "Deployment",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
    ]
    assert deployment(objs, "operator")["spec"]["template"]["spec"]["serviceAccountName"] == "my-operator"
    assert deployment(objs, "provider")["spec"]["template"]["spec"]["serviceAccountName"] == "my-provider"


def test_missing_issuer_stops_rendering_with_a_clear_message() -> None:
    with pytest.raises(helm.HelmRenderError, match="issuer is required"):
        render({})


def test_ingress_without_hosts_stops_rendering() -> None:
    with pytest.raises(helm.HelmRenderError, match=r"ingress\.hosts needs at least one host"):
        render({"issuer": ISSUER, "ingress": {"enabled": True}})


@pytest.mark.parametrize(
    ("bad_values", "where"),
    [
        ({"provider": {"replicaCount": "x"}}, "/provider/replicaCount"),
        ({"provider": {"replicaCount": -1}}, "/provider/replicaCount"),
        ({"provider": {"forwardedAllowIps": ""}}, "/provider/forwardedAllowIps"),
        ({"provider": {"registryStaleAfter": -1}}, "/provider/registryStaleAfter"),
        ({"provider": {"workers": 0}}, "/provider/workers"),
        ({"provider": {"storage": {"type": "postgres"}}}, "/provider/storage/type"),
        ({"provider": {"storage": {"redis": {"url": "http://redis:6379"}}}}, "/provider/storage/redis/url"),
        ({"provider": {"storage": {"redis": {"bundled": {"image": {"tag": "latest"}}}}}}, "/tag"),
        (
            {"provider": {"podDisruptionBudget": {"minAvailable": "half"}}},
            "/podDisruptionBudget/minAvailable",
        ),
        ({"operator": {"replicaCount": 1.5}}, "/operator/replicaCount"),
        ({"operator": {"peering": {"priority": 7}}}, "/operator/peering"),
        ({"operator": {"peering": {"lifetime": 2}}}, "/operator/peering/lifetime"),
        ({"operator": {"peering": {"name": "Not_A_Name"}}}, "/operator/peering/name"),
        ({"signingKeys": {"managed": "yes"}}, "/signingKeys/managed"),
        ({"signingKeys": {"alg": "HS256"}}, "/signingKeys/alg"),
        ({"signingKeys": {"rotationPeriod": "30 days"}}, "/signingKeys/rotationPeriod"),
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"issuer": "login.example.com"}, "/issuer"),
        ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
        ({"operator": {"resyncInterval": 0}}, "/operator/resyncInterval"),
        ({"service": {"port": 70000}}, "/service/port"),
        ({"rbac": {"create": "yes"}}, "/rbac/create"),
        ({"replicaCount": 2}, "additional properties 'replicaCount'"),
    ],
)
def test_schema_refuses_bad_values(bad_values: dict[str, Any], where: str) -> None:
    values = {"issuer": ISSUER, **bad_values}

    with helm.Chart.load(CHART_DIR) as chart, pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmValuesError):
        render(values)


def test_schema_accepts_the_defaults_and_every_option() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema({"issuer": ISSUER})
        chart.validate_schema(values_for("all"))


def test_values_all_sets_every_value() -> None:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    set_paths = leaf_paths(values_for("all"))

    unset = [
        path
        for path in sorted(leaf_paths(defaults))
        if not any(other == path or other.startswith(f"{path}.") for other in set_paths)
    ]

    assert unset == []


def test_schema_types_every_value() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    def check(values: dict[str, Any], node: dict[str, Any], where: str) -> None:
        assert node.get("type") == "object", where
        for key, value in values.items():
            assert key in node.get("properties", {}), f"{where}.{key} is not in the schema"
            child = node["properties"][key]
            assert "type" in child, f"{where}.{key} has no type"
            if isinstance(value, dict) and child.get("properties"):
                check(value, child, f"{where}.{key}")

    check(defaults, schema, "values")
    assert schema["additionalProperties"] is False


def test_every_value_is_documented_by_a_comment_starting_with_its_name() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    key_line = re.compile(r"^(\s*)([A-Za-z][A-Za-z0-9]*):")
    undocumented = []

    for number, line in enumerate(lines):
        match = key_line.match(line)
        if not match:
            continue
        indent, key = match.groups()
        first = number
        while first > 0 and lines[first - 1].startswith(f"{indent}# "):
            first -= 1
        if first == number or not lines[first].startswith(f"{indent}# {key} "):
            undocumented.append(f"line {number + 1}: {key}")

    assert undocumented == []


def test_notes_tell_how_to_get_the_client_credentials() -> None:
    notes = rendered("default")["kubeoidc/templates/NOTES.txt"]

    assert "kubectl -n auth create secret generic kubeoidc-users --from-file=users.yaml" in notes
    assert "The operator creates the signing keys in the Secret auth/kubeoidc-signing-keys" in notes
    assert "jwks.json" not in notes
    assert "{.status.secretName}" in notes
    assert "{.data.client_id}" in notes
    assert "{.data.client_secret}" in notes
    assert "port-forward service/kubeoidc-provider 8080:80" in notes
    assert (
        "https://login.example.com/.well-known/openid-configuration"
        in rendered("all")["kubeoidc/templates/NOTES.txt"]
    )


def test_notes_ask_for_hand_made_signing_keys_when_they_are_not_managed() -> None:
    notes = rendered("ha")["kubeoidc/templates/NOTES.txt"]

    assert "kubeoidc keys generate > jwks.json" in notes
    assert "kubectl -n auth create secret generic kubeoidc-signing-keys --from-file=jwks.json" in notes


def test_notes_warn_that_the_bundled_redis_loses_its_state() -> None:
    assert "the bundled Redis is for trials" in rendered("all")["kubeoidc/templates/NOTES.txt"]
    assert "Redis" not in rendered("default")["kubeoidc/templates/NOTES.txt"]


def test_default_install_believes_no_forwarded_header() -> None:
    # Only the pod's own loopback is a trusted proxy, and none runs there: X-Forwarded-For from a
    # client never chooses the address failed logins are counted against.
    env = env_of(container_of(objects("default"), "provider"))

    assert env["KUBEOIDC_PROVIDER_FORWARDED_ALLOW_IPS"] == "127.0.0.1"


def test_the_ingress_controllers_cidrs_are_the_proxies_believed_and_the_provider_accepts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {"issuer": ISSUER, "ingress": {"controllerCIDRs": ["10.42.0.0/16", "fd00:42::/64"]}}
    env = env_of(container_of(objects_of(render(values)), "provider"))

    assert env["KUBEOIDC_PROVIDER_FORWARDED_ALLOW_IPS"] == "127.0.0.1,10.42.0.0/16,fd00:42::/64"
    monkeypatch.setenv("KUBEOIDC_PROVIDER_FORWARDED_ALLOW_IPS", env["KUBEOIDC_PROVIDER_FORWARDED_ALLOW_IPS"])
    trusted = TrustedProxies(ProviderSettings(issuer=ISSUER).forwarded_allow_ips)
    assert "10.42.7.1" in trusted
    assert "10.43.0.1" not in trusted


@pytest.mark.parametrize("cidr", ["*", "10.0.0.0/8 ", "ingress.example.com"])
def test_a_controller_cidr_that_is_not_an_address_is_refused(cidr: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="controllerCIDRs"):
        render({"issuer": ISSUER, "ingress": {"controllerCIDRs": [cidr]}})
