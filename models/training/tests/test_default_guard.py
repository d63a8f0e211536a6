"""The default guard's builder: the peft-free LoRA merge equals peft's, checksums are enforced,
and a build is skipped when the stamp matches (tiny random Llama, no download)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from rsafe_train.default_guard import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CHECKSUMS,
    ArtifactError,
    build,
    verify_adapter,
)


def _tiny_llama() -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def _pin(adapter_dir: Path) -> None:
    lines = [
        f"{hashlib.sha256((adapter_dir / name).read_bytes()).hexdigest()}  {name}"
        for name in (ADAPTER_WEIGHTS, ADAPTER_CONFIG)
    ]
    (adapter_dir / CHECKSUMS).write_text("\n".join(lines) + "\n")


@pytest.fixture()
def base_and_adapter(tmp_path: Path) -> tuple[Path, Path, Any]:
    from peft import LoraConfig, get_peft_model

    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    model = _tiny_llama()
    model.save_pretrained(base_dir, safe_serialization=True)
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        layers_to_transform=[1, 2],
        init_lora_weights=False,  # random B too: a zero delta would prove nothing
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    peft_model.save_pretrained(adapter_dir, safe_serialization=True)
    _pin(adapter_dir)
    return base_dir, adapter_dir, peft_model


def test_the_merge_equals_peft_merge_and_unload(
    base_and_adapter: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    base_dir, adapter_dir, peft_model = base_and_adapter
    out = build(adapter_dir, tmp_path / "merged", base_dir=base_dir)
    ours = load_file(str(out / "model.safetensors"))
    theirs = peft_model.merge_and_unload().state_dict()
    base = load_file(str(base_dir / "model.safetensors"))
    changed = [k for k in base if not torch.equal(base[k], ours[k])]
    # q, v and down of layers 1 and 2 moved; nothing else did.
    assert sorted(changed) == sorted(
        f"model.layers.{i}.{m}.weight"
        for i in (1, 2)
        for m in ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")
    )
    for key, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[key], rtol=1e-5, atol=1e-6)
    assert (out / "config.json").is_file()


def test_a_tampered_adapter_is_refused(base_and_adapter: tuple[Path, Path, Any]) -> None:
    _, adapter_dir, _ = base_and_adapter
    weights = adapter_dir / ADAPTER_WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        verify_adapter(adapter_dir)


def test_a_missing_checksum_file_is_refused(base_and_adapter: tuple[Path, Path, Any]) -> None:
    _, adapter_dir, _ = base_and_adapter
    (adapter_dir / CHECKSUMS).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verify_adapter(adapter_dir)


def test_a_second_build_is_skipped_and_a_new_adapter_rebuilds(
    base_and_adapter: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    base_dir, adapter_dir, _ = base_and_adapter
    out = build(adapter_dir, tmp_path / "merged", base_dir=base_dir)
    first = load_file(str(out / "model.safetensors"))
    # The stamp matches: the base is not even read (a folder that does not exist is fine).
    build(adapter_dir, out, base_dir=tmp_path / "no-such-base")
    # Another adapter (other pins) is merged again, and its weights differ.
    config = adapter_dir / ADAPTER_CONFIG
    config.write_text(config.read_text().replace('"lora_alpha": 8', '"lora_alpha": 16'))
    _pin(adapter_dir)
    with pytest.raises(FileNotFoundError):
        build(adapter_dir, out, base_dir=tmp_path / "no-such-base")
    build(adapter_dir, out, base_dir=base_dir)
    second = load_file(str(out / "model.safetensors"))
    key = "model.layers.1.self_attn.q_proj.weight"
    assert not first[key].equal(second[key])
