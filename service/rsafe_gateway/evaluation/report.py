"""Summaries of a run: JSON (with the run's settings), a Markdown table, a PNG chart, and a diff."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .metrics import SourceMetrics
from .policy_following import SOURCE as POLICY_FOLLOWING

_COLUMNS = (
    ("rows", "n", "d"),
    ("errors", "errors", "d"),
    ("precision", "P", "pct"),
    ("recall", "R", "pct"),
    ("f1", "F1", "pct"),
    ("balanced_f1", "bal. F1", "pct"),
    ("accuracy", "acc", "pct"),
    ("false_positive_rate", "FPR", "pct"),
    ("undetermined_rate", "undet.", "pct"),
    ("latency_ms_p50", "p50 ms", "ms"),
    ("latency_ms_p95", "p95 ms", "ms"),
)
COMPARED = ("f1", "balanced_f1", "precision", "recall", "accuracy", "false_positive_rate",
            "undetermined_rate", "latency_ms_p50", "latency_ms_p95")  # fmt: skip


def build_summary(
    metrics: Mapping[str, SourceMetrics],
    run: Mapping[str, Any],
    policy_following: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "run": dict(run),
        "metrics": {source: m.as_dict() for source, m in metrics.items()},
    }
    if policy_following is not None:
        summary["policy_following"] = dict(policy_following)
    return summary


def cell(value: Any, kind: str) -> str:
    """A table cell: a share as a percentage, milliseconds rounded, "-" when unknown."""
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "ms":
        return f"{value:.0f}"
    return str(value)


def markdown(summary: Mapping[str, Any]) -> str:
    run = summary.get("run", {})
    lines = [f"# Evaluation: {run.get('dataset', '?')}", ""]
    decoding = run.get("decoding") or {}
    if decoding:
        settings = ", ".join(f"{key}={value}" for key, value in decoding.items())
        lines += [f"Decoding: {settings}.", ""]
    build = (run.get("gateway") or {}).get("build")
    if build:
        lines += [f"Gateway: {', '.join(f'{k}={v}' for k, v in build.items())}.", ""]
    lines += [
        "F1, precision and recall of `unsafe`, in %; the prediction is the gateway's `flagged` "
        "(undetermined verdicts follow its fail mode and are also counted in `undet.`). "
        "`bal. F1` weights both labels equally (flagging everything: 66.7).",
        "",
        "| data set | " + " | ".join(title for _, title, _ in _COLUMNS) + " |",
        "| --- | " + " | ".join("---:" for _ in _COLUMNS) + " |",
    ]
    for source, values in summary.get("metrics", {}).items():
        cells = [cell(values.get(key), kind) for key, _, kind in _COLUMNS]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    pf = summary.get("policy_following")
    if pf:
        lines += [
            "",
            f"Policy following: case accuracy {cell(pf.get('case_accuracy'), 'pct')}% over "
            f"{pf.get('cases')} cases; entries fully right {cell(pf.get('entry_accuracy'), 'pct')}%"
            f" of {pf.get('entries')}.",
        ]
    return "\n".join(lines) + "\n"


def chart(summary: Mapping[str, Any], path: Path) -> Path:
    """A bar chart of F1 (of `unsafe`) per data set, as PNG (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [s for s in summary.get("metrics", {}) if s != "all"]
    values = [100 * (summary["metrics"][s].get("f1") or 0.0) for s in sources]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.1 * len(sources) + 2), 3.6))
    bars = axes.bar(sources, values, color="#3b6ea8")
    axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_ylabel("F1 of unsafe (%)")
    axes.set_title(str(summary.get("run", {}).get("dataset", "evaluation")))
    axes.tick_params(axis="x", labelrotation=30)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_reports(summary: Mapping[str, Any], stem: Path) -> dict[str, Path]:
    """stem.summary.json, stem.md and stem.png next to each other."""
    paths = {
        "json": stem.with_name(stem.name + ".summary.json"),
        "markdown": stem.with_name(stem.name + ".md"),
        "chart": stem.with_name(stem.name + ".png"),
    }
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    paths["markdown"].write_text(markdown(summary), encoding="utf-8")
    chart(summary, paths["chart"])
    return paths


def load_summary(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "metrics" not in data:
        raise ValueError(f"{path}: not an evaluation summary (no 'metrics')")
    return data


def _delta(key: str, old: Any, new: Any) -> str:
    if old is None or new is None:
        return f"{key}: {old} -> {new}"
    if key.startswith("latency"):
        return f"{key}: {old:.0f} -> {new:.0f} ms ({new - old:+.0f})"
    return f"{key}: {100 * old:.1f} -> {100 * new:.1f} ({100 * (new - old):+.1f} pts)"


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """What changed from summary `a` to summary `b`: settings, data sets, metrics."""
    lines: list[str] = []
    run_a, run_b = a.get("run", {}), b.get("run", {})
    for key in ("dataset", "decoding", "gateway"):
        if run_a.get(key) != run_b.get(key):
            lines.append(f"run.{key}: {run_a.get(key)} -> {run_b.get(key)}")
    metrics_a, metrics_b = a.get("metrics", {}), b.get("metrics", {})
    for source in metrics_a.keys() - metrics_b.keys():
        lines.append(f"{source}: only in A")
    for source in metrics_b.keys() - metrics_a.keys():
        lines.append(f"{source}: only in B")
    for source in [s for s in metrics_a if s in metrics_b]:
        changes = [
            _delta(key, metrics_a[source].get(key), metrics_b[source].get(key))
            for key in COMPARED
            if metrics_a[source].get(key) != metrics_b[source].get(key)
        ]
        if metrics_a[source].get("rows") != metrics_b[source].get("rows"):
            changes.insert(
                0, f"rows: {metrics_a[source].get('rows')} -> {metrics_b[source].get('rows')}"
            )
        if changes:
            lines.append(f"{source}: " + "; ".join(changes))
    pf_a = a.get("policy_following") or {}
    pf_b = b.get("policy_following") or {}
    for key in ("case_accuracy", "entry_accuracy"):
        if pf_a.get(key) != pf_b.get(key):
            lines.append(f"{POLICY_FOLLOWING}: {_delta(key, pf_a.get(key), pf_b.get(key))}")
    return "\n".join(lines) if lines else "no differences"
