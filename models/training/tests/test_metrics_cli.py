from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from rsafe_train.cli import app
from rsafe_train.metrics import (
    ACCURACY_KEY,
    FORMAT_KEY,
    JsonlMetricsCallback,
    StopAtStep,
    plot_metrics,
    read_metrics,
    rolling_mean,
)
from typer.testing import CliRunner

runner = CliRunner()


def _state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, epoch=step / 10, is_world_process_zero=True)


def test_callback_writes_reward_parts_and_plot(tmp_path: Path) -> None:
    path = tmp_path / "grpo" / "metrics.jsonl"
    callback = JsonlMetricsCallback(path, "grpo")
    for step, (fmt, acc) in enumerate([(0.5, 0.25), (0.75, 0.5), (1.0, 0.75)], 1):
        logs = {
            "loss": 0.1,
            "reward": 0.9 * acc + 0.1 * fmt,
            FORMAT_KEY: fmt,
            ACCURACY_KEY: acc,
            "other": "x",
        }
        callback.on_log(None, _state(step), None, logs=logs)
    callback.on_log(None, _state(4), None, logs={"train_runtime": "n/a"})  # nothing known: no line
    records = read_metrics(path)
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[-1]["format_reward"] == 1.0 and records[-1]["accuracy_reward"] == 0.75
    assert records[0]["reward"] == 0.9 * 0.25 + 0.1 * 0.5
    png = plot_metrics(path, tmp_path / "rewards.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("convert-smollm2", "prepare-data", "sft", "grpo", "smoke", "plot"):
        assert command in result.output


def test_cli_prepare_data_and_plot(tmp_path: Path) -> None:
    tc = tmp_path / "tc.jsonl"
    tc.write_text(
        "".join(json.dumps({"user_input": f"q{i}", "toxicity": i % 2}) + "\n" for i in range(10))
    )
    bt = tmp_path / "bt.jsonl"
    bt.write_text(json.dumps({"prompt": "p", "response": "r", "is_safe": True}) + "\n")
    out = tmp_path / "train.jsonl"
    result = runner.invoke(
        app,
        [
            "prepare-data",
            "-i",
            f"toxicchat={tc}",
            "-i",
            f"beavertails={bt}",
            "-o",
            str(out),
            "--per-label",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and sum(r["source"] == "beavertails" for r in rows) == 1
    bad = runner.invoke(app, ["prepare-data", "-i", str(tc)])
    assert bad.exit_code != 0

    metrics = tmp_path / "m.jsonl"
    metrics.write_text(json.dumps({"stage": "sft", "step": 1, "loss": 2.0}) + "\n")
    result = runner.invoke(app, ["plot", str(metrics)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.png").is_file()


def test_a_resumed_run_logs_a_step_again_and_the_later_line_wins(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"stage": "sft", "step": 1, "loss": 3.0},
        {"stage": "sft", "step": 2, "loss": 2.5},
        {"stage": "sft", "step": 3, "loss": 2.4},  # logged after checkpoint-2, then the stop
        {"stage": "sft", "step": 3, "loss": 2.2},  # the resumed run, from checkpoint-2
        {"stage": "sft", "step": 4, "loss": 2.0},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    records = read_metrics(path)
    assert [(r["step"], r["loss"]) for r in records] == [(1, 3.0), (2, 2.5), (3, 2.2), (4, 2.0)]


def test_the_rolling_mean_averages_each_step_with_the_ones_before_it() -> None:
    assert rolling_mean([0.0, 1.0, 0.5, 0.5], window=2) == [0.0, 0.5, 0.75, 0.5]
    assert rolling_mean([0.2, 0.4, 0.9], window=10) == pytest.approx([0.2, 0.3, 0.5])
    assert rolling_mean([]) == []


def test_stop_at_step_ends_training_at_that_step_only() -> None:
    from transformers import TrainerControl, TrainerState

    callback = StopAtStep(120)
    state, control = TrainerState(), TrainerControl()
    state.global_step = 119
    assert not callback.on_step_end(None, state, control).should_training_stop
    state.global_step = 120
    assert callback.on_step_end(None, state, control).should_training_stop
