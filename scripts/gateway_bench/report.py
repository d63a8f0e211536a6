"""The benchmark's report: the targets checked (reported, not asserted) and the Markdown tables."""

from __future__ import annotations

from typing import Any

from .shared import TARGETS


def checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def add(name: str, value: float, limit: float, at_most: bool) -> None:
        met = value <= limit if at_most else value >= limit
        found.append(
            {
                "target": name,
                "value": value,
                "limit": limit,
                "rule": "<=" if at_most else ">=",
                "met": bool(met),
            }
        )

    for level in report["miss"]["levels"]:
        c = level["concurrency"]
        if c in (1, 16):
            overhead = level["overhead_ms"]
            add(f"miss overhead p50 at {c}", overhead["p50"], TARGETS["miss_overhead_p50_ms"], True)
            add(f"miss overhead p99 at {c}", overhead["p99"], TARGETS["miss_overhead_p99_ms"], True)
        if c == 64:
            add(
                "miss throughput ratio at 64",
                level["throughput_ratio"],
                TARGETS["miss_throughput_ratio_at_64"],
                False,
            )
    for level in report["hit"]["levels"]:
        if level["concurrency"] == 1:
            add("hit p50 ms at 1", level["gateway"]["p50_ms"], TARGETS["hit_p50_ms_at_1"], True)
        if level["concurrency"] == 64:
            add(
                "hit req/s ratio vs bare FastAPI at 64",
                level["rps_ratio"],
                TARGETS["hit_rps_ratio_at_64"],
                False,
            )
    return found


def cpu_cell(summary: dict[str, Any]) -> str:
    cpu = summary.get("server_cpu_ms_per_request")
    return "n/a" if cpu is None else f"{cpu * 1000:.0f} µs"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Gateway benchmark ({report['meta']['mode']}, {report['meta']['cpus']} CPUs,"
        f" {report['meta']['started_at']})",
        "",
        "### (a) cache miss: gateway vs model server direct (same-shape texts, interleaved)",
        "",
        "| clients | req/path | direct p50 | gateway p50 | +p50 (95% CI) | direct p99 |"
        " gateway p99 | +p99 (95% CI) | direct req/s | gateway req/s | ratio | gateway CPU/req |"
        " same prompt tokens |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in report["miss"]["levels"]:
        d, g, o = lv["direct"], lv["gateway"], lv["overhead_ms"]
        (p50_low, p50_high), (p99_low, p99_high) = o["p50_ci95"], o["p99_ci95"]
        lines.append(
            f"| {lv['concurrency']} | {lv['requests_per_path']} | {d['p50_ms']:.1f} ms |"
            f" {g['p50_ms']:.1f} ms | {o['p50']:+.2f} ms ({p50_low:+.1f} … {p50_high:+.1f}) |"
            f" {d['p99_ms']:.1f} ms | {g['p99_ms']:.1f} ms |"
            f" {o['p99']:+.2f} ms ({p99_low:+.1f} … {p99_high:+.1f}) |"
            f" {d['rps']:.1f} | {g['rps']:.1f} | {lv['throughput_ratio']:.3f} |"
            f" {cpu_cell(g)} | {lv['same_prompt_tokens']:.0%} |"
        )
    lines += [
        "",
        "### (b) cache hit: gateway vs bare FastAPI endpoint (same uvicorn settings)",
        "",
        "| clients | req/path | gateway p50 | gateway p99 | bare p50 | bare p99 | gateway req/s |"
        " bare req/s | ratio | gateway CPU/req | bare CPU/req | hit fraction |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in report["hit"]["levels"]:
        g, b = lv["gateway"], lv["bare_fastapi"]
        lines.append(
            f"| {lv['concurrency']} | {lv['requests_per_path']} | {g['p50_ms']:.2f} ms |"
            f" {g['p99_ms']:.2f} ms | {b['p50_ms']:.2f} ms | {b['p99_ms']:.2f} ms |"
            f" {g['rps']:.0f} | {b['rps']:.0f} | {lv['rps_ratio']:.3f} |"
            f" {cpu_cell(g)} | {cpu_cell(b)} | {lv['gateway_hit_fraction']:.0%} |"
        )
    sf = report["single_flight"]
    lines += [
        "",
        f"### (c) burst of {sf['burst']} identical concurrent cache-miss requests",
        "",
        "| run | ok | model calls (vLLM counter) | cached answers | same verdict | p50 | max |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("single_flight", "control_cache_false"):
        r = sf[name]
        lines.append(
            f"| {name} | {r['ok']}/{r['requests']} | {r['model_calls']} | {r['cached_answers']} |"
            f" {r['same_verdict']} | {r['latency_ms']['p50']:.1f} ms |"
            f" {r['latency_ms']['max']:.1f} ms |"
        )
    lines += ["", "### targets (reported, not asserted)", "", "| target | value | rule | met |"]
    lines.append("| --- | --- | --- | --- |")
    for check in report["checks"]:
        lines.append(
            f"| {check['target']} | {check['value']} | {check['rule']} {check['limit']} |"
            f" {'yes' if check['met'] else 'NO'} |"
        )
    return "\n".join(lines)
