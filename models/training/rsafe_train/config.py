"""Run settings: dataclasses with the paper's defaults, read from a YAML file, overridable.

A config file (models/configs/*.yaml) has top-level keys `model`, `data`, `output_dir`, `policy`,
`policy_by_source`, `seed`, and the sections `sft:` and `grpo:` (field names as below; `lora:`
inside either). `--set grpo.learning_rate=1e-6` style overrides are applied on top (values are
parsed as YAML).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    # Only these decoder layers get adapters (None: all). The backward pass stops at the lowest
    # adapted layer, so adapting the top layers only is much cheaper on a CPU.
    layers_to_transform: list[int] | None = None


@dataclass
class TeacherSettings:
    base_url: str = ""  # OpenAI-compatible, e.g. http://127.0.0.1:8001/v1; empty: not used
    model: str = ""
    api_key_env: str = "RSAFE_TEACHER_API_KEY"
    attempts: int = 4
    max_tokens: int = 1024


@dataclass
class SFTSettings:
    """Stage 1: guided-reasoning warm-up (measured on CPU: 64 items, batch 8, lr 2e-5, 1 epoch)."""

    max_examples: int | None = None  # None: every item of the data file
    selection: str = "random"  # or "by_item": whole items, all their policy views together
    # Every example of these sources is taken, and `max_examples` more of the others (a round
    # that teaches what the model still gets wrong, with a replay of the rest).
    focus_sources: list[str] = field(default_factory=list)
    focus_max_examples: int | None = None  # None: every example of the focus sources
    reasoning: str = "template"  # "template" or "teacher"
    # Template reasoning only: quote up to this many characters of the judged text first (0: no).
    quote_chars: int = 0
    # Template reasoning only: say "harmful"/"harmless" before the topic (TemplateReasoning).
    harm_first: bool = False
    # > 1: the decision tokens (harm word, the policy part's first word, the boxed verdict)
    # count this many times in the loss (rsafe_train.decision_loss); 1: plain SFT.
    decision_weight: float = 1.0
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    learning_rate: float = 2e-5
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    epochs: float = 1.0
    max_steps: int = -1
    # End the stage after this optimizer step, on the schedule planned for `epochs` (max_steps
    # would re-plan the learning-rate decay): round 7 stopped at the end of its first pass.
    stop_at_step: int | None = None
    max_length: int = 2560  # prompt + completion tokens; longer items are truncated by TRL
    warmup_ratio: float = 0.0
    logging_steps: int = 1
    save_steps: int = 0  # 0: only the final save
    gradient_checkpointing: bool = False
    # "group_by_length" batches items of similar length: less padding, the same items per epoch.
    sampling: str = "random"
    lora: LoraSettings = field(default_factory=LoraSettings)


@dataclass
class GRPOSettings:
    """Stage 2: GRPO with the rule-based reward; defaults are the paper's reference run."""

    max_examples: int | None = None
    # False: only items under their own (source's or default) policy, no policy-swap views. The
    # reward sees the verdict only, so a swap view (harmful content that its policy leaves out,
    # gold safe) pays "harmless ... safe" as well as "harmful, but this policy ... safe", and a
    # harm-first model learns to call harmful content harmless (measured: models/README.md).
    policy_swaps: bool = True
    # True: every step's prompts are half gold-unsafe, half gold-safe (the items interleaved by
    # label, in that order), so a small step cannot push the verdict's prior one way only: with 2
    # prompts a step, unbalanced draws made the decision threshold random-walk (models/README.md).
    balanced_steps: bool = False
    num_generations: int = 4
    temperature: float = 0.7
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    max_prompt_length: int = 2048  # items whose rendered prompt is longer are left out
    max_completion_length: int = 512
    batch_prompts: int = 32  # prompts per optimizer step (x num_generations completions)
    micro_batch: int = (
        8  # completions per forward/backward (gradient accumulation makes up the rest)
    )
    learning_rate: float = 1e-7
    epochs: float = 3.0
    max_steps: int = -1
    beta: float = 0.0  # KL coefficient; 0 loads no reference model
    loss_type: str = "dapo"  # token-level mean over the batch, as verl's default token-mean
    scale_rewards: str = "group"
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # or "server": a `trl vllm-serve` process at vllm_server_base_url
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = 0.3
    use_cpu: bool | None = None  # None: on the CPU exactly when no GPU is visible
    logging_steps: int = 1
    save_steps: int = 50  # 0: only the final save
    gradient_checkpointing: bool = False
    log_completions: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)


@dataclass
class RunConfig:
    model: str = ""
    data: str = ""
    output_dir: str = "artifacts/rsafe-train"
    policy: str = "rsafe-default"
    policy_by_source: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)


def _coerce(annotation: str, value: str, where: str) -> Any:
    """YAML reads `1e-7` (no dot) as a string: turn numbers-as-text into the field's type."""
    kinds = {part.strip() for part in annotation.split("|")}
    if "str" in kinds:
        return value
    try:
        if "int" in kinds and value.strip().lstrip("-").isdigit():
            return int(value)
        if "float" in kinds:
            return float(value)
    except ValueError:
        pass
    raise ValueError(f"{where}: {value!r} is not a valid {annotation}")


def _build(cls: type[T], values: dict[str, Any], where: str) -> T:
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{where}: unknown setting {key!r} (known: {', '.join(known)})")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = _build(type(default), value, f"{where}.{key}")
        elif isinstance(value, str):
            value = _coerce(str(known[key].type), value, f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            raise ValueError(f"--set {dotted}: {part!r} is not a section")
    tree[leaf] = value


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML file (or the defaults) and apply `key.sub=value` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config file must be a mapping")
        tree = loaded
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), yaml.safe_load(raw))
    return _build(RunConfig, tree, str(path) if path else "config")


def as_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
