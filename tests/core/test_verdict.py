import pytest
from rsafe_core.verdict import Verdict, last_boxed, parse_answer

CASES = [
    ("<think>looks harmless</think>\\boxed{safe}", Verdict.SAFE, "looks harmless"),
    ("<think>weapon request</think>\n\\boxed{unsafe}", Verdict.UNSAFE, "weapon request"),
    ("<think>x</think> \\boxed{ UNSAFE }", Verdict.UNSAFE, "x"),
    ("<think>x</think>\\boxed{\\text{safe}}", Verdict.SAFE, "x"),
    ("<think>a</think>\\boxed{safe} then \\boxed{unsafe}", Verdict.UNSAFE, "a"),
    ("<think>maybe \\boxed{unsafe}?</think>\\boxed{safe}", Verdict.SAFE, "maybe \\boxed{unsafe}?"),
    (
        "<think>only inside \\boxed{unsafe}</think> no answer",
        Verdict.UNDETERMINED,
        "only inside \\boxed{unsafe}",
    ),
    ("\\boxed{unsafe}", Verdict.UNDETERMINED, None),
    ("<think>unclosed thought \\boxed{safe}", Verdict.UNDETERMINED, None),
    ("", Verdict.UNDETERMINED, None),
    ("garbage 12345 %%%", Verdict.UNDETERMINED, None),
    ("<think>x</think>\\boxed{maybe}", Verdict.UNDETERMINED, "x"),
    ("<think>x</think>\\boxed{safe", Verdict.UNDETERMINED, "x"),
    ("<think>x</think>\\boxed{}", Verdict.UNDETERMINED, "x"),
    ("<think>x</think>\\boxed{{safe}}", Verdict.UNDETERMINED, "x"),
]


@pytest.mark.parametrize(("completion", "verdict", "reasoning"), CASES)
def test_parse_answer(completion: str, verdict: Verdict, reasoning: str | None) -> None:
    answer = parse_answer(completion)
    assert answer.verdict is verdict
    assert answer.reasoning == reasoning


def test_last_boxed_matches_nested_braces() -> None:
    assert last_boxed("\\boxed{a{b}c} and \\boxed{d{e{f}}}") == ("d{e{f}}", 33)
    assert last_boxed("no answer") is None


def test_tail_after_the_verdict_is_kept() -> None:
    assert (
        parse_answer("<think>x</think>\\boxed{unsafe}\nCategories: U1").tail == "\nCategories: U1"
    )
