"""Make a tiny, randomly initialised checkpoint of a guard family's architecture, offline.

PLUMBING ONLY: the weights are random, so its "judgements" are noise. It exists so that the real
model server (vLLM) can be started and exercised on a machine with no GPU and no model hub.

Architectures (`--architecture`):
- `qwen2` (default): RSafe's base (Qwen2.5), ChatML, an offline-trained byte-level BPE;
- `qwen3`: Qwen3Guard-Gen's (`Qwen3ForCausalLM`), the same tokenizer, and a chat template that
  wraps the conversation in a guard instruction the way Qwen3Guard-Gen's own template does
  (`QWEN3GUARD_CHAT_TEMPLATE`: the structure of the published one, not its exact wording);
- `gpt-oss`: gpt-oss-safeguard's (`GptOssForCausalLM`), with the harmony tokenizer (o200k_harmony,
  rebuilt from the `openai_harmony` package's own vocabulary, so no download), as vLLM renders
  harmony itself for this architecture.

Run with the model server's environment (it needs torch, transformers and tokenizers):
    .venv-vllm/bin/python models/tiny_checkpoint.py .cache/tiny-rsafe
    .venv-vllm/bin/python models/tiny_checkpoint.py --architecture qwen3 .cache/tiny-qwen3guard
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

VOCAB_SIZE = 2048
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML, as Qwen2.5 uses; the gateway always sends one user message.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
MARKER = "rsafe-tiny-plumbing-checkpoint"
ARCHITECTURES = ("qwen2", "qwen3", "gpt-oss")

# o200k_harmony (tiktoken_ext.openai_public): its pre-tokenizer pattern and special tokens.
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
HARMONY_SPECIALS = {
    "<|startoftext|>": 199998,
    "<|endoftext|>": 199999,
    "<|return|>": 200002,
    "<|constrain|>": 200003,
    "<|channel|>": 200005,
    "<|start|>": 200006,
    "<|end|>": 200007,
    "<|message|>": 200008,
    "<|endofprompt|>": 200018,
    "<|call|>": 200012,
    **{f"<|reserved_{i}|>": i for i in (200000, 200001, 200004, 200009, 200010, 200011)},
    **{f"<|reserved_{i}|>": i for i in range(200013, 201088) if i != 200018},
}

# Qwen3Guard-Gen's template puts the whole conversation into ONE user turn, framed by a fixed
# instruction (its safety tiers, its nine categories, the answer lines it must write); a response
# check (last message from the assistant) adds the Refusal line.
_QWEN3GUARD_CATEGORIES = (
    "Violent.\nNon-violent Illegal Acts.\nSexual Content or Sexual Acts.\nPII.\n"
    "Suicide & Self-Harm.\nUnethical Acts.\nPolitically Sensitive Topics.\n"
    "Copyright Violation.\nJailbreak.\n"
)
_LAST = "THE LAST {who}\\'s {what}"
QWEN3GUARD_CHAT_TEMPLATE = (
    "{% set response = messages[-1]['role'] == 'assistant' %}"
    "{{ '<|im_start|>user\n# Task:\n' }}"
    "{% if response %}"
    "{{ '1) Evaluate whether " + _LAST.format(who="ASSISTANT", what="response") + " is safe.\n' }}"
    "{% else %}"
    "{{ '1) Evaluate whether " + _LAST.format(who="USER", what="query") + " is safe.\n' }}"
    "{% endif %}"
    "{{ '2) Identify the category of unsafe content found.\n' }}"
    "{% if response %}"
    "{{ '3) Determine if " + _LAST.format(who="ASSISTANT", what="response") + " is a refusal.\n' }}"
    "{% endif %}"
    "{{ '\n<BEGIN SAFETY POLICY>\nSafety: Safe / Unsafe / Controversial\n<END SAFETY POLICY>' }}"
    "{{ '\n\n<BEGIN UNSAFE CONTENT CATEGORIES>\n" + _QWEN3GUARD_CATEGORIES + "' }}"
    "{{ '<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n' }}"
    "{% for message in messages %}"
    "{{ message['role'] | upper + ': ' + message['content'] + '\n\n' }}"
    "{% endfor %}"
    "{{ '<END CONVERSATION>\n\n' }}"
    "{{ 'The first line must be one of: Safety: Safe, Safety: Unsafe, Safety: Controversial.\n' }}"
    "{{ 'The second line must start with Categories: (None if safe).' }}"
    "{% if response %}{{ '\nThe third line must be Refusal: Yes or Refusal: No.' }}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _training_text() -> Iterator[str]:
    """Local text to learn a byte-level BPE from: the standard library's own sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py"))[:200]:
        yield path.read_text(encoding="utf-8", errors="ignore")
    # Make sure the prompt's own vocabulary is well covered.
    yield "<think> </think> \\boxed{safe} \\boxed{unsafe} User: Agent: <BEGIN CONVERSATION>" * 50


