"""Stage 1: the guided-reasoning warm-up (TRL SFTTrainer, loss on the completion only).

Without it GRPO has no signal on a small model: it never writes `<think>…</think>\\boxed{}` on its
own, so every reward is 0 and so is every gradient (shared/design/training-cpu.md). Each item is
a conversational prompt/completion pair: the prompt is the gateway's own RSafe message, the
completion the reasoning source's `<think>…</think>\\n\\boxed{label}`.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rsafe_train.checkpoint import (
    checkpoint_step,
    has_gpu,
    is_peft_model,
    last_checkpoint,
    load_model_and_tokenizer,
    peft_config,
    save_for_vllm,
)
from rsafe_train.config import RunConfig, SFTSettings, as_dict
from rsafe_train.data import Example, read_jsonl
from rsafe_train.decision_loss import DecisionTokens, decision_weighted_trainer
from rsafe_train.metrics import JsonlMetricsCallback, StopAtStep, use_rich_progress
from rsafe_train.prompts import PolicyResolver, resolve_policy_path
from rsafe_train.reasoning import ReasoningSource, TeacherReasoning, TemplateReasoning


class StageRunSettings(Protocol):
    """What both stages' settings say about logging, checkpoints and memory."""

    logging_steps: int
    save_steps: int
    gradient_checkpointing: bool


def trainer_run_args(settings: StageRunSettings, seed: int, on_cpu: bool) -> dict[str, Any]:
    """The Trainer arguments both stages share: logging, checkpoints (the newest two kept, for
    `--resume`), the device, the seed."""
    return {
        "logging_steps": settings.logging_steps,
        "save_strategy": "steps" if settings.save_steps else "no",
        "save_steps": settings.save_steps or 500,
        "save_total_limit": 2,
        "use_cpu": on_cpu,
        "bf16": not on_cpu,
        "seed": seed,
        "report_to": "none",
        # Passed only when on: the old name warns in transformers 5 even when False.
        **({"gradient_checkpointing": True} if settings.gradient_checkpointing else {}),
    }


@dataclass(frozen=True)
class StageResult:
    checkpoint: Path
    metrics: Path
    examples: int
    seconds: float


def policy_resolver(config: RunConfig) -> PolicyResolver:
    return PolicyResolver.from_files(
        resolve_policy_path(config.policy),
        {source: resolve_policy_path(p) for source, p in config.policy_by_source.items()},
    )


def reasoning_source(config: RunConfig) -> ReasoningSource:
    settings = config.sft
    if settings.reasoning == "template":
        return TemplateReasoning(quote_chars=settings.quote_chars, harm_first=settings.harm_first)
    if settings.reasoning == "teacher":
        teacher = settings.teacher
        if not teacher.base_url or not teacher.model:
            raise ValueError(
                "sft.reasoning=teacher needs sft.teacher.base_url and sft.teacher.model"
            )
        return TeacherReasoning(
            base_url=teacher.base_url,
            model=teacher.model,
            api_key=os.environ.get(teacher.api_key_env),
            attempts=teacher.attempts,
            max_tokens=teacher.max_tokens,
            fallback=TemplateReasoning(),
        )
    raise ValueError(f"sft.reasoning must be 'template' or 'teacher', not {settings.reasoning!r}")


