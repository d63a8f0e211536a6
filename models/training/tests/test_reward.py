from __future__ import annotations

import pytest
from rsafe_train.reward import (
    accuracy_reward,
    accuracy_reward_func,
    format_reward,
    format_reward_func,
    rsafe_reward,
    rsafe_reward_func,
    score,
)

# (completion, gold label, format, accuracy, total)
TABLE = [
    ("<think>asks for bread</think>\n\\boxed{safe}", "safe", 1.0, 1.0, 1.0),
    ("<think>weapons</think>\\boxed{unsafe}", "unsafe", 1.0, 1.0, 1.0),
    # well formed but wrong
    ("<think>fine</think>\n\\boxed{safe}", "unsafe", 1.0, 0.0, 0.1),
    ("<think>x</think>\\boxed{maybe}", "safe", 1.0, 0.0, 0.1),
    # malformed: no think block, unclosed think, no boxed, boxed before think
    ("\\boxed{safe}", "safe", 0.0, 0.0, 0.0),
    ("<think>no end \\boxed{safe}", "safe", 0.0, 0.0, 0.0),
    ("<think>reasoning</think> the answer is safe", "safe", 0.0, 0.0, 0.0),
    ("\\boxed{safe}<think>late</think>", "safe", 0.0, 0.0, 0.0),
    ("", "safe", 0.0, 0.0, 0.0),
    # nested braces: matched by depth, so the content is "\\text{safe}" — not the bare label
    ("<think>t</think>\\boxed{\\text{safe}}", "safe", 1.0, 0.0, 0.1),
    ("<think>t</think>\\boxed{{unsafe}}", "unsafe", 1.0, 0.0, 0.1),
    # several boxed: the LAST one counts
    ("<think>t</think>\\boxed{safe} no wait \\boxed{unsafe}", "unsafe", 1.0, 1.0, 1.0),
    ("<think>t</think>\\boxed{unsafe} no wait \\boxed{safe}", "unsafe", 1.0, 0.0, 0.1),
    # a last boxed left unclosed: no answer (an earlier complete one does not count)
    ("<think>t</think>\\boxed{safe} then \\boxed{uns", "safe", 1.0, 0.0, 0.1),
    # case and whitespace
    ("<think>t</think>\\boxed{ UNSAFE }", "unsafe", 1.0, 1.0, 1.0),
    ("<think>t</think>\\boxed{Safe}", " SAFE ", 1.0, 1.0, 1.0),
    ("<think>t</think>\\boxed{\nsafe\n}", "safe", 1.0, 1.0, 1.0),
    # the pattern must match the WHOLE output; DOTALL lets it span lines and trailing text
    ("<think>line one\nline two</think>\n\nso:\n\\boxed{safe}\n(done)", "safe", 1.0, 1.0, 1.0),
    # ... and it must START with the think block: text before it is malformed
    ("preamble <think>t</think>\\boxed{safe}", "safe", 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("completion", "label", "fmt", "acc", "total"), TABLE)
def test_reward_table(completion: str, label: str, fmt: float, acc: float, total: float) -> None:
    assert format_reward(completion) == fmt
    assert accuracy_reward(completion, label) == acc
    assert rsafe_reward(completion, label) == pytest.approx(total)
    assert score(completion, label).total == pytest.approx(total)


def test_trl_adapters_accept_strings_and_chat_messages() -> None:
    plain = ["<think>a</think>\\boxed{safe}", "\\boxed{safe}", "<think>a</think>\\boxed{safe}"]
    chat = [[{"role": "assistant", "content": text}] for text in plain]
    labels = ["safe", "safe", "unsafe"]
    for completions in (plain, chat):
        assert format_reward_func(completions, label=labels) == [1.0, 0.0, 1.0]
        assert accuracy_reward_func(completions, label=labels) == [1.0, 0.0, 0.0]
        assert rsafe_reward_func(completions, label=labels) == pytest.approx([1.0, 0.0, 0.1])
    # TRL passes the prompts and other columns as keyword arguments too.
    assert accuracy_reward_func(plain, prompts=["p"] * 3, label=labels, trainer_state=None) == [
        1.0,
        0.0,
        0.0,
    ]


def test_trl_adapters_need_labels() -> None:
    with pytest.raises(ValueError, match="label"):
        accuracy_reward_func(["x"])
    with pytest.raises(ValueError, match="labels"):
        accuracy_reward_func(["x", "y"], label=["safe"])
