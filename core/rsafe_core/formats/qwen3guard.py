"""Qwen3Guard-Gen: plain chat messages, the model's own template, a three-tier answer.

Rendering: the judged turns as they are (`[user]` for a prompt check, ending with the assistant's
reply for a response check); the served model's chat template wraps them in its fixed guard
instruction, so there is no policy text to send. Each turn is neutralised first: the template
writes turns as `USER: …` / `ASSISTANT: …` lines between `<BEGIN CONVERSATION>` and
`<END CONVERSATION>`, so a content must not be able to write those, a chat-template token, or a
line that starts like the model's own answer (`Safety:`, `Categories:`, `Refusal:`).

Answer (the model card's format):
    Safety: Safe | Unsafe | Controversial
    Categories: <names, comma-separated> | None
    Refusal: Yes | No            (response checks only)
`Controversial` (harmful in some contexts) becomes the configured verdict: unsafe (strict, the
default) or safe (loose). Category names map to the ids of the shipped `qwen3guard` policy. The
raw answer lines are returned as the reasoning (the model writes no other), so a response check's
Refusal line reaches the caller. Only the model's completion is read, never the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..neutralise import neutralise, neutralise_labels
from ..policy import Policy
from ..turns import Role, Target, Turn
from ..verdict import Verdict
from .base import FormatOptions, GuardAnswer, ModelOutput, ReasoningEffort

POLICY_ID = "qwen3guard"
TEMPLATE_VERSION = "qwen3guard-gen-v1"
# The model's fixed taxonomy: its names (as it writes them) -> the shipped policy's ids.
CATEGORY_IDS: dict[str, str] = {
    "Violent": "VIOLENT",
    "Non-violent Illegal Acts": "ILLEGAL",
    "Sexual Content or Sexual Acts": "SEXUAL",
    "PII": "PII",
    "Suicide & Self-Harm": "SELF_HARM",
    "Unethical Acts": "UNETHICAL",
    "Politically Sensitive Topics": "POLITICAL",
    "Copyright Violation": "COPYRIGHT",
    "Jailbreak": "JAILBREAK",
}
ANSWER_LABELS = ("safety", "categories", "refusal")
_BY_NAME = {name.lower(): category_id for name, category_id in CATEGORY_IDS.items()}
_SAFETY = re.compile(r"safety\s*:\s*(safe|unsafe|controversial)\b", re.IGNORECASE)
_CATEGORIES = re.compile(r"^[ \t]*categories\s*:([^\n]*)", re.IGNORECASE | re.MULTILINE)
_TIERS = {"safe": Verdict.SAFE, "unsafe": Verdict.UNSAFE}


class Qwen3GuardFormat:
    family = "qwen3guard"
    template_version = TEMPLATE_VERSION
    fixed_policy_id = POLICY_ID
    reasoning_efforts = False

    def __init__(self, options: FormatOptions | None = None) -> None:
        self._controversial = (options or FormatOptions()).controversial
        if self._controversial is Verdict.UNDETERMINED:
            raise ValueError("Controversial maps to safe or unsafe, not undetermined")

    @property
    def key_ingredients(self) -> tuple[str, ...]:
        # The same answer is another verdict under the other Controversial mapping.
        return (self.family, f"controversial={self._controversial.value}")

    def request_fields(self, reasoning_effort: ReasoningEffort | None) -> dict[str, Any]:
        return {}

    def render(
        self, turns: Sequence[Turn], policy: Policy, target: Target, *, ask_categories: bool
    ) -> list[dict[str, str]]:
        # The policy is the model's own (fixed_policy_id): its template carries the taxonomy.
        del policy, target, ask_categories  # the template asks for categories (and refusal) itself
        return [
            {"role": turn.role.value, "content": neutralise_labels(neutralise(turn.content))}
            for turn in turns
            if turn.role in (Role.USER, Role.ASSISTANT)
        ]

    def constraint(
        self, reasoning_max_chars: int, category_ids: tuple[str, ...]
    ) -> dict[str, Any] | None:
        # The card's answer lines; one category or more (the model names one in practice).
        names = "|".join(re.escape(name) for name in sorted(CATEGORY_IDS, key=len, reverse=True))
        categories = f"(None|({names})(, ({names})){{0,{len(CATEGORY_IDS) - 1}}})"
        return {
            "regex": rf"Safety: (Safe|Unsafe|Controversial)\nCategories: {categories}"
            r"(\nRefusal: (Yes|No))?"
        }

    def parse(self, output: ModelOutput, category_ids: frozenset[str]) -> GuardAnswer:
        text = output.text.strip()
        safety = _SAFETY.search(text)
        if safety is None:
            return GuardAnswer(Verdict.UNDETERMINED, [], text or None)
        tier = safety.group(1).lower()
        verdict = _TIERS.get(tier, self._controversial)
        categories: list[str] = []
        listed = _CATEGORIES.search(text, safety.end())
        if verdict is Verdict.UNSAFE and listed is not None:
            for name in listed.group(1).split(","):
                category = _BY_NAME.get(name.strip().rstrip(".").strip().lower())
                if category is not None and category in category_ids and category not in categories:
                    categories.append(category)
        return GuardAnswer(verdict, categories, text)
