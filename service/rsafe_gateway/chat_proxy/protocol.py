"""Wire schemas of `POST /v1/chat/completions` (pydantic models only; no serving logic).

The request is OpenAI's chat completion request. Only the fields the proxy reads are declared;
every other field (`temperature`, `tools`, `stream_options`, a vendor's own…) is kept and passed
to the upstream LLM as sent. `rsafe` is the gateway's extension field and is NOT passed on.
The chunks and answers the gateway writes itself (a cut, a blocked prompt) are OpenAI's shapes
with the decision in the extension field `rsafe`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..protocol import PolicyRef, StrictModel


class PassThroughModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(PassThroughModel):
    type: str
    text: str | None = None


class ChatMessage(PassThroughModel):
    role: str = Field(description="`system`, `developer`, `user`, `assistant`, `tool`…")
    content: str | list[ContentPart] | None = None


class RSafeOptions(StrictModel):
    policy_id: str | None = Field(
        default=None,
        description="policy for the input check (and the output checks unless "
        "`output_policy_id` is given); the header X-RSafe-Policy-Id takes precedence",
    )
    output_policy_id: str | None = Field(
        default=None,
        description="policy for the output checks; the header X-RSafe-Output-Policy-Id takes "
        "precedence",
    )


class ChatCompletionRequest(PassThroughModel):
    model: str = Field(description="passed to the upstream LLM as given")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    n: int | None = Field(default=None, description="only 1 is supported")
    rsafe: RSafeOptions | None = Field(
        default=None, description="the gateway's extension; not passed to the upstream"
    )


# What the gateway adds to the chunks and answers it writes itself.

Stage = Literal["input", "output"]
CutReason = Literal["unsafe", "fail_closed"]


class GuardDecision(BaseModel):
    stage: Stage = Field(description="`input`: the last user turn; `output`: a window of the reply")
    verdict: Literal["safe", "unsafe", "undetermined"]
    flagged: bool
    categories: list[str]
    policy: PolicyRef | None = Field(description="null when the guard failed before answering")
    check_id: str = Field(description="id of this check (sent to the guard as X-Request-ID)")
    fail_mode: Literal["closed", "open"] | None = None
    failure: str | None = Field(
        default=None, description="why the guard gave no verdict (timeout, unavailable, 5xx…)"
    )


class RSafeExtension(BaseModel):
    request_id: str = Field(description="the gateway's request id (the X-Request-ID header)")
    action: Literal["cut", "marked"] = Field(
        description="`cut`: the reply was stopped here; `marked`: released under fail-open "
        "although a check gave no verdict"
    )
    reason: CutReason | None = None
    decision: GuardDecision
    output_checks: int = Field(description="windows of the reply judged before this point")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: dict[str, str] = Field(description="`{}`, or the role and empty content")
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    rsafe: RSafeExtension | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None


class CompletionChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    """The non-streamed answer when the input was blocked (otherwise the upstream's answer)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: dict[str, Any] | None = None
    rsafe: RSafeExtension | None = None
