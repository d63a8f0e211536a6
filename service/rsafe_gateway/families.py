"""The served model family: its guard format, built from the settings, and what it lets a
request ask for, checked before any model call (400s):

- A family with a fixed taxonomy (qwen3guard) judges by its own policy only: an inline policy,
  or a named policy other than the family's own, is refused, naming the one it serves.
- A reasoning effort applies to families that reason with one (gpt-oss-safeguard).
"""

from __future__ import annotations

from rsafe_core.formats import FormatOptions, GuardFormat, ReasoningEffort, guard_format
from rsafe_core.policy import INLINE_POLICY_ID, Policy
from rsafe_core.verdict import Verdict

from .errors import InvalidRequest
from .protocol import ModerationRequest
from .settings import Settings


def format_for(settings: Settings) -> GuardFormat:
    """The guard format of RSAFE_MODEL_FAMILY, with the family settings that apply to it."""
    options = FormatOptions(
        reasoning_effort=ReasoningEffort(settings.reasoning_effort),
        controversial=Verdict(settings.controversial_verdict),
    )
    return guard_format(settings.model_family, options)


def check_family_request(guard: GuardFormat, request: ModerationRequest, policy: Policy) -> None:
    """InvalidRequest when `request` asks `guard`'s family for something it cannot do."""
    fixed = guard.fixed_policy_id
    if fixed is not None and policy.id != fixed:
        if policy.id == INLINE_POLICY_ID:
            raise InvalidRequest(
                f"model family {guard.family!r} has a fixed taxonomy and cannot follow a "
                f"custom policy; leave out 'policy' (or use policy_id {fixed!r})",
                param="policy",
            )
        raise InvalidRequest(
            f"model family {guard.family!r} has a fixed taxonomy: policy_id must be "
            f"{fixed!r}, not {policy.id!r}",
            param="policy_id",
        )
    if request.reasoning_effort is not None and not guard.reasoning_efforts:
        raise InvalidRequest(
            f"'reasoning_effort' applies to the gpt-oss-safeguard family only; this gateway "
            f"serves {guard.family!r}",
            param="reasoning_effort",
        )
