"""The dashboard's structure and compose's Prometheus config (alerts: tests/observability/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from .deploy_helpers import CHART, ROOT, run_tool

RULES = CHART / "files" / "prometheus-rules.yml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"


def test_dashboard_is_grafana_json_with_valid_promql(tools_bin: Path, tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    expressions = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert any("rsafe_requests_total" in e for e in expressions)
    assert any(p["type"] == "timeseries" for p in panels)
    # promtool parses each expression as a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(expressions)
                ],
            }
        ]
    }
    (tmp_path / "dashboard-exprs.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = run_tool(
        tools_bin, "promtool", "check", "rules", str(tmp_path / "dashboard-exprs.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_prometheus_config_passes_promtool(tools_bin: Path, tmp_path: Path) -> None:
    # The layout of the prometheus container: the config with the rules mounted under rules/.
    shutil.copy(ROOT / "docker" / "prometheus" / "prometheus.yml", tmp_path / "prometheus.yml")
    (tmp_path / "rules").mkdir()
    shutil.copy(RULES, tmp_path / "rules" / "rsafe-gateway.yml")
    result = run_tool(tools_bin, "promtool", "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr
