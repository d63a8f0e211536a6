"""Metrics, alerts, dashboard, logs and single-flight, against the real gateway, vLLM and Redis."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rsafe_core.prompt import TEMPLATE_VERSION

from conftest import GatewayProcess, VllmServer, free_port, stop_process, wait_until

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "helm" / "rsafe-gateway" / "files" / "prometheus-rules.yml"
DASHBOARD = REPO / "helm" / "rsafe-gateway" / "files" / "grafana-dashboard.json"
ALERT_TESTS = Path(__file__).parent / "alerts_test.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs Debian's prometheus)")
    return path


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    values: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(all_samples: Samples, name: str, **labels: str) -> float:
    return all_samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moderate(gateway: GatewayProcess, payload: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/moderate", json=payload, headers=headers, timeout=60)


@pytest.mark.e2e
def test_metrics_count_real_requests(gateway_process: GatewayProcess) -> None:
    before = samples(httpx.get(f"{gateway_process.url}/metrics").text)
    text = f"metrics check {uuid.uuid4().hex}"
    assert moderate(gateway_process, {"input": text}).status_code == 200
    assert moderate(gateway_process, {"input": text}).json()["cached"] is True
    assert moderate(gateway_process, {"input": ""}).status_code == 400
    after = samples(httpx.get(f"{gateway_process.url}/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/moderate"
    assert delta("rsafe_requests_total", route=route, status_class="2xx") == 2
    assert delta("rsafe_requests_total", route=route, status_class="4xx") == 1
    assert delta("rsafe_request_duration_seconds_count", route=route) == 3
    assert delta("rsafe_cache_lookups_total", result="hit") == 1
    assert delta("rsafe_cache_lookups_total", result="miss") == 1
    assert delta("rsafe_model_request_duration_seconds_count") == 1
    assert delta("rsafe_prompt_tokens_total") > 0
    assert delta("rsafe_completion_tokens_total") > 0
    verdicts = sum(
        delta("rsafe_verdicts_total", verdict=v, target="prompt", policy_id="rsafe-default")
        for v in ("safe", "unsafe", "undetermined")
    )
    assert verdicts == 2
    assert (
        value(
            after,
            "rsafe_build_info",
            version="0.1.0",
            model="rsafe",
            template_version=TEMPLATE_VERSION,
            model_family="rsafe",
        )
        == 1
    )
    assert value(after, "rsafe_requests_in_flight") == 1  # the scrape itself


@pytest.mark.e2e
def test_promtool_accepts_the_exposition(gateway_process: GatewayProcess) -> None:
    moderate(gateway_process, {"input": "promtool lint"})
    exposition = httpx.get(f"{gateway_process.url}/metrics").text
    result = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_a_real_prometheus_scrapes_the_gateway(
    gateway_process: GatewayProcess, tmp_path: Path
) -> None:
    moderate(gateway_process, {"input": "scrape me"})
    port = free_port()
    target = gateway_process.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "rsafe-gateway", "static_configs": [{"targets": [target]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        found: list[float] = []

        def queried() -> bool:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query",
                    params={"query": 'sum(rsafe_requests_total{route="/v1/moderate"})'},
                    timeout=2,
                ).json()
            except (httpx.HTTPError, ValueError):
                return False
            result = answer.get("data", {}).get("result", [])
            if result:
                found.append(float(result[0]["value"][1]))
            return bool(found)

        wait_until(queried, 60, "Prometheus query result", interval=0.5)
        assert found[-1] >= 1
    finally:
        stop_process(process)


def test_alert_rules_are_valid_and_unit_tested() -> None:
    check = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [tool("promtool"), "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = {
        t["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    assert alerts == tested
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


_METRIC = re.compile(r"\b(rsafe_[a-z0-9_]+|vllm:[a-z0-9_:]+)")


@pytest.mark.e2e
def test_dashboard_uses_only_exported_metrics(
    gateway_process: GatewayProcess, vllm_server: VllmServer
) -> None:
    moderate(gateway_process, {"input": "dashboard metrics"})
    httpx.post(f"{gateway_process.url}/v1/moderate", json={"input": ""})
    exported = set()
    for url in (gateway_process.url, vllm_server.url):
        for line in httpx.get(f"{url}/metrics").text.splitlines():
            if line and not line.startswith("#"):
                exported.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    # Families that appear only after their first event (label values unknown until then).
    exported |= {
        "rsafe_singleflight_joins_total",
        "rsafe_cache_errors_total",
        "rsafe_model_errors_total",
        "rsafe_fail_mode_decisions_total",
        "rsafe_undetermined_total",
    }
    used = {name for expr in dashboard_exprs() for name in _METRIC.findall(expr)}
    assert used, "the dashboard queries no metric"
    assert used - exported == set()
    for name in {
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:prefix_cache_hits_total",
    }:
        assert name in used


@pytest.mark.e2e
def test_single_flight_makes_one_model_call(
    gateway_process: GatewayProcess, vllm_server: VllmServer
) -> None:
    payload = {"input": f"single flight {uuid.uuid4().hex}"}
    before_calls = vllm_server.request_count()
    before = samples(httpx.get(f"{gateway_process.url}/metrics").text)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway_process.url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/v1/moderate", json=payload) for _ in range(20))
            )

    responses = asyncio.run(burst())
    after = samples(httpx.get(f"{gateway_process.url}/metrics").text)
    assert [r.status_code for r in responses] == [200] * 20
    answers = [r.json() for r in responses]
    assert vllm_server.request_count() - before_calls == 1
    assert len({(a["verdict"], a["reasoning"], a["flagged"]) for a in answers}) == 1
    assert len({a["id"] for a in answers}) == 20
    joins = value(after, "rsafe_singleflight_joins_total") - value(
        before, "rsafe_singleflight_joins_total"
    )
    hits = value(after, "rsafe_cache_lookups_total", result="hit") - value(
        before, "rsafe_cache_lookups_total", result="hit"
    )
    assert joins + hits == 19
    assert joins >= 1


@pytest.mark.e2e
def test_log_lines_are_json_without_the_moderated_text(gateway_process: GatewayProcess) -> None:
    secret = f"very private text {uuid.uuid4().hex}"
    response = moderate(gateway_process, {"input": secret}, **{"X-Request-ID": "log-check-1"})
    assert response.status_code == 200

    def logged() -> bool:
        return "log-check-1" in gateway_process.log_path.read_text()

    wait_until(logged, 10, "the request's log line")
    log = gateway_process.log_path.read_text()
    assert secret not in log
    line = next(json.loads(x) for x in log.splitlines() if "log-check-1" in x)
    assert line["route"] == "/v1/moderate" and line["status"] == 200
    assert {"request_id", "verdict", "cached", "latency_ms", "policy_id", "model"} <= set(line)
