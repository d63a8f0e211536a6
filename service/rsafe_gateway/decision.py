"""What the model decided about one request, and its cache form (what the cache stores, never
the moderated text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsafe_core.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    categories: list[str]
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int
    # Why the verdict is undetermined (unparseable, timeout, unavailable, 5xx); never cached.
    failure: str | None = None

    def to_cache(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "categories": self.categories,
            "reasoning": self.reasoning,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @classmethod
    def from_cache(cls, value: dict[str, Any]) -> Decision | None:
        """The cached decision, or None when the entry is not one (an old or foreign value)."""
        try:
            return cls(
                verdict=Verdict(value["verdict"]),
                categories=[str(item) for item in value["categories"]],
                reasoning=value["reasoning"],
                prompt_tokens=int(value["prompt_tokens"]),
                completion_tokens=int(value["completion_tokens"]),
            )
        except (KeyError, ValueError, TypeError):
            return None