def build_tokenizer(out_dir: Path, chat_template: str = CHAT_TEMPLATE) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - 48,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    fast.chat_template = chat_template
    fast.save_pretrained(out_dir)


def build_harmony_tokenizer(out_dir: Path) -> None:
    """The o200k_harmony tokenizer as a Hugging Face one, from `openai_harmony`'s own vocabulary
    (tiktoken would download it): each ordinary token's bytes, in rank order, are the BPE ranks."""
    import base64

    from openai_harmony import HarmonyEncodingName, load_harmony_encoding
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    harmony = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    vocab_file = out_dir / "o200k_harmony.tiktoken"
    with vocab_file.open("w", encoding="ascii") as out:
        for rank in range(HARMONY_SPECIALS["<|startoftext|>"]):
            token = bytes(harmony._inner.decode_bytes([rank]))
            out.write(f"{base64.b64encode(token).decode()} {rank}\n")
    tokenizer = TikTokenConverter(
        vocab_file=str(vocab_file), pattern=O200K_PATTERN, extra_special_tokens=HARMONY_SPECIALS
    ).converted()
    vocab_file.unlink()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|return|>",
        pad_token="<|endoftext|>",
        bos_token="<|startoftext|>",
    )
    fast.save_pretrained(out_dir)


# The size of every tiny decoder (Qwen2 and Qwen3 alike): 2 layers, a few MB, any CPU.
SMALL_DECODER: dict[str, object] = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def build_model(out_dir: Path, seed: int, architecture: str = "qwen2") -> None:
    import torch

    torch.manual_seed(seed)
    if architecture == "qwen3":
        _build_qwen3(out_dir)
        return
    if architecture == "gpt-oss":
        _build_gpt_oss(out_dir)
        return
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SMALL_DECODER)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)


def _build_qwen3(out_dir: Path) -> None:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(**SMALL_DECODER)
    Qwen3ForCausalLM(config).to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)


def _build_gpt_oss(out_dir: Path) -> None:
    import torch
    from transformers import GptOssConfig, GptOssForCausalLM

    config = GptOssConfig(
        vocab_size=201088,  # the harmony vocabulary: vLLM renders harmony token ids itself
        hidden_size=128,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        num_local_experts=4,
        num_experts_per_tok=2,
        sliding_window=128,
        max_position_embeddings=8192,
        torch_dtype="bfloat16",
        pad_token_id=199999,
        bos_token_id=199998,
        eos_token_id=200002,
    )
    GptOssForCausalLM(config).to(torch.bfloat16).save_pretrained(out_dir, safe_serialization=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="qwen2")
    options = parser.parse_args(argv)
    out_dir: Path = options.out_dir
    if (out_dir / MARKER).exists():
        print(f"tiny checkpoint already at {out_dir}")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    if options.architecture == "gpt-oss":
        build_harmony_tokenizer(out_dir)
    elif options.architecture == "qwen3":
        build_tokenizer(out_dir, QWEN3GUARD_CHAT_TEMPLATE)
    else:
        build_tokenizer(out_dir)
    build_model(out_dir, options.seed, options.architecture)
    (out_dir / MARKER).write_text(
        json.dumps({"purpose": "plumbing only: random weights, not a safety model"}) + "\n"
    )
    print(f"tiny checkpoint written to {out_dir} (random weights: plumbing only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
