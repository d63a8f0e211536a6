"""Training prompts, built with the gateway's own prompt builder.

A checkpoint answers best when prompted exactly as it was trained, so every training prompt is
`rsafe_core.prompt.render_messages` output — the same single user message the gateway sends to
vLLM — never a copy of its wording. The policy text is the body of a policy file: the default policy
(policies/rsafe-default.md) or, per source, another file of policies/.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rsafe_core.policy import Policy, inline_policy, load_policy_file
from rsafe_core.prompt import render_messages
from rsafe_core.turns import Role, Target, Turn

from rsafe_train.data import Example

REPO_ROOT = Path(__file__).resolve().parents[3]
POLICIES_DIR = REPO_ROOT / "policies"
DEFAULT_POLICY_FILE = POLICIES_DIR / "rsafe-default.md"


def turns_for(example: Example) -> tuple[list[Turn], Target]:
    turns = [Turn(Role.USER, example.prompt)]
    if example.response is None:
        return turns, Target.PROMPT
    turns.append(Turn(Role.ASSISTANT, example.response))
    return turns, Target.RESPONSE


def build_messages(example: Example, policy: Policy) -> list[dict[str, str]]:
    """As the gateway renders it: a policy with categories gets the `Categories:` request
    (the gateway's default `elicit_categories`)."""
    turns, target = turns_for(example)
    return render_messages(turns, policy.body, target, ask_categories=bool(policy.category_ids))


@lru_cache(maxsize=4096)
def _inline(text: str) -> Policy:
    return inline_policy(text)


@dataclass
class PolicyResolver:
    """Which policy each example is judged under: per source, else the default."""

    default: Policy
    by_source: Mapping[str, Policy] = field(default_factory=dict)

    @classmethod
    def from_files(
        cls, default: Path = DEFAULT_POLICY_FILE, by_source: Mapping[str, Path] | None = None
    ) -> PolicyResolver:
        return cls(
            default=load_policy_file(default),
            by_source={
                source: load_policy_file(path) for source, path in (by_source or {}).items()
            },
        )

    def policy_for(self, example: Example) -> Policy:
        """The item's own policy text (a swap view, read as the gateway reads an inline policy),
        else its source's, else the default."""
        if example.policy is not None:
            return _inline(example.policy)
        return self.by_source.get(example.source, self.default)

    def messages(self, example: Example) -> list[dict[str, str]]:
        return build_messages(example, self.policy_for(example))


def resolve_policy_path(value: str | Path) -> Path:
    """A policy file (as given, or relative to the repository), or an id: policies/<id>.md."""
    for candidate in (Path(value), REPO_ROOT / value, POLICIES_DIR / f"{value}.md"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"policy {value!r}: neither a file nor policies/{value}.md")
