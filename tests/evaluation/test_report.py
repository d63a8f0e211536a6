"""Summary JSON, Markdown, PNG chart, compare, and the CLI's compare command."""

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from rsafe_gateway.evaluation.cli import eval_app
from rsafe_gateway.evaluation.metrics import compute_metrics
from rsafe_gateway.evaluation.report import build_summary, compare, markdown, write_reports
from rsafe_gateway.evaluation.runner import ResultRow


def rows(flip: bool) -> list[ResultRow]:
    out = []
    for k in range(8):
        label = "unsafe" if k % 2 else "safe"
        flagged = (label == "unsafe") != (flip and k < 2)
        out.append(ResultRow(id=f"a{k}", source="a" if k < 4 else "b", label=label,
                             target="prompt", verdict="unsafe" if flagged else "safe",
                             flagged=flagged, latency_ms=10.0 + k))  # fmt: skip
    return out


def summary(flip: bool, temperature: float) -> dict[str, Any]:
    run = {"dataset": "demo", "decoding": {"temperature": temperature, "reasoning_max_chars": 200}}
    return build_summary(compute_metrics(rows(flip)), run)


def test_markdown_and_files(tmp_path: Path) -> None:
    s = summary(False, 0.0)
    text = markdown(s)
    assert "| data set |" in text and "| a |" in text and "| all |" in text
    assert "temperature=0.0" in text and "reasoning_max_chars=200" in text
    paths = write_reports(s, tmp_path / "run")
    assert json.loads(paths["json"].read_text())["metrics"]["a"]["f1"] == 1.0
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["markdown"].read_text() == text


def test_compare_reports_changes(tmp_path: Path) -> None:
    a, b = summary(False, 0.0), summary(True, 0.7)
    text = compare(a, b)
    assert "run.decoding" in text and "0.7" in text
    assert "a: f1: 100.0 ->" in text
    assert "b:" not in text.replace("run.", "")  # source b unchanged
    assert compare(a, a) == "no differences"
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a)), pb.write_text(json.dumps(b))
    result = CliRunner().invoke(eval_app, ["compare", str(pa), str(pb)])
    assert result.exit_code == 0, result.output
    assert "f1" in result.output


def test_cli_run_without_gateway_records_errors(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    suite = Path(__file__).parent / "fixtures" / "small_suite.jsonl"
    results = tmp_path / "r.jsonl"
    args = ["run", str(suite), "--gateway-url", f"http://127.0.0.1:{port}", "--limit", "2",
            "--results", str(results), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 2, result.output  # items without a decision: rerun to retry
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == ["s-1", "s-2"]
    assert all(line["error"]["type"] == "transport" for line in lines)
    summary = json.loads((tmp_path / "r.summary.json").read_text())
    assert summary["metrics"]["fixture-prompt"]["errors"] == 2


def test_cli_unknown_dataset() -> None:
    result = CliRunner().invoke(eval_app, ["run", "no-such-suite"])
    assert result.exit_code == 2 and "no such file or suite" in result.output


def test_compare_table_puts_families_side_by_side(tmp_path: Path) -> None:
    runs = []
    for index, (family, model) in enumerate([("rsafe", "rsafe"), ("qwen3guard", "qwen3guard-4b")]):
        data = summary(False, 0.0)
        data["run"]["gateway"] = {"build": {"model_family": family, "model": model}}
        path = tmp_path / f"run{index}.json"
        path.write_text(json.dumps(data))
        runs.append(str(path))
    result = CliRunner().invoke(eval_app, ["compare", "--table", *runs])
    assert result.exit_code == 0, result.output
    assert "| rsafe |" in result.output and "| qwen3guard (qwen3guard-4b) |" in result.output
    assert "## a" in result.output and "Not the same data" not in result.output
    single = CliRunner().invoke(eval_app, ["compare", runs[0]])
    assert single.exit_code != 0
