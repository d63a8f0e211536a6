from __future__ import annotations

from pathlib import Path

import pytest
from rsafe_train.config import GRPOSettings, load_config
from rsafe_train.grpo import batch_layout

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_the_papers() -> None:
    grpo = load_config().grpo
    assert (grpo.num_generations, grpo.temperature, grpo.top_p, grpo.repetition_penalty) == (
        4,
        0.7,
        0.8,
        1.05,
    )
    assert (grpo.max_prompt_length, grpo.max_completion_length, grpo.batch_prompts) == (
        2048,
        512,
        32,
    )
    assert (grpo.learning_rate, grpo.epochs) == (1e-7, 3.0)


@pytest.mark.parametrize(
    "name",
    [
        "paper.yaml",
        "cpu-smollm2.yaml",
        "cpu-smollm2-round2.yaml",
        "cpu-smollm2-round2b.yaml",
        "cpu-smollm2-round3.yaml",
        "cpu-smollm2-round4.yaml",
        "cpu-smollm2-round4b.yaml",
        "cpu-smollm2-round5.yaml",
        "smoke.yaml",
    ],
)
def test_shipped_configs_load(name: str) -> None:
    config = load_config(CONFIGS / name)
    assert config.grpo.num_generations == 4
    batch_layout(config.grpo)  # a valid batch layout


def test_overrides_and_number_coercion(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: m\ngrpo:\n  learning_rate: 1e-7\n  lora: {enabled: true, r: 8}\n")
    config = load_config(path, ["grpo.learning_rate=2e-6", "sft.max_steps=3", "grpo.use_vllm=true"])
    assert config.grpo.learning_rate == 2e-6 and isinstance(config.grpo.learning_rate, float)
    assert config.sft.max_steps == 3 and config.grpo.use_vllm is True
    assert config.grpo.lora.enabled and config.grpo.lora.r == 8
    assert load_config(path).grpo.learning_rate == 1e-7  # "1e-7" is a string to YAML
    with pytest.raises(ValueError, match="unknown setting 'lerning_rate'"):
        load_config(None, ["grpo.lerning_rate=1"])
    with pytest.raises(ValueError, match="not a valid float"):
        load_config(None, ["grpo.learning_rate=fast"])


def test_batch_layout_counts_prompts_like_verl() -> None:
    assert batch_layout(GRPOSettings()) == (8, 16)  # 32 prompts x 4 = 128 completions = 8 x 16
    assert batch_layout(GRPOSettings(), world_size=4) == (8, 4)
    assert batch_layout(GRPOSettings(batch_prompts=2, micro_batch=16)) == (8, 1)
    with pytest.raises(ValueError, match="multiple"):
        batch_layout(GRPOSettings(batch_prompts=3, micro_batch=8))
