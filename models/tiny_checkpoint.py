"""Make a tiny, randomly initialised Qwen2 checkpoint with an offline-trained tokenizer.

PLUMBING ONLY: the weights are random, so its "judgements" are noise. It exists so that the real
model server (vLLM) can be started and exercised on a machine with no GPU and no model hub.

Run with the model server's environment (it needs torch, transformers and tokenizers):
    .venv-vllm/bin/python models/tiny_checkpoint.py .cache/tiny-rsafe
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


def _training_text() -> Iterator[str]:
    """Local text to learn a byte-level BPE from: the standard library's own sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py"))[:200]:
        yield path.read_text(encoding="utf-8", errors="ignore")
    # Make sure the prompt's own vocabulary is well covered.
    yield "<think> </think> \\boxed{safe} \\boxed{unsafe} User: Agent: <BEGIN CONVERSATION>" * 50


def build_tokenizer(out_dir: Path) -> None:
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
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)


def build_model(out_dir: Path, seed: int) -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        torch_dtype="bfloat16",
        bos_token_id=1,
        eos_token_id=2,
    )
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    out_dir: Path = options.out_dir
    if (out_dir / MARKER).exists():
        print(f"tiny checkpoint already at {out_dir}")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    build_tokenizer(out_dir)
    build_model(out_dir, options.seed)
    (out_dir / MARKER).write_text(
        json.dumps({"purpose": "plumbing only: random weights, not a safety model"}) + "\n"
    )
    print(f"tiny checkpoint written to {out_dir} (random weights: plumbing only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
