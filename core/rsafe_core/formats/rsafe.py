"""RSafe's own format: one user message (policy + conversation), `<think>` then `\\boxed{}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..policy import Policy
from ..prompt import TEMPLATE_VERSION, answer_regex, render_messages
from ..turns import Target, Turn
from ..verdict import Verdict, parse_answer, parse_categories
from .base import FormatOptions, GuardAnswer, ModelOutput, ReasoningEffort


class RSafeFormat:
    family = "rsafe"
    template_version = TEMPLATE_VERSION
    key_ingredients: tuple[str, ...] = ()  # the keys of before the families, unchanged
    fixed_policy_id = None
    reasoning_efforts = False

    def __init__(self, options: FormatOptions | None = None) -> None:
        del options  # nothing to configure: the trained format is fixed

    def request_fields(self, reasoning_effort: ReasoningEffort | None) -> dict[str, Any]:
        return {}

    def render(
        self, turns: Sequence[Turn], policy: Policy, target: Target, *, ask_categories: bool
    ) -> list[dict[str, str]]:
        return render_messages(list(turns), policy.body, target, ask_categories=ask_categories)

    def constraint(
        self, reasoning_max_chars: int, category_ids: tuple[str, ...]
    ) -> dict[str, Any] | None:
        return {"regex": answer_regex(reasoning_max_chars, category_ids)}

    def parse(self, output: ModelOutput, category_ids: frozenset[str]) -> GuardAnswer:
        # Only the model's own completion is read, never the prompt: content cannot forge it.
        answer = parse_answer(output.text)
        categories: list[str] = []
        if answer.verdict is Verdict.UNSAFE and category_ids:
            categories = parse_categories(answer.tail, category_ids)
        return GuardAnswer(answer.verdict, categories, answer.reasoning)