def select(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    if limit is None or limit >= len(examples):
        return examples
    return random.Random(seed).sample(examples, limit)


def select_by_item(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """Up to `limit` examples made of whole items: every view (policy) of the same content is
    taken together, so a swap pair (same text, opposite labels) is never split; seeded."""
    if limit is None or limit >= len(examples):
        return examples
    groups: dict[tuple[str, str, str | None], list[Example]] = {}
    for example in examples:
        groups.setdefault((example.source, example.prompt, example.response), []).append(example)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    chosen: list[Example] = []
    for group in order:
        if len(chosen) + len(group) <= limit:
            chosen.extend(group)
    random.Random(seed + 1).shuffle(chosen)
    return chosen


def select_with_focus(examples: list[Example], settings: SFTSettings, seed: int) -> list[Example]:
    """Up to `focus_max_examples` examples of `settings.focus_sources` (default: all), then up to
    `max_examples` of the others, each chosen as `settings.selection` says; shuffled, seeded."""
    choose = select_by_item if settings.selection == "by_item" else select
    focus = set(settings.focus_sources)
    if not focus:
        return choose(examples, settings.max_examples, seed)
    chosen = choose(
        [example for example in examples if example.source in focus],
        settings.focus_max_examples,
        seed,
    )
    rest = [example for example in examples if example.source not in focus]
    chosen += choose(rest, settings.max_examples, seed)
    random.Random(seed + 2).shuffle(chosen)
    return chosen


def sft_records(
    examples: list[Example], resolver: PolicyResolver, source: ReasoningSource
) -> list[dict[str, Any]]:
    records = []
    for example in examples:
        messages = resolver.messages(example)
        completion = source.completion(example, messages, resolver.policy_for(example))
        if completion is not None:
            records.append(
                {
                    "prompt": messages,
                    "completion": [{"role": "assistant", "content": completion}],
                    "label": example.label,
                }
            )
    return records


def resume_point(out_dir: Path, resume: bool) -> str | None:
    """The checkpoint to resume from: the newest in `out_dir` when asked, else none."""
    return last_checkpoint(out_dir) if resume else None


def record_tokens(tokenizer: Any, record: dict[str, Any]) -> int:
    """Prompt (chat template, generation prompt) plus completion tokens of one SFT record."""
    prompt = tokenizer.apply_chat_template(
        record["prompt"], tokenize=False, add_generation_prompt=True
    )
    text = prompt + record["completion"][0]["content"]
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def within_max_length(
    records: list[dict[str, Any]], tokenizer: Any, max_length: int | None
) -> list[dict[str, Any]]:
    """Leave out records longer than `max_length`: TRL would cut their answer off the end."""
    if max_length is None:
        return records
    kept = [r for r in records if record_tokens(tokenizer, r) <= max_length]
    if not kept:
        raise ValueError(f"no stage-1 item fits max_length={max_length}")
    return kept


def run_sft(
    config: RunConfig,
    *,
    model_path: str | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
) -> StageResult:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    settings = config.sft
    started = time.monotonic()
    out_dir = out_dir or Path(config.output_dir) / "sft"
    examples = select_with_focus(read_jsonl(Path(config.data)), settings, config.seed)
    records = sft_records(examples, policy_resolver(config), reasoning_source(config))
    if not records:
        raise ValueError("stage 1 has no training items (empty data, or the teacher rejected all)")
    model, tokenizer = load_model_and_tokenizer(model_path or config.model)
    records = within_max_length(records, tokenizer, settings.max_length)
    on_cpu = not has_gpu()
    args = SFTConfig(
        output_dir=str(out_dir),
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        max_length=settings.max_length,
        warmup_steps=settings.warmup_ratio,
        completion_only_loss=True,
        train_sampling_strategy=settings.sampling,
        **trainer_run_args(settings, config.seed, on_cpu),
    )
    metrics = out_dir / "metrics.jsonl"
    checkpoint = resume_point(out_dir, resume)
    trainer_class = SFTTrainer
    if settings.decision_weight != 1.0:
        trainer_class = decision_weighted_trainer(
            SFTTrainer, DecisionTokens.of(tokenizer), settings.decision_weight
        )
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        # Started from an adapter (a later round): that adapter goes on learning, no second one.
        peft_config=None if is_peft_model(model) else peft_config(settings.lora),
        callbacks=[
            JsonlMetricsCallback(metrics, "sft", checkpoint_step(checkpoint)),
            *([StopAtStep(settings.stop_at_step)] if settings.stop_at_step else []),
        ],
    )
    use_rich_progress(trainer, "stage 1 SFT")
    trainer.train(resume_from_checkpoint=checkpoint)
    final = save_for_vllm(
        trainer.model,
        tokenizer,
        out_dir / "final",
        {
            "stage": "sft",
            "base": model_path or config.model,
            "items": len(records),
            **as_dict(config),
        },
    )
    return StageResult(final, metrics, len(records), time.monotonic() - started)
