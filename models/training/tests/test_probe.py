from __future__ import annotations

import math

import pytest
from rsafe_train.data import Example
from rsafe_train.probe import Scored, accuracy_above, answer_prefix, report, roc_auc
from rsafe_train.prompts import PolicyResolver
from rsafe_train.reasoning import TemplateReasoning

RESOLVER = PolicyResolver.from_files()


def scored(*pairs: tuple[float, str]) -> list[Scored]:
    return [Scored(score, label) for score, label in pairs]


def test_a_perfect_ranking_with_the_threshold_in_the_wrong_place() -> None:
    # Every harmful item above every harmless one, but all below 0: greedy calls all harmless.
    items = scored((-1.0, "unsafe"), (-0.5, "unsafe"), (-3.0, "safe"), (-2.5, "safe"))
    result = report(items)
    assert result.auc == 1.0
    assert result.accuracy_at_zero == 0.5
    assert result.best_accuracy == 1.0
    assert -2.5 <= result.best_threshold < -1.0
    assert result.mean_harmful == -0.75 and result.mean_harmless == -2.75


def test_auc_counts_ties_half_and_a_reversed_ranking_zero() -> None:
    assert roc_auc(scored((1.0, "unsafe"), (1.0, "safe"))) == 0.5
    assert roc_auc(scored((0.0, "unsafe"), (2.0, "safe"))) == 0.0


def test_one_label_files_report_accuracy_without_an_auc() -> None:
    # A file of harmful requests only: how many sit on the harmful side is still the question.
    result = report(scored((1.0, "unsafe"), (-2.0, "unsafe"), (3.0, "unsafe")))
    assert math.isnan(result.auc) and math.isnan(result.mean_harmless)
    assert result.accuracy_at_zero == 2 / 3
    assert result.mean_harmful == 2 / 3


def test_calling_everything_harmful_is_a_candidate_threshold() -> None:
    # The lowest harmful item is below the only harmless one: flagging all is the best split.
    items = scored((-5.0, "unsafe"), (-4.0, "unsafe"), (-3.0, "unsafe"), (-3.5, "safe"))
    result = report(items)
    assert result.best_threshold < -5.0
    assert result.best_accuracy == accuracy_above(items, -99.0) == 0.75


@pytest.mark.parametrize(("label", "word"), [("unsafe", " harmful"), ("safe", " harmless")])
def test_the_prefix_ends_where_the_template_writes_the_decision_word(label: str, word: str) -> None:
    example = Example('Say "hi" to my neighbour, a long message ' * 5, label, "s")
    completion = TemplateReasoning(quote_chars=80, harm_first=True).completion(
        example, RESOLVER.messages(example), RESOLVER.policy_for(example)
    )
    assert completion.startswith(answer_prefix(example.prompt) + word + ":")
