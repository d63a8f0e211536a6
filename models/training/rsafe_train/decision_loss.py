"""Stage 1's loss with the few tokens that decide weighted up (`sft.decision_weight`).

A template answer is ~70 tokens, and almost all of them are easy once the template is learnt:
the quotation is copied, the phrasing is fixed. The tokens that carry the judgement are three:
the word that says whether the content is harmful (`harm_first` reasoning), the first word of
the policy's part (`It falls under…` / `That would be…, but this policy…` / `The policy says…`
/ `None of…`), and the boxed verdict. With a plain mean over tokens the topic phrase, a pick
among dozens, dominates what is left of the loss, and the rounds before showed a model that
learns the template and a label prior rather than the content's judgement. Each decision token
here counts `weight` times; the others once.

The positions are found in the labels (completion tokens; the prompt is -100), from the
tokenizer's own ids, so the weighting follows the template of `rsafe_train.reasoning`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

IGNORED = -100
HARM_WORDS = (" harmful", " harmless")
VERDICT_HEADS = ("safe", "unsafe")  # what follows `\boxed{`; only their first token is weighted


def _single_token(tokenizer: Any, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"{text!r} is {len(ids)} tokens for this tokenizer; one is needed")
    return int(ids[0])


@dataclass(frozen=True)
class DecisionTokens:
    """The token ids the positions are found by."""

    harm_words: frozenset[int]
    period: int
    open_brace: int
    verdict_heads: frozenset[int]

    @classmethod
    def of(cls, tokenizer: Any) -> DecisionTokens:
        open_brace = _single_token(tokenizer, "{")
        heads: set[int] = set()
        for word in VERDICT_HEADS:
            ids = tokenizer.encode("{" + word, add_special_tokens=False)
            if len(ids) < 2 or ids[0] != open_brace:
                raise ValueError(f"'{{{word}' does not start with the token of '{{' here")
            heads.add(int(ids[1]))
        return cls(
            harm_words=frozenset(_single_token(tokenizer, word) for word in HARM_WORDS),
            period=_single_token(tokenizer, "."),
            open_brace=open_brace,
            verdict_heads=frozenset(heads),
        )


def decision_positions(labels: Sequence[int], tokens: DecisionTokens) -> list[int]:
    """Where, in one sequence's labels, the harm word, the first word of the policy's part (the
    token after the period that ends the harm sentence) and the boxed verdict's first token are."""
    positions: list[int] = []
    harm = next((i for i, token in enumerate(labels) if token in tokens.harm_words), None)
    if harm is not None:
        positions.append(harm)
        period = next((i for i in range(harm + 1, len(labels)) if labels[i] == tokens.period), None)
        if period is not None and period + 1 < len(labels) and labels[period + 1] != IGNORED:
            positions.append(period + 1)
    verdicts = [
        i
        for i in range(1, len(labels))
        if labels[i] in tokens.verdict_heads and labels[i - 1] == tokens.open_brace
    ]
    if verdicts:
        positions.append(verdicts[-1])
    return positions


def decision_weighted_loss(tokens: DecisionTokens, weight: float) -> Callable[[Any, Any], Any]:
    """The loss of `decision_weighted_trainer`: token cross-entropy over the completion, the
    decision tokens counted `weight` times, normalised by the total weight."""
    import torch
    import torch.nn.functional as functional

    def loss(outputs: Any, labels: Any) -> Any:
        logits = outputs.logits[:, :-1, :].float()
        targets = labels[:, 1:]
        per_token = functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
            ignore_index=IGNORED,
            reduction="none",
        ).view_as(targets)
        weights = (targets != IGNORED).float()
        for row, sequence in enumerate(targets.tolist()):
            for position in decision_positions(sequence, tokens):
                weights[row, position] = weight
        return (per_token * weights).sum() / torch.clamp(weights.sum(), min=1.0)

    return loss


def decision_weighted_trainer(base: type[Any], tokens: DecisionTokens, weight: float) -> type[Any]:
    """`base` (TRL's SFTTrainer) with its loss replaced by `decision_weighted_loss`: one forward
    pass a step (TRL's own loss path adds entropy and token accuracy to the logs; this one logs
    the loss only)."""
    weighted = decision_weighted_loss(tokens, weight)

    class DecisionWeightedTrainer(base):  # type: ignore[misc]
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            forward = {key: value for key, value in inputs.items() if key != "labels"}
            outputs = model(**forward, use_cache=False)
            loss = weighted(outputs, inputs["labels"])
            return (loss, outputs) if return_outputs else loss

    return DecisionWeightedTrainer
