"""Loading a base checkpoint for training and saving one that vLLM serves as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsafe_train.config import LoraSettings

MARKER_FILE = "rsafe_train.json"


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def load_model_and_tokenizer(path: str | Path, *, use_cpu: bool | None = None) -> tuple[Any, Any]:
    """float32 on the CPU (bf16 matmuls are slow and lossy there), bfloat16 on a GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    on_cpu = (not has_gpu()) if use_cpu is None else use_cpu
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(
            f"{path}: the tokenizer has no chat template (the RSafe prompt is a chat message)"
        )
    model = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=torch.float32 if on_cpu else torch.bfloat16
    )
    return model, tokenizer


def peft_config(settings: LoraSettings) -> Any | None:
    if not settings.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )


def save_for_vllm(model: Any, tokenizer: Any, out_dir: Path, metadata: dict[str, Any]) -> Path:
    """A plain safetensors folder (LoRA merged in) with the tokenizer and its chat template."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):  # a peft model: fold the adapters into the weights
        model = model.merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / MARKER_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    return out_dir
