"""The seam for guard model families: how a family is prompted, constrained and read.

A guard format turns (turns, policy, target) into chat messages, names the decoding constraint
that keeps the model's answer readable, and turns the model's output back into a verdict,
categories and reasoning. The service depends only on this protocol; adding a model family is
one module implementing it, registered in `formats/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..policy import Policy
from ..turns import Target, Turn
from ..verdict import Verdict


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """What the model server returned: the answer text and, for families whose server splits
    it out (a reasoning parser), the reasoning text."""

    text: str
    reasoning: str | None = None


@dataclass(frozen=True, slots=True)
class GuardAnswer:
    verdict: Verdict  # UNDETERMINED when the output could not be read
    categories: list[str]
    reasoning: str | None


class GuardFormat(Protocol):
    @property
    def family(self) -> str:
        """The model family's name (`RSAFE_MODEL_FAMILY`)."""
        ...

    @property
    def template_version(self) -> str:
        """Bumped whenever rendering changes: part of every cache key."""
        ...

    def render(
        self, turns: Sequence[Turn], policy: Policy, target: Target, *, ask_categories: bool
    ) -> list[dict[str, str]]:
        """The chat messages for `/v1/chat/completions`."""
        ...

    def constraint(
        self, reasoning_max_chars: int, category_ids: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """vLLM's `structured_outputs` object for the answer; None: not constrainable."""
        ...

    def parse(self, output: ModelOutput, category_ids: frozenset[str]) -> GuardAnswer:
        """The verdict, categories (drawn from `category_ids` only) and reasoning in `output`."""
        ...
