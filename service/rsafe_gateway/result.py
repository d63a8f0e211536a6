"""What the moderation service answers: one decision, shaped as `protocol.ModerationResponse`.

Plain frozen dataclasses rather than the pydantic wire model: every field is produced by the
service itself (nothing to validate), and orjson serialises dataclasses natively. Building and
dumping the pydantic model per request cost several times more, a visible share of a cache hit
(scripts/profile_gateway.py). `protocol.ModerationResponse` stays the documented contract; a test
checks that these serialise to exactly what it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsafe_core.verdict import Verdict


@dataclass(frozen=True, slots=True)
class PolicyUsed:
    id: str
    version: str
    sha256: str


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ModerationResult:
    id: str
    verdict: Verdict
    flagged: bool
    categories: list[str]
    reasoning: str | None
    policy: PolicyUsed
    model: str
    cached: bool
    usage: TokenUsage
    latency_ms: float
    fail_mode: str | None = None
    # Kinds of invisible content the judged text carried (`neutralise.HiddenKind`), sorted.
    hidden_content: tuple[str, ...] = ()
    # Provenance: the guard format the answer was read with (RSAFE_MODEL_FAMILY) and its version.
    model_family: str = "rsafe"
    template_version: str = ""
