"""The seam for guard model families: how a family is prompted, constrained and read.

A guard format turns (turns, policy, target) into chat messages, names the decoding constraint
that keeps the model's answer readable, and turns the model's output back into a verdict,
categories and reasoning. The service depends only on this protocol; adding a model family is
one module implementing it, registered in `formats/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
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


class ReasoningEffort(StrEnum):
    """How long a reasoning family thinks (gpt-oss-safeguard: `Reasoning: low|medium|high`)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """Operator settings a family reads (each family uses the ones that apply to it)."""

    # gpt-oss-safeguard: the effort when a request names none.
    reasoning_effort: ReasoningEffort = ReasoningEffort.MEDIUM
    # qwen3guard: what its `Controversial` tier means (strict: unsafe; loose: safe).
    controversial: Verdict = Verdict.UNSAFE


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

    @property
    def key_ingredients(self) -> tuple[str, ...]:
        """What else, besides the template version, makes this family's answer (the family, how
        an answer maps to a verdict): part of the cache key. Empty for rsafe, whose keys predate
        the families and stay as they were."""
        ...

    @property
    def fixed_policy_id(self) -> str | None:
        """A family with a fixed taxonomy serves only this named policy (None: any policy)."""
        ...

    @property
    def reasoning_efforts(self) -> bool:
        """Whether requests may choose a reasoning effort."""
        ...

    def request_fields(self, reasoning_effort: ReasoningEffort | None) -> dict[str, Any]:
        """Extra `/v1/chat/completions` body fields (e.g. vLLM's `reasoning_effort`); they are
        part of the decoding parameters, so of the cache key. `None`: the configured default."""
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
