"""Loading a base checkpoint for training and saving one that vLLM serves as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsafe_train.config import LoraSettings

MARKER_FILE = "rsafe_train.json"
ADAPTER_DIR = "adapter"  # beside `final`: the LoRA adapter alone (the small shippable artifact)
ADAPTER_CONFIG = "adapter_config.json"


def has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def load_model_and_tokenizer(path: str | Path, *, use_cpu: bool | None = None) -> tuple[Any, Any]:
    """float32 on the CPU (bf16 matmuls are slow and lossy there), bfloat16 on a GPU.

    A LoRA adapter folder (stage 1's `adapter`) loads as its base model with that adapter,
    trainable: stage 2 then goes on training the same adapter, so the run ends with ONE adapter
    on the base model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    on_cpu = (not has_gpu()) if use_cpu is None else use_cpu
    adapter_config = Path(path) / ADAPTER_CONFIG
    if adapter_config.is_file():
        from peft import PeftModel

        base = json.loads(adapter_config.read_text(encoding="utf-8"))["base_model_name_or_path"]
        model, tokenizer = load_model_and_tokenizer(base, use_cpu=on_cpu)
        return PeftModel.from_pretrained(model, str(path), is_trainable=True), tokenizer
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


def is_peft_model(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def peft_config(settings: LoraSettings) -> Any | None:
    if not settings.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        layers_to_transform=settings.layers_to_transform,
        task_type="CAUSAL_LM",
    )


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest `checkpoint-N` folder the Trainer saved in `out_dir` (None: none yet)."""
    if not out_dir.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    found: str | None = get_last_checkpoint(str(out_dir))
    return found


def checkpoint_step(checkpoint: str | None) -> int | None:
    return None if checkpoint is None else int(Path(checkpoint).name.rsplit("-", 1)[1])


def save_for_vllm(model: Any, tokenizer: Any, out_dir: Path, metadata: dict[str, Any]) -> Path:
    """A plain safetensors folder (LoRA merged in) with the tokenizer and its chat template.

    A LoRA model's adapter is saved first, alone, in `../adapter` (with the tokenizer and the
    same metadata): the small artifact to ship, and what stage 2 starts from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):  # a peft model: fold the adapters into the weights
        adapter = out_dir.parent / ADAPTER_DIR
        model.save_pretrained(adapter, safe_serialization=True)
        tokenizer.save_pretrained(adapter)
        (adapter / MARKER_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
        model = model.merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / MARKER_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    return out_dir
