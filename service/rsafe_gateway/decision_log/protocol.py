"""Wire schemas of /v1/decisions (pydantic models only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictStr
from rsafe_core.turns import Target
from rsafe_core.verdict import Verdict

from ..protocol import Message, StrictModel


class DecisionView(BaseModel):
    """One logged decision (or appeal), as stored."""

    id: str = Field(description="the request id the decision was answered under")
    created_at: datetime
    kind: Literal["decision", "appeal"]
    appeal_of: str | None = Field(description="for an appeal: the original decision's id")
    tenant: str
    key_id: str | None
    route: str
    target: Target
    policy_id: str
    policy_version: str
    policy_sha256: str
    model: str
    model_family: str | None
    template_version: str
    verdict: Verdict
    flagged: bool
    categories: list[str]
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cached: bool
    fail_mode: str | None
    failure: str | None
    content_sha256: str = Field(description="SHA-256 of the moderated input (canonical JSON)")
    content: Any = Field(
        default=None, description="the moderated input, only with RSAFE_DECISION_LOG_STORE_CONTENT"
    )


class ReviewView(BaseModel):
    decision_id: str
    created_at: datetime
    reviewer_key_id: str | None
    outcome: Literal["upheld", "overturned"]
    verdict: Verdict | None
    note: str | None


class DecisionDetail(BaseModel):
    decision: DecisionView
    appeals: list[DecisionView] = Field(description="re-judgements of this decision, oldest first")
    reviews: list[ReviewView] = Field(description="human reviews of this decision, oldest first")


class DecisionPage(BaseModel):
    decisions: list[DecisionView] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class AppealRequest(StrictModel):
    input: StrictStr | list[Message] | None = Field(
        default=None,
        description="the moderated input again (checked against the stored SHA-256); may be "
        "omitted when the gateway stores content",
    )
    policy: StrictStr | None = Field(
        default=None, description="the caller's own policy text, when the original used one"
    )


class AppealResponse(BaseModel):
    appeal: DecisionView
    original_id: str
    overturned: bool = Field(description="the appeal's `flagged` differs from the original's")


class ReviewRequest(StrictModel):
    outcome: Literal["upheld", "overturned"]
    verdict: Verdict | None = Field(default=None, description="the verdict the reviewer found")
    note: StrictStr | None = Field(default=None, max_length=4000)
