"""RSafe's rule-based reward (pure functions, no ML imports).

- format reward: 1.0 when the WHOLE completion matches `<think>.*</think>.*\\boxed{.*}.*`
  (dot matches newline), else 0.0;
- accuracy reward: 1.0 when the format is right AND the content of the LAST `\\boxed{…}` (braces
  matched by depth, `rsafe_core.verdict.last_boxed`) equals the gold label,
  case-insensitively and after stripping whitespace; else 0.0;
- reward = 0.9 * accuracy + 0.1 * format: 1.0 correct and well formed, 0.1 well formed but wrong,
  0.0 malformed.

The TRL adapters (`format_reward_func`, `accuracy_reward_func`, `rsafe_reward_func`) take the
`completions` TRL passes (plain strings, or chat messages for conversational data sets) and the
data set's `label` column, and return one float per completion. The GRPO stage registers the first
two with weights 0.1 and 0.9, so TRL logs each part and their weighted sum.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rsafe_core.verdict import last_boxed

FORMAT_PATTERN = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)
ACCURACY_WEIGHT = 0.9
FORMAT_WEIGHT = 0.1
LABELS = ("safe", "unsafe")


@dataclass(frozen=True, slots=True)
class RewardBreakdown:
    format: float
    accuracy: float

    @property
    def total(self) -> float:
        return ACCURACY_WEIGHT * self.accuracy + FORMAT_WEIGHT * self.format


def format_reward(completion: str) -> float:
    return 1.0 if FORMAT_PATTERN.fullmatch(completion) else 0.0


def boxed_answer(completion: str) -> str | None:
    """Content of the last `\\boxed{…}` (depth-matched); None if absent or the last is open."""
    found = last_boxed(completion)
    return None if found is None else found[0]


def accuracy_reward(completion: str, label: str) -> float:
    if not format_reward(completion):
        return 0.0
    answer = boxed_answer(completion)
    if answer is None:
        return 0.0
    return 1.0 if answer.strip().lower() == label.strip().lower() else 0.0


def score(completion: str, label: str) -> RewardBreakdown:
    return RewardBreakdown(format_reward(completion), accuracy_reward(completion, label))


def rsafe_reward(completion: str, label: str) -> float:
    """0.9 * accuracy + 0.1 * format."""
    return score(completion, label).total


# --- TRL adapters -------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """TRL passes a string (standard data sets) or a list of messages (conversational ones)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return "".join(str(message.get("content") or "") for message in completion)
    raise TypeError(f"unsupported completion type: {type(completion).__name__}")


def _labels(label: Sequence[str] | None, count: int) -> Sequence[str]:
    if label is None:
        raise ValueError("the data set needs a 'label' column ('safe' / 'unsafe') for the reward")
    if len(label) != count:
        raise ValueError(f"{count} completions but {len(label)} labels")
    return label


def format_reward_func(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    return [format_reward(completion_text(c)) for c in completions]


def accuracy_reward_func(
    completions: Sequence[Any], label: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    labels = _labels(label, len(completions))
    return [
        accuracy_reward(completion_text(c), gold)
        for c, gold in zip(completions, labels, strict=True)
    ]


def rsafe_reward_func(
    completions: Sequence[Any], label: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """The combined reward as one TRL reward function (0.9 * accuracy + 0.1 * format)."""
    labels = _labels(label, len(completions))
    return [
        rsafe_reward(completion_text(c), gold) for c, gold in zip(completions, labels, strict=True)
    ]
