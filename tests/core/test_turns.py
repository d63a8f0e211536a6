import pytest
from rsafe_core.errors import InvalidInput
from rsafe_core.turns import InputLimits, Role, Target, Turn, resolve_turns

LIMITS = InputLimits(max_text_chars=100, max_messages=4)


def msgs(*pairs: tuple[str, str]) -> list[Turn]:
    return [Turn(Role(role), content) for role, content in pairs]


def test_string_is_a_prompt_check() -> None:
    turns, target = resolve_turns("hello", None, LIMITS)
    assert target is Target.PROMPT
    assert [(t.role, t.content) for t in turns] == [(Role.USER, "hello")]


def test_default_target_follows_the_last_message() -> None:
    _, target = resolve_turns(msgs(("user", "q"), ("assistant", "a")), None, LIMITS)
    assert target is Target.RESPONSE
    _, target = resolve_turns(msgs(("assistant", "hi"), ("user", "q")), None, LIMITS)
    assert target is Target.PROMPT


def test_prompt_check_of_a_conversation_stops_at_the_last_user_turn() -> None:
    turns, target = resolve_turns(
        msgs(("system", "s"), ("user", "q1"), ("assistant", "a1"), ("user", "q2")),
        Target.PROMPT,
        LIMITS,
    )
    assert target is Target.PROMPT
    assert [t.content for t in turns] == ["q1", "a1", "q2"]
    turns, _ = resolve_turns(msgs(("user", "q"), ("assistant", "a")), Target.PROMPT, LIMITS)
    assert [t.content for t in turns] == ["q"]


@pytest.mark.parametrize(
    ("data", "target", "param"),
    [
        ("", None, "input"),
        ("   \n", None, "input"),
        ("x" * 101, None, "input"),
        ("nul\x00byte", None, "input"),
        ("hello", Target.RESPONSE, "target"),
        ([], None, "input"),
        ([("user", "q")] * 5, None, "input"),
        ([("user", "")], None, "input[0].content"),
        ([("user", "q"), ("assistant", " ")], None, "input[1].content"),
        ([("assistant", "a")], None, "input"),
        ([("system", "s")], None, "input"),
        ([("user", "q")], Target.RESPONSE, "target"),
        ([("user", "x" * 60), ("assistant", "y" * 60)], None, "input"),
    ],
)
def test_invalid_inputs_name_the_field(
    data: str | list[tuple[str, str]], target: Target | None, param: str
) -> None:
    value = data if isinstance(data, str) else msgs(*data)
    with pytest.raises(InvalidInput) as caught:
        resolve_turns(value, target, LIMITS)
    assert caught.value.param == param
