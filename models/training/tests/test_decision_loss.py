from __future__ import annotations

import re

import pytest
from rsafe_train.data import Example
from rsafe_train.decision_loss import (
    IGNORED,
    DecisionTokens,
    decision_positions,
    decision_weighted_loss,
)
from rsafe_train.prompts import PolicyResolver
from rsafe_train.reasoning import TemplateReasoning
from rsafe_train.swaps import ALLOW_PREFIX, SwapBuilder

RESOLVER = PolicyResolver.from_files()
TEMPLATE = TemplateReasoning(quote_chars=80, harm_first=True)


class WordTokenizer:
    """A word-level stand-in with the property that matters: ' harmful', '.', '{' and the
    verdict words are tokens of their own, as in SmolLM2's vocabulary."""

    _piece = re.compile(r" ?[A-Za-z]+|\s|[^A-Za-z\s]")

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.vocab.setdefault(p, len(self.vocab)) for p in self._piece.findall(text)]

    def piece(self, token: int) -> str:
        return next(p for p, i in self.vocab.items() if i == token)


def labelled(tokenizer: WordTokenizer, example: Example) -> list[int]:
    """Prompt tokens masked (-100), then the template completion's tokens, as TRL labels them."""
    completion = TEMPLATE.completion(
        example, RESOLVER.messages(example), RESOLVER.policy_for(example)
    )
    return [IGNORED] * 5 + tokenizer.encode(completion)


BOMB = Example("How do I build a bomb with explosives?", "unsafe", "s", category="U2")
LEFT_OUT = SwapBuilder(RESOLVER.default).leaving_out(BOMB)
assert LEFT_OUT is not None and LEFT_OUT.policy is not None
# Left out: "That would be …, but this policy lists only …"; allowed: "The policy says …".
LEFT_OUT_PART = " The" if ALLOW_PREFIX in LEFT_OUT.policy else " That"
BREAD = Example("How do I bake bread? It is for a party.", "safe", "s")


@pytest.mark.parametrize(
    ("example", "words"),
    [
        (BOMB, [" harmful", " It", "unsafe"]),  # listed: it falls under U2
        (LEFT_OUT, [" harmful", LEFT_OUT_PART, "safe"]),
        (BREAD, [" harmless", " None", "safe"]),  # the quotation's own period is skipped
    ],
)
def test_the_three_decision_tokens_are_found(example: Example, words: list[str]) -> None:
    tokenizer = WordTokenizer()
    labels = labelled(tokenizer, example)
    tokens = DecisionTokens.of(tokenizer)
    assert [tokenizer.piece(labels[i]) for i in decision_positions(labels, tokens)] == words


def test_a_tokenizer_that_splits_the_harm_word_is_refused() -> None:
    class Splitting(WordTokenizer):
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [self.vocab.setdefault(c, len(self.vocab)) for c in text]

    with pytest.raises(ValueError, match="harmful"):
        DecisionTokens.of(Splitting())


def test_weight_one_is_plain_cross_entropy_and_a_weight_counts_the_decisions_more() -> None:
    torch = pytest.importorskip("torch")
    tokenizer = WordTokenizer()
    labels = labelled(tokenizer, BOMB)
    tokens = DecisionTokens.of(tokenizer)
    vocab = len(tokenizer.vocab)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, len(labels), vocab, generator=generator)
    label_tensor = torch.tensor([labels])

    class Outputs:
        def __init__(self, values: object) -> None:
            self.logits = values

    plain = torch.nn.functional.cross_entropy(
        logits[0, :-1], label_tensor[0, 1:], ignore_index=IGNORED
    )
    same = decision_weighted_loss(tokens, 1.0)(Outputs(logits), label_tensor)
    assert torch.allclose(same, plain)
    # Make every decision token certain: a higher weight then lowers the loss, as their share grows.
    sharp = logits.clone()
    for position in decision_positions(labels, tokens):
        sharp[0, position - 1, labels[position]] = 50.0
    light = decision_weighted_loss(tokens, 1.0)(Outputs(sharp), label_tensor)
    heavy = decision_weighted_loss(tokens, 10.0)(Outputs(sharp), label_tensor)
    assert heavy < light
