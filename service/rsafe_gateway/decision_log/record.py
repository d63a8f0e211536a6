"""One decision as the log stores it, built from the moderation flow's own values (no I/O here)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from rsafe_core.formats import GuardFormat
from rsafe_core.turns import Target

from ..protocol import Message, ModerationRequest
from ..result import ModerationResult
from ..tenants import ANONYMOUS, Principal

KIND_DECISION = "decision"
KIND_APPEAL = "appeal"


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What the route knows about a decision that the moderation flow does not."""

    principal: Principal
    route: str
    appeal_of: str | None = None  # the original decision's id, for an appeal


INTERNAL_CONTEXT = DecisionContext(ANONYMOUS, "internal")


def content_input(value: str | list[Message]) -> str | list[dict[str, str]]:
    """The moderated input as plain JSON values."""
    if isinstance(value, str):
        return value
    return [{"role": message.role.value, "content": message.content} for message in value]


def content_sha256(value: str | list[Message]) -> str:
    """SHA-256 of the moderated input in one canonical JSON form (what the log keeps by default).

    An appeal that re-sends the content is checked against it, so it cannot swap the content.
    """
    return hashlib.sha256(orjson.dumps(content_input(value))).hexdigest()


@dataclass(slots=True)  # not frozen: a frozen __init__ is slower, per decision
class DecisionRecord:
    id: str  # the request id (X-Request-ID); a batch item's is `<batch id>-<index>`
    created_at: datetime
    kind: str
    appeal_of: str | None
    tenant: str
    key_id: str | None
    route: str
    target: str
    policy_id: str
    policy_version: str
    policy_sha256: str
    model: str
    model_family: str | None  # the guard format's family (RSAFE_MODEL_FAMILY); NULL: never now
    template_version: str  # that format's prompt template version
    verdict: str
    flagged: bool
    categories: list[str]
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cached: bool
    fail_mode: str | None
    failure: str | None
    content_sha256: str
    content: Any  # the input as JSON (str or list of messages), only with content retention on


# The table's columns in the order the writer sends them (DecisionRecord's field order).
COLUMNS: tuple[str, ...] = DecisionRecord.__slots__


def now() -> datetime:
    return datetime.now(UTC)


def build_record(
    request: ModerationRequest,
    result: ModerationResult,
    target: Target,
    reasoning: str | None,
    failure: str | None,
    context: DecisionContext,
    store_content: bool,
    guard: GuardFormat,
) -> DecisionRecord:
    """The row for one answered decision (the full reasoning, even if the caller declined it);
    `guard` is the format that judged it (its family and template version are recorded)."""
    return DecisionRecord(
        id=result.id,
        created_at=now(),
        kind=KIND_DECISION if context.appeal_of is None else KIND_APPEAL,
        appeal_of=context.appeal_of,
        tenant=context.principal.tenant,
        key_id=context.principal.key_id,
        route=context.route,
        target=target.value,
        policy_id=result.policy.id,
        policy_version=result.policy.version,
        policy_sha256=result.policy.sha256,
        model=result.model,
        model_family=guard.family,
        template_version=guard.template_version,
        verdict=result.verdict.value,
        flagged=result.flagged,
        categories=result.categories,
        reasoning=reasoning,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        latency_ms=result.latency_ms,
        cached=result.cached,
        fail_mode=result.fail_mode,
        failure=failure,
        content_sha256=content_sha256(request.input),
        content=content_input(request.input) if store_content else None,
    )


class DecisionSink(Protocol):
    """Where the moderation flow hands each decision (the writer)."""

    def submit(
        self,
        request: ModerationRequest,
        result: ModerationResult,
        target: Target,
        reasoning: str | None,
        failure: str | None,
        context: DecisionContext,
    ) -> Awaitable[None] | None:
        """None once enqueued; an awaitable that ends when the row is written (required mode)."""
