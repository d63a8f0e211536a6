"""docker-compose.yml, as the pinned docker-compose binary resolves it (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .deploy_helpers import ROOT

PINNED_IMAGES = {"redis", "postgres", "vllm", "prometheus", "grafana"}


def test_services(compose_config: dict[str, Any]) -> None:
    assert set(compose_config["services"]) == {
        "gateway",
        "redis",
        "postgres",
        "vllm",
        "prometheus",
        "grafana",
    }


def test_every_service_has_a_healthcheck(compose_config: dict[str, Any]) -> None:
    for name, service in compose_config["services"].items():
        check = service.get("healthcheck", {})
        assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert not check.get("disable"), name


def test_dependencies_wait_for_health(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    assert set(services["gateway"]["depends_on"]) == {"redis", "postgres", "vllm"}
    assert set(services["grafana"]["depends_on"]) == {"prometheus"}
    for service in services.values():
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy"
    # Prometheus must keep running (and alerting) while the gateway is down.
    assert "depends_on" not in services["prometheus"]


def test_images_are_pinned(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    for name in PINNED_IMAGES:
        image = services[name]["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{name}: {image}"
    gateway = services["gateway"]
    assert gateway["build"]["dockerfile"] == "docker/gateway.Dockerfile"
    assert not gateway["image"].endswith(":latest")


def test_vllm_reserves_an_nvidia_gpu_and_mounts_the_model(compose_config: dict[str, Any]) -> None:
    vllm = compose_config["services"]["vllm"]
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == 1
    models = [v for v in vllm["volumes"] if v["target"] == "/models"]
    assert models and models[0]["read_only"] is True
    assert vllm["command"][0].startswith("/models/")
    assert vllm["healthcheck"]["test"][-1].count("/health") == 1


def test_gateway_wiring(compose_config: dict[str, Any]) -> None:
    gateway = compose_config["services"]["gateway"]
    env = gateway["environment"]
    assert env["RSAFE_HOST"] == "0.0.0.0"
    assert env["RSAFE_MODEL_SERVER_URL"] == "http://vllm:8000"
    assert env["RSAFE_REDIS_URL"] == "redis://redis:6379/0"
    assert env["RSAFE_AUTH_ENABLED"] == "false"
    assert gateway["read_only"] is True
    assert gateway["cap_drop"] == ["ALL"]


def test_published_ports_are_loopback_only(compose_config: dict[str, Any]) -> None:
    for name, service in compose_config["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name


def test_prometheus_scrapes_gateway_and_vllm_and_loads_rules(
    compose_config: dict[str, Any],
) -> None:
    config = yaml.safe_load(
        (ROOT / "docker" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["rsafe-gateway"]["static_configs"][0]["targets"] == ["gateway:8080"]
    assert jobs["vllm"]["static_configs"][0]["targets"] == ["vllm:8000"]
    # rule_files are relative to the config file: /etc/prometheus/rules/*.yml in the container.
    assert config["rule_files"] == ["rules/*.yml"]
    targets = {v["target"] for v in compose_config["services"]["prometheus"]["volumes"]}
    assert "/etc/prometheus/prometheus.yml" in targets
    assert any(t.startswith("/etc/prometheus/rules/") and t.endswith(".yml") for t in targets)


def test_grafana_provisioning_matches_the_mounts(compose_config: dict[str, Any]) -> None:
    provisioning = ROOT / "docker" / "grafana" / "provisioning"
    datasources = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load(
        (provisioning / "dashboards" / "rsafe.yml").read_text(encoding="utf-8")
    )
    folder = dashboards["providers"][0]["options"]["path"]
    targets = {v["target"] for v in compose_config["services"]["grafana"]["volumes"]}
    assert any(str(Path(t).parent) == folder for t in targets if t.endswith(".json"))
    assert "/etc/grafana/provisioning" in targets


def test_the_gateway_answers_to_the_name_prometheus_scrapes(compose_config: dict[str, Any]) -> None:
    """Only loopback names and RSAFE_ALLOWED_HOSTS are served (DNS rebinding): the name in
    Prometheus' target must be among them, or every scrape gets 421."""
    config = yaml.safe_load(
        (ROOT / "docker" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped = {
        target.rsplit(":", 1)[0] for target in jobs["rsafe-gateway"]["static_configs"][0]["targets"]
    }
    allowed = compose_config["services"]["gateway"]["environment"]["RSAFE_ALLOWED_HOSTS"]
    assert allowed != "*", "the local stack must not answer to any host name"
    assert scraped <= {name.strip() for name in allowed.split(",")}


def test_the_gateway_logs_decisions_to_the_bundled_postgres(compose_config: dict[str, Any]) -> None:
    """The local stack brings its PostgreSQL; the gateway migrates the schema itself at start."""
    services = compose_config["services"]
    env = services["gateway"]["environment"]
    url = urlsplit(env["RSAFE_DATABASE_URL"])
    postgres = services["postgres"]
    own = postgres["environment"]
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
    assert (url.username, url.password) == (own["POSTGRES_USER"], own["POSTGRES_PASSWORD"])
    assert url.path == f"/{own['POSTGRES_DB']}"
    assert env["RSAFE_DATABASE_MIGRATE_ON_START"] == "true"
    assert env["RSAFE_DECISION_LOG_MODE"] == "best_effort"
    # Its data on a named volume; reachable only inside the stack; no root.
    (data,) = postgres["volumes"]
    assert data["type"] == "volume" and data["target"] == "/var/lib/postgresql/data"
    assert data["source"] in compose_config["volumes"]
    assert "ports" not in postgres
    assert postgres["user"] != "0" and not postgres["user"].startswith("0:")
    assert postgres["read_only"] is True and postgres["cap_drop"] == ["ALL"]
    assert postgres["healthcheck"]["test"][1] == "pg_isready"
