"""The Helm chart, rendered with the pinned helm for the default values and every example values file."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .deploy_helpers import CHART, EXAMPLES, ROOT, Manifest, RenderError, find, one

VALUE_SETS: list[Path | None] = [None, *EXAMPLES]
IDS = ["default", *[p.stem for p in EXAMPLES]]
VLLM_PREFIX = ["--host", "0.0.0.0", "--port", "8000"]


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"values-scale-out.yaml", "values-external-redis.yaml"}


@pytest.fixture(params=VALUE_SETS, ids=IDS)
def manifests(request: pytest.FixtureRequest, render: Any) -> list[Manifest]:
    rendered: list[Manifest] = render(request.param)
    return rendered


def pod_spec(obj: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def container(obj: Manifest, name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [c for c in pod_spec(obj)["containers"] if c["name"] == name]
    assert len(matches) == 1, f"expected one container {name}"
    return matches[0]


# --- gateway -------------------------------------------------------------------------------------


def test_gateway_runs_non_root_with_read_only_root(manifests: list[Manifest]) -> None:
    deployment = one(manifests, "Deployment", "gateway")
    spec = pod_spec(deployment)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    gateway = container(deployment, "gateway")
    security = gateway["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    tmp = {m["name"]: m["mountPath"] for m in gateway["volumeMounts"]}["tmp"]
    assert tmp == "/tmp"
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in spec["volumes"]


def test_gateway_probes_and_resources(manifests: list[Manifest]) -> None:
    gateway = container(one(manifests, "Deployment", "gateway"), "gateway")
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert gateway["resources"]["requests"]["cpu"]
    assert gateway["resources"]["limits"]["memory"]


def test_gateway_spreads_scales_and_survives_drains(manifests: list[Manifest]) -> None:
    deployment = one(manifests, "Deployment", "gateway")
    assert pod_spec(deployment)["topologySpreadConstraints"]
    hpa = one(manifests, "HorizontalPodAutoscaler", "gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    pdb = one(manifests, "PodDisruptionBudget", "gateway")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_gateway_settings_configmap(manifests: list[Manifest], gpu_recipe_args: list[str]) -> None:
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_HOST"] == "0.0.0.0"
    assert settings["RSAFE_PORT"] == "8080"
    assert settings["RSAFE_SHIPPED_POLICY_DIR"] == "/app/policies"
    assert all(key.startswith("RSAFE_") for key in settings)
    served = gpu_recipe_args[gpu_recipe_args.index("--served-model-name") + 1]
    assert settings["RSAFE_MODEL_NAME"] == served
    vllm_service = one(manifests, "Service", "vllm")
    assert settings["RSAFE_MODEL_SERVER_URL"] == f"http://{vllm_service['metadata']['name']}:8000"
    # Probes and scrapes address the pod IP: behind its Service the gateway answers any host.
    assert settings["RSAFE_ALLOWED_HOSTS"] == "*"


def test_auth_enabled_with_hashes_mounted_from_a_secret(manifests: list[Manifest]) -> None:
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_AUTH_ENABLED"] == "true"
    hashes_file = settings["RSAFE_API_KEY_HASHES_FILE"]
    deployment = one(manifests, "Deployment", "gateway")
    mounts = {m["name"]: m for m in container(deployment, "gateway")["volumeMounts"]}
    assert mounts["api-keys"]["readOnly"] is True
    assert hashes_file.startswith(mounts["api-keys"]["mountPath"] + "/")
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "api-keys"]
    assert volume["secret"]["items"][0]["path"] == Path(hashes_file).name


def test_auth_existing_secret_is_referenced_not_created(render: Any) -> None:
    manifests = render(
        set_values=("gateway.auth.existingSecret=ops-keys", "gateway.auth.existingSecretKey=hashes")
    )
    assert find(manifests, "Secret", "-api-keys") == []
    # (The one Secret left is the bundled PostgreSQL's: see the decision log tests.)
    assert [m["metadata"]["name"] for m in find(manifests, "Secret")] == [
        "rsafe-rsafe-gateway-decision-log"
    ]
    (volume,) = [
        v
        for v in pod_spec(one(manifests, "Deployment", "gateway"))["volumes"]
        if v["name"] == "api-keys"
    ]
    assert volume["secret"]["secretName"] == "ops-keys"
    assert volume["secret"]["items"] == [{"key": "hashes", "path": "api-key-hashes"}]


def test_auth_can_be_turned_off(render: Any) -> None:
    manifests = render(set_values=("gateway.auth.enabled=false",))
    assert find(manifests, "ConfigMap", "-settings")[0]["data"]["RSAFE_AUTH_ENABLED"] == "false"
    assert find(manifests, "Secret", "-api-keys") == []


def test_operator_policies_configmap_is_mounted(render: Any) -> None:
    manifests = render(values={"operatorPolicies": {"acme.md": "# ACME policy\nNo spam.\n"}})
    policies = find(manifests, "ConfigMap", "-policies")[0]
    assert policies["data"] == {"acme.md": "# ACME policy\nNo spam.\n"}
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    deployment = one(manifests, "Deployment", "gateway")
    mounts = {m["name"]: m for m in container(deployment, "gateway")["volumeMounts"]}
    assert mounts["policies"]["mountPath"] == settings["RSAFE_POLICY_DIR"]
    assert find(render(), "ConfigMap", "-policies") == []


# --- vLLM ----------------------------------------------------------------------------------------


def test_vllm_gets_a_gpu_and_time_to_load(manifests: list[Manifest]) -> None:
    deployment = one(manifests, "Deployment", "vllm")
    vllm = container(deployment, "vllm")
    assert int(vllm["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    startup = vllm["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
    assert vllm["livenessProbe"]["httpGet"]["path"] == "/health"
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert "persistentVolumeClaim" in volumes["models"] or "hostPath" in volumes["models"]
    mounts = {m["name"]: m for m in vllm["volumeMounts"]}
    assert mounts["dshm"]["mountPath"] == "/dev/shm"
    assert mounts["models"]["readOnly"] is True
    assert pod_spec(deployment)["tolerations"]


def test_chart_vllm_args_are_the_gpu_recipe(
    manifests: list[Manifest], gpu_recipe_args: list[str]
) -> None:
    vllm = container(one(manifests, "Deployment", "vllm"), "vllm")
    model, *rest = vllm["args"]
    assert model.startswith("/models/")
    assert rest == [*VLLM_PREFIX, *gpu_recipe_args]


def test_values_yaml_vllm_args_are_the_gpu_recipe(gpu_recipe_args: list[str]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["vllm"]["args"] == gpu_recipe_args
    assert values["vllm"]["extraArgs"] == []


def test_compose_vllm_command_is_the_gpu_recipe(
    compose_config: dict[str, Any], gpu_recipe_args: list[str]
) -> None:
    command = compose_config["services"]["vllm"]["command"]
    assert command == ["/models/rsafe-7b", *VLLM_PREFIX, *gpu_recipe_args]


def test_vllm_replicas_on_one_gpu_node_by_default(render: Any) -> None:
    deployment = one(render(), "Deployment", "vllm")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pvc = one(render(), "PersistentVolumeClaim", "vllm")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_scale_out_example(render: Any) -> None:
    manifests = render(CHART / "examples" / "values-scale-out.yaml")
    assert one(manifests, "Deployment", "vllm")["spec"]["replicas"] > 1
    assert one(manifests, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] > 2
    assert find(manifests, "PersistentVolumeClaim") == []  # the shared claim exists beforehand
    # Many gateways, one external PostgreSQL: migrated once by the hook Job, not by each pod.
    assert find(manifests, "StatefulSet", "-postgres") == []
    assert "helm.sh/hook" in one(manifests, "Job", "migrate")["metadata"]["annotations"]
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_DATABASE_MIGRATE_ON_START"] == "false"


# --- Redis ---------------------------------------------------------------------------------------


def test_bundled_redis_by_default(render: Any) -> None:
    manifests = render()
    statefulset = one(manifests, "StatefulSet", "redis")
    redis = container(statefulset, "redis")
    assert redis["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_spec(statefulset)["securityContext"]["runAsNonRoot"] is True
    service = one(manifests, "Service", "redis")
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_REDIS_URL"] == f"redis://{service['metadata']['name']}:6379/0"


def test_external_redis_example(render: Any) -> None:
    manifests = render(CHART / "examples" / "values-external-redis.yaml")
    assert find(manifests, "StatefulSet", "-redis") == []
    assert "RSAFE_REDIS_URL" not in find(manifests, "ConfigMap", "-settings")[0]["data"]
    env = {
        e["name"]: e for e in container(one(manifests, "Deployment", "gateway"), "gateway")["env"]
    }
    assert env["RSAFE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "rsafe-redis",
        "key": "redis-url",
    }
    policy = one(manifests, "NetworkPolicy", "gateway")
    assert any(
        peer.get("ipBlock") for rule in policy["spec"]["egress"] for peer in rule.get("to", [])
    )


# --- decision log (PostgreSQL) ------------------------------------------------------------------

EXTERNAL_DB = (
    "decisionLog.database=external",
    "decisionLog.external.existingSecret=rsafe-db",
    "decisionLog.external.networkPolicyEgressTo[0].ipBlock.cidr=10.30.0.0/24",
)


def _gateway_env(manifests: list[Manifest]) -> dict[str, Any]:
    gateway = container(one(manifests, "Deployment", "gateway"), "gateway")
    return {e["name"]: e for e in gateway.get("env", [])}


def test_bundled_postgres_by_default_migrated_by_the_gateways_at_start(render: Any) -> None:
    manifests = render()
    statefulset = one(manifests, "StatefulSet", "postgres")
    postgres = container(statefulset, "postgres")
    assert postgres["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_spec(statefulset)["securityContext"]["runAsNonRoot"] is True
    assert pod_spec(statefulset)["securityContext"]["runAsUser"] != 0
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    mounts = {m["name"]: m["mountPath"] for m in postgres["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/postgresql/data"
    env = {e["name"]: e for e in postgres["env"]}
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")

    # The gateway's URL comes from the chart's Secret (kept on uninstall, like the volume) and
    # names the bundled Service, user and database.
    (secret,) = find(manifests, "Secret", "-decision-log")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    url = urlsplit(base64.b64decode(secret["data"]["database-url"]).decode())
    password = base64.b64decode(secret["data"]["password"]).decode()
    service = one(manifests, "Service", "postgres")
    assert (url.hostname, url.port) == (service["metadata"]["name"], 5432)
    assert url.username == env["POSTGRES_USER"]["value"] and url.password == password
    assert len(password) >= 32
    assert url.path == "/" + env["POSTGRES_DB"]["value"]
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "password",
    }
    assert _gateway_env(manifests)["RSAFE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "database-url",
    }
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_DATABASE_MIGRATE_ON_START"] == "true"
    assert find(manifests, "Job") == []  # a pre-install hook would run before this PostgreSQL


def test_external_postgres_is_migrated_by_a_pre_install_and_pre_upgrade_hook_job(
    render: Any,
) -> None:
    manifests = render(set_values=EXTERNAL_DB)
    assert find(manifests, "StatefulSet", "-postgres") == []
    assert find(manifests, "Secret", "-decision-log") == []
    from_secret = {"name": "rsafe-db", "key": "database-url"}
    assert _gateway_env(manifests)["RSAFE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == from_secret
    settings = find(manifests, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_DATABASE_MIGRATE_ON_START"] == "false"

    job = one(manifests, "Job", "migrate")
    hooks = job["metadata"]["annotations"]
    assert set(hooks["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in hooks["helm.sh/hook-delete-policy"]
    migrate = container(job, "migrate")
    gateway = container(one(manifests, "Deployment", "gateway"), "gateway")
    assert migrate["image"] == gateway["image"]
    # The module the gateway itself runs at start (runtime.py), present in the package.
    assert migrate["command"] == ["python", "-m", "rsafe_gateway.decision_log.migrate"]
    assert importlib.util.find_spec("rsafe_gateway.decision_log.migrate") is not None
    assert {e["name"]: e for e in migrate["env"]}["RSAFE_DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": from_secret
    }
    assert migrate["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert pod_spec(job)["automountServiceAccountToken"] is False
    # The gateway may reach the external database, on its port only.
    policy = one(manifests, "NetworkPolicy", "gateway")["spec"]
    (rule,) = [r for r in policy["egress"] if r["ports"] == [{"protocol": "TCP", "port": 5432}]]
    assert rule["to"] == [{"ipBlock": {"cidr": "10.30.0.0/24"}}]


def test_migrations_can_be_chosen_and_the_log_turned_off(render: Any) -> None:
    at_start = render(set_values=(*EXTERNAL_DB, "decisionLog.migrations=start"))
    assert find(at_start, "Job") == []
    settings = find(at_start, "ConfigMap", "-settings")[0]["data"]
    assert settings["RSAFE_DATABASE_MIGRATE_ON_START"] == "true"
    off = render(set_values=("decisionLog.enabled=false",))
    assert "RSAFE_DATABASE_URL" not in _gateway_env(off)
    assert "RSAFE_DATABASE_MIGRATE_ON_START" not in find(off, "ConfigMap", "-settings")[0]["data"]
    components = {m["metadata"]["labels"].get("app.kubernetes.io/component") for m in off}
    assert not components & {"postgres", "migrate"}


# --- network policy ------------------------------------------------------------------------------


def test_gateway_network_policy(manifests: list[Manifest]) -> None:
    policy = one(manifests, "NetworkPolicy", "gateway")["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8080]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert 53 in egress_ports and 8000 in egress_ports
    assert egress_ports <= {53, 8000, 6379, 6380, 5432}
    for rule in policy["egress"]:
        assert rule["to"], "every egress rule names its peers"
        for peer in rule["to"]:
            assert peer != {} and peer.get("ipBlock", {}).get("cidr") != "0.0.0.0/0"


def test_vllm_and_redis_accept_only_the_gateway(render: Any) -> None:
    manifests = render()
    gateway_labels = one(manifests, "Deployment", "gateway")["spec"]["selector"]["matchLabels"]
    for component, port in (("vllm", 8000), ("redis", 6379), ("postgres", 5432)):
        (rule,) = one(manifests, "NetworkPolicy", component)["spec"]["ingress"]
        assert rule["from"] == [{"podSelector": {"matchLabels": gateway_labels}}]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]


# --- images --------------------------------------------------------------------------------------


def test_every_image_is_pinned(manifests: list[Manifest]) -> None:
    images = [
        c["image"]
        for m in manifests
        if m["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
        for c in pod_spec(m)["containers"] + pod_spec(m).get("initContainers", [])
    ]
    assert images
    for image in images:
        name_and_tag = image.split("@")[0].rsplit("/", 1)[-1]
        assert ":" in name_and_tag, f"untagged image {image}"
        assert not name_and_tag.endswith(":latest"), f"latest image {image}"


def test_bad_values_are_refused(render: Any) -> None:
    for bad in (
        ("gateway.image.tag=latest",),
        ("vllm.image.tag=",),
        ("gateway.settings.RSAFE_HOST=127.0.0.1",),
        ("redis.mode=external",),
        ("gateway.auth.apiKeyHashes[0]=not-a-hash",),
        ("vllm.replicaCount=2",),  # a chart-created ReadWriteOnce claim cannot serve two pods
        ("decisionLog.database=external",),  # no Secret with the URL
        ("decisionLog.migrations=hook",),  # a pre-install hook would run before the bundled DB
        ("decisionLog.database=sqlite",),
        ("gateway.settings.RSAFE_DATABASE_URL=postgresql://x",),
    ):
        with pytest.raises(RenderError):
            render(set_values=bad)


# --- monitoring ----------------------------------------------------------------------------------

MONITORING_ON = (
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.grafanaDashboard.enabled=true",
)


def test_monitoring_objects_are_off_by_default(render: Any) -> None:
    kinds = {m["kind"] for m in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert find(render(), "ConfigMap", "-dashboard") == []


def test_service_monitors_when_toggled(render: Any) -> None:
    manifests = render(set_values=MONITORING_ON)
    monitors = find(manifests, "ServiceMonitor")
    assert {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors} == {
        "gateway",
        "vllm",
    }
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        service = one(manifests, "Service", component)
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        # The job label the alert rules select on.
        job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert job == {"gateway": "rsafe-gateway", "vllm": "vllm"}[component]


def test_prometheus_rule_carries_the_rules_file(render: Any) -> None:
    (rule,) = find(render(set_values=MONITORING_ON), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    expected = yaml.safe_load(
        (CHART / "files" / "prometheus-rules.yml").read_text(encoding="utf-8")
    )
    assert rule["spec"] == {"groups": expected["groups"]}
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert "RSafeGatewayDown" in alerts


def test_grafana_dashboard_configmap_when_toggled(render: Any) -> None:
    (dashboard,) = find(render(set_values=MONITORING_ON), "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    expected = json.loads((CHART / "files" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert json.loads(dashboard["data"]["rsafe-gateway.json"]) == expected


def test_compose_and_chart_share_the_monitoring_files(compose_config: dict[str, Any]) -> None:
    def sources(service: str) -> set[str]:
        return {
            str(Path(v["source"]).resolve().relative_to(ROOT))
            for v in compose_config["services"][service]["volumes"]
            if v["type"] == "bind"
        }

    assert "helm/rsafe-gateway/files/prometheus-rules.yml" in sources("prometheus")
    assert "helm/rsafe-gateway/files/grafana-dashboard.json" in sources("grafana")
