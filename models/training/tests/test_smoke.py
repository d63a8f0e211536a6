"""The CPU smoke run end to end: tiny checkpoint, a short SFT, a few GRPO steps (~1 minute)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rsafe_train.config import load_config
from rsafe_train.smoke import WATCHED_PARAMETER, run_smoke

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


@pytest.mark.slow
def test_smoke_run_logs_rewards_and_changes_weights(tmp_path: Path) -> None:
    # No time limit here: how long it takes depends on what else the cores run (it failed at
    # 240 s beside an evaluation); speed is for benchmarks, not unit tests.
    report = run_smoke(load_config(SMOKE_CONFIG), tmp_path)

    # Rewards were computed and logged for every GRPO step, as RSafe's weighted sum.
    assert report.grpo_steps == 3 and len(report.rewards) == 3
    for row in report.rewards:
        assert 0.0 <= row["reward"] <= 1.0
        assert row["reward"] == pytest.approx(
            0.9 * row["accuracy_reward"] + 0.1 * row["format_reward"], abs=1e-6
        )
    # Stage 1 taught the format well enough for GRPO to see a non-zero reward.
    assert any(row["format_reward"] > 0 for row in report.rewards)
    assert (tmp_path / "grpo" / "rewards.png").is_file()

    # The watched tensor moved in both stages.
    assert report.parameter == WATCHED_PARAMETER
    assert report.changes["sft"]["max_abs_diff"] > 1e-3
    assert report.changes["grpo"]["max_abs_diff"] > 0
    assert report.weights_changed

    # The final checkpoint is a plain folder vLLM serves: weights, config, tokenizer, chat template.
    final = Path(report.checkpoint)
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "rsafe_train.json",
    ):
        assert (final / name).is_file(), name
    assert (final / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (final / "tokenizer_config.json").read_text()
    )
    saved = json.loads((tmp_path / "smoke-report.json").read_text())
    assert saved["weights_changed"] is True
