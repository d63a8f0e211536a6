"""Stage 2: GRPO with RSafe's rule-based reward (TRL GRPOTrainer).

Two reward functions, accuracy (weight 0.9) and format (weight 0.1), so TRL's per-step reward is
exactly RSafe's `0.9 * accuracy + 0.1 * format` and each part is logged on its own. Defaults are
the paper's reference run (4 generations, temperature 0.7, top_p 0.8, repetition penalty 1.05,
prompts up to 2048 tokens, completions up to 512, 32 prompts per step, lr 1e-7, 3 epochs).

`batch_prompts` counts prompts per optimizer step as verl does; TRL counts completions, so one
step is `batch_prompts * num_generations` completions in micro-batches of `micro_batch`
(gradient accumulation makes up the rest). TRL 1.x has no `max_prompt_length`: items whose
rendered prompt is longer are left out here (truncating would cut the policy or the instruction).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from rsafe_train.checkpoint import (
    checkpoint_step,
    has_gpu,
    is_peft_model,
    load_model_and_tokenizer,
    peft_config,
    save_for_vllm,
)
from rsafe_train.config import GRPOSettings, RunConfig, as_dict
from rsafe_train.data import UNSAFE, Example, read_jsonl
from rsafe_train.metrics import JsonlMetricsCallback, plot_metrics, use_rich_progress
from rsafe_train.prompts import PolicyResolver
from rsafe_train.reward import (
    ACCURACY_WEIGHT,
    FORMAT_WEIGHT,
    accuracy_reward_func,
    format_reward_func,
)
from rsafe_train.sft import (
    StageResult,
    policy_resolver,
    resume_point,
    select,
    trainer_run_args,
)


def prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def within_prompt_budget(
    examples: list[Example], resolver: PolicyResolver, tokenizer: Any, max_tokens: int
) -> list[tuple[Example, list[dict[str, str]]]]:
    """Each example with its rendered messages, those whose prompt is over `max_tokens` left
    out (truncating would cut the policy or the instruction)."""
    rendered = [(example, resolver.messages(example)) for example in examples]
    return [pair for pair in rendered if prompt_tokens(tokenizer, pair[1]) <= max_tokens]


def batch_layout(settings: GRPOSettings, world_size: int = 1) -> tuple[int, int]:
    """(per-device micro-batch of completions, gradient accumulation steps) for one step."""
    completions = settings.batch_prompts * settings.num_generations
    micro = min(settings.micro_batch, completions)
    if completions % (micro * world_size):
        raise ValueError(
            f"batch_prompts*num_generations={completions} is not a multiple of "
            f"micro_batch*world_size={micro * world_size}"
        )
    return micro, completions // (micro * world_size)


def stage2_examples(config: RunConfig) -> list[Example]:
    """The train file's items, without the policy-swap views unless `grpo.policy_swaps`."""
    examples = read_jsonl(Path(config.data))
    if config.grpo.policy_swaps:
        return examples
    return [example for example in examples if example.policy is None]


def interleave_labels(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Records alternately gold unsafe and gold safe, each label's order shuffled (seeded); the
    longer label's surplus is dropped, so every even-sized run of consecutive prompts is
    label-balanced."""
    rng = random.Random(seed)
    unsafe = [record for record in records if record["label"] == UNSAFE]
    safe = [record for record in records if record["label"] != UNSAFE]
    rng.shuffle(unsafe)
    rng.shuffle(safe)
    return [record for pair in zip(unsafe, safe, strict=False) for record in pair]


def run_grpo(
    config: RunConfig,
    *,
    model_path: str | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
) -> StageResult:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    settings = config.grpo
    started = time.monotonic()
    out_dir = out_dir or Path(config.output_dir) / "grpo"
    on_cpu = (not has_gpu()) if settings.use_cpu is None else settings.use_cpu
    model, tokenizer = load_model_and_tokenizer(model_path or config.model, use_cpu=on_cpu)
    resolver = policy_resolver(config)
    chosen = select(stage2_examples(config), settings.max_examples, config.seed)
    records = [
        {"prompt": messages, "label": example.label}
        for example, messages in within_prompt_budget(
            chosen, resolver, tokenizer, settings.max_prompt_length
        )
    ]
    if not records:
        raise ValueError(
            f"stage 2 has no items within max_prompt_length={settings.max_prompt_length}"
        )
    if settings.balanced_steps:
        if settings.batch_prompts % 2:
            raise ValueError("grpo.balanced_steps needs an even grpo.batch_prompts")
        records = interleave_labels(records, config.seed)
    micro, accumulation = batch_layout(settings, int(os.environ.get("WORLD_SIZE", "1")))
    args = GRPOConfig(
        output_dir=str(out_dir),
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        num_generations=settings.num_generations,
        temperature=settings.temperature,
        top_p=settings.top_p,
        repetition_penalty=settings.repetition_penalty,
        max_completion_length=settings.max_completion_length,
        beta=settings.beta,
        loss_type=settings.loss_type,
        scale_rewards=settings.scale_rewards,
        reward_weights=[ACCURACY_WEIGHT, FORMAT_WEIGHT],
        use_vllm=settings.use_vllm,
        vllm_mode=settings.vllm_mode,
        vllm_server_base_url=settings.vllm_server_base_url,
        vllm_gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
        log_completions=settings.log_completions,
        # balanced_steps' order is the schedule: the sampler must not shuffle it away.
        shuffle_dataset=not settings.balanced_steps,
        **trainer_run_args(settings, config.seed, on_cpu),
    )
    metrics = out_dir / "metrics.jsonl"
    checkpoint = resume_point(out_dir, resume)
    # A model that already carries a (stage-1) adapter goes on training it: no second adapter.
    lora = None if is_peft_model(model) else peft_config(settings.lora)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[accuracy_reward_func, format_reward_func],
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[JsonlMetricsCallback(metrics, "grpo", checkpoint_step(checkpoint))],
    )
    use_rich_progress(trainer, "stage 2 GRPO")
    trainer.train(resume_from_checkpoint=checkpoint)
    final = save_for_vllm(
        trainer.model,
        tokenizer,
        out_dir / "final",
        {
            "stage": "grpo",
            "base": model_path or config.model,
            "items": len(records),
            **as_dict(config),
        },
    )
    plot_metrics(metrics, out_dir / "rewards.png")
    return StageResult(final, metrics, len(records), time.monotonic() - started)
