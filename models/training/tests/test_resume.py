"""Both stages with a LoRA adapter on the tiny checkpoint: checkpoints, resume, one adapter, and
GRPO's per-step health metrics. Slow (trains): about a minute or two on 2 busy cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rsafe_train.checkpoint import ADAPTER_DIR, last_checkpoint
from rsafe_train.config import load_config
from rsafe_train.data import write_jsonl
from rsafe_train.metrics import plot_metrics, read_metrics
from rsafe_train.smoke import SMOKE_ITEMS, make_tiny_checkpoint

SMOKE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
LORA = ["sft.lora.enabled=true", "sft.lora.r=4", "grpo.lora.enabled=true", "grpo.lora.r=4"]


@pytest.mark.slow
def test_lora_stages_checkpoint_resume_and_log_grpo_health(tmp_path: Path) -> None:
    from rsafe_train.grpo import run_grpo
    from rsafe_train.sft import run_sft

    base = make_tiny_checkpoint(tmp_path / "tiny-base")
    data = tmp_path / "items.jsonl"
    write_jsonl(SMOKE_ITEMS, data)

    def config(*overrides: str):  # type: ignore[no-untyped-def]
        return load_config(
            SMOKE_CONFIG,
            [f"model={base}", f"data={data}", f"output_dir={tmp_path}", *LORA, *overrides],
        )

    # Stage 1 stops after 4 of its steps, checkpointing every 2 ...
    run_sft(config("sft.max_steps=4", "sft.save_steps=2", "sft.logging_steps=1"))
    sft_dir = tmp_path / "sft"
    assert last_checkpoint(sft_dir) == str(sft_dir / "checkpoint-4")
    # ... and a longer run resumes from checkpoint-4: steps 5-6 are new, 1-4 are not redone.
    first = read_metrics(sft_dir / "metrics.jsonl")
    run_sft(config("sft.max_steps=6", "sft.save_steps=2", "sft.logging_steps=1"), resume=True)
    resumed = read_metrics(sft_dir / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]
    assert resumed[:4] == first  # the lines before the checkpoint are kept as they were

    adapter = sft_dir / ADAPTER_DIR
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").stat().st_size < 25 * 2**20
    assert (sft_dir / "final" / "model.safetensors").is_file()  # merged, servable as it is

    # Stage 2 goes on training the same adapter (no second one on top), then resumes too.
    grpo = ("grpo.max_steps=2", "grpo.save_steps=1")
    run_grpo(config(*grpo), model_path=str(adapter))
    grpo_dir = tmp_path / "grpo"
    run_grpo(config("grpo.max_steps=3", "grpo.save_steps=1"), model_path=str(adapter), resume=True)
    records = read_metrics(grpo_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    for record in records:
        for key in (
            "reward",
            "format_reward",
            "accuracy_reward",
            "completion_mean_length",
            "completion_clipped_ratio",
            "frac_reward_zero_std",
        ):
            assert key in record, key
        assert 0.0 <= record["completion_clipped_ratio"] <= 1.0
    settings = json.loads((grpo_dir / ADAPTER_DIR / "adapter_config.json").read_text())
    assert settings["base_model_name_or_path"] == str(base)
    png = plot_metrics(grpo_dir / "metrics.jsonl", tmp_path / "health.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
