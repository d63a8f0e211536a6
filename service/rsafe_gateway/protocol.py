"""Wire schemas of the gateway's HTTP API (pydantic models only; no serving logic).

The contract lives in the README ("API") and in the OpenAPI document at /openapi.json.
Limits that depend on settings (text length, number of messages, policy size) are checked by
`rsafe_core.turns` and `policy_store.py`, so the schema stays static and the errors uniform.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from rsafe_core.formats import ReasoningEffort
from rsafe_core.neutralise import HiddenKind
from rsafe_core.turns import Role, Target
from rsafe_core.verdict import Verdict


class StrictModel(BaseModel):
    """Unknown fields are refused; scalar fields use pydantic's strict types, so a wrong JSON type
    (`"cache": "no"`, `"input": 123`) is a 400 naming the field instead of being coerced."""

    model_config = ConfigDict(extra="forbid")


class Message(StrictModel):
    role: Role = Field(description="`user`, `assistant` or `system`")
    content: StrictStr = Field(description="the message text")


class ModerationRequest(StrictModel):
    input: StrictStr | list[Message] = Field(
        description="the text to judge, or a conversation (list of {role, content})",
        examples=["How do I pick a lock?"],
    )
    target: Target | None = Field(
        default=None,
        description="judge the user's turn (`prompt`) or the assistant's reply (`response`); "
        "default: `response` if the last message is the assistant's, else `prompt`",
    )
    policy: StrictStr | None = Field(
        default=None, description="a policy written by the caller, used instead of a named one"
    )
    policy_id: StrictStr | None = Field(
        default=None, description="a named policy (GET /v1/policies); default: the configured one"
    )
    reasoning: StrictBool = Field(default=True, description="return the model's reasoning text")
    cache: StrictBool = Field(default=True, description="false: neither read nor write the cache")
    reasoning_effort: ReasoningEffort | None = Field(
        default=None,
        description="gpt-oss-safeguard only: `low`, `medium` or `high` (default: "
        "RSAFE_REASONING_EFFORT); other families answer 400",
    )


class PolicyRef(BaseModel):
    id: str
    version: str
    sha256: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ModerationResponse(BaseModel):
    id: str = Field(description="unique id of this decision (also the X-Request-ID header)")
    verdict: Verdict
    flagged: bool = Field(description="the decision to act on")
    categories: list[str] = Field(description="violated category ids named by the model")
    reasoning: str | None
    policy: PolicyRef
    model: str
    cached: bool
    usage: Usage
    latency_ms: float
    fail_mode: Literal["closed", "open"] | None = Field(
        default=None,
        description="set when `flagged` was decided by the fail mode (verdict undetermined)",
    )
    hidden_content: list[HiddenKind] = Field(
        default_factory=list,
        description="kinds of invisible content in the judged text or inline policy (tag "
        "characters, variation selectors, bidi controls, other invisible characters); the guard "
        "judged them made visible (decoded or as code points), never removed",
    )
    model_family: str = Field(
        default="rsafe",
        description="the guard family the served model is prompted and read as: `rsafe`, "
        "`gpt-oss-safeguard` or `qwen3guard` (RSAFE_MODEL_FAMILY)",
    )
    template_version: str = Field(
        default="",
        description="the version of that family's prompt template (part of the cache key)",
    )


class ErrorInfo(BaseModel):
    type: str
    message: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


class CategoryInfo(BaseModel):
    id: str
    name: str
    description: str


class PolicyInfo(BaseModel):
    id: str
    version: str
    sha256: str
    title: str
    description: str
    categories: list[CategoryInfo]


class PolicyDetail(PolicyInfo):
    text: str


class PolicyList(BaseModel):
    default_policy_id: str
    policies: list[PolicyInfo]


class BatchRequest(StrictModel):
    items: list[dict[str, Any]] = Field(
        description="moderation requests (each as for POST /v1/moderate); each is validated on "
        "its own, so one bad item gives an error in its place, not a failed batch",
    )


class BatchItemError(BaseModel):
    error: ErrorInfo


class BatchResponse(BaseModel):
    results: list[ModerationResponse | BatchItemError]


class OpenAIModerationRequest(BaseModel):
    """The OpenAI Moderation API request (`model` is accepted and ignored)."""

    input: StrictStr | list[StrictStr]
    model: StrictStr | None = None


class OpenAIModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]


class OpenAIModerationResponse(BaseModel):
    id: str
    model: str
    results: list[OpenAIModerationResult]
