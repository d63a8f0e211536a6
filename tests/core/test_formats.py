import pytest
from rsafe_core.formats import FORMATS, ModelOutput, RSafeFormat, guard_format
from rsafe_core.policy import inline_policy
from rsafe_core.prompt import TEMPLATE_VERSION, render_messages
from rsafe_core.turns import Role, Target, Turn
from rsafe_core.verdict import Verdict

POLICY = inline_policy("S1 - Violence: threats.\nS2 - Fraud: scams.")


def test_the_rsafe_family_is_the_default_format() -> None:
    rsafe = guard_format("rsafe")
    assert isinstance(rsafe, RSafeFormat)
    assert rsafe.family == "rsafe"
    assert rsafe.template_version == TEMPLATE_VERSION
    assert set(FORMATS) >= {"rsafe"}


def test_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: gpt-oss-safeguard, qwen3guard, rsafe"):
        guard_format("llama-guard-9")


def test_rsafe_renders_the_trained_prompt() -> None:
    turns = [Turn(Role.USER, "hello")]
    rendered = guard_format("rsafe").render(turns, POLICY, Target.PROMPT, ask_categories=True)
    assert rendered == render_messages(turns, POLICY.body, Target.PROMPT, ask_categories=True)


def test_rsafe_parses_verdict_categories_and_reasoning() -> None:
    rsafe = guard_format("rsafe")
    text = "<think>a threat</think>\n\\boxed{unsafe}\nCategories: S1, S9"
    answer = rsafe.parse(ModelOutput(text), frozenset({"S1", "S2"}))
    assert (answer.verdict, answer.categories, answer.reasoning) == (
        Verdict.UNSAFE,
        ["S1"],
        "a threat",
    )
    unreadable = rsafe.parse(ModelOutput("no box here"), frozenset())
    assert unreadable.verdict is Verdict.UNDETERMINED


def test_rsafe_constraint_is_the_answer_regex() -> None:
    constraint = guard_format("rsafe").constraint(10, ())
    assert constraint == {"regex": r"<think>[^<>]{1,10}</think>[ \n]{0,2}\\boxed\{(safe|unsafe)\}"}
