"""Several runs in one table: the same data judged by gateways serving different model families.

Each run is labelled by what its gateway said about itself (`rsafe_build_info`: the model family
and the served model), so a table from `rsafe eval run` against an RSafe checkpoint, against
gpt-oss-safeguard and against Qwen3Guard reads as one comparison. Runs over other data sets are
not comparable: that is said above the table, and the row counts show it per data set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .report import cell

# (metric key, column title, kind): the headline numbers of each run.
_METRICS = (
    ("rows", "n", "d"),
    ("f1", "F1", "pct"),
    ("balanced_f1", "bal. F1", "pct"),
    ("precision", "P", "pct"),
    ("recall", "R", "pct"),
    ("false_positive_rate", "FPR", "pct"),
    ("undetermined_rate", "undet.", "pct"),
    ("errors", "errors", "d"),
    ("latency_ms_p50", "p50 ms", "ms"),
)


def run_label(summary: Mapping[str, Any], fallback: str) -> str:
    """`family (model)` from the gateway's build labels, else `fallback` (the file's name)."""
    build = ((summary.get("run") or {}).get("gateway") or {}).get("build") or {}
    family, model = build.get("model_family"), build.get("model")
    if family and model and family != model:
        return f"{family} ({model})"
    return str(family or model or fallback)


def side_by_side(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """A Markdown table per data set, one row per run (label, summary)."""
    labels = [run_label(summary, name) for name, summary in runs]
    datasets = {str((summary.get("run") or {}).get("dataset")) for _, summary in runs}
    lines = ["# Families side by side", ""]
    if len(datasets) > 1:
        lines += [f"Not the same data: the runs judged {', '.join(sorted(datasets))}.", ""]
    sources: list[str] = []
    for _, summary in runs:
        sources += [s for s in summary.get("metrics", {}) if s not in sources]
    header = "| run | " + " | ".join(title for _, title, _ in _METRICS) + " |"
    for source in sources:
        lines += [
            f"## {source}",
            "",
            header,
            "| --- | " + " | ".join("---:" for _ in _METRICS) + " |",
        ]
        for label, (_, summary) in zip(labels, runs, strict=True):
            values = summary.get("metrics", {}).get(source)
            cells = [cell(values.get(key) if values else None, kind) for key, _, kind in _METRICS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    following = [
        (label, summary["policy_following"])
        for label, (_, summary) in zip(labels, runs, strict=True)
        if summary.get("policy_following")
    ]
    if following:
        lines += [
            "## policy following",
            "",
            "| run | case acc. | entries right |",
            "| --- | ---: | ---: |",
        ]
        for label, pf in following:
            lines.append(
                f"| {label} | {cell(pf.get('case_accuracy'), 'pct')} "
                f"| {cell(pf.get('entry_accuracy'), 'pct')} |"
            )
        lines.append("")
    return "\n".join(lines)
