"""POST /v1/moderate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..batch import moderate_batch
from ..openai_compat import moderate_openai
from ..protocol import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    ModerationRequest,
    ModerationResponse,
    OpenAIModerationRequest,
    OpenAIModerationResponse,
)
from ..responses import JSONBytesResponse
from ..service import ModerationService

router = APIRouter(tags=["moderation"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "invalid request (the field is named in error.param)",
        401: "missing or wrong API key",
        413: "request body too large",
        429: "rate limited (see Retry-After)",
        500: "internal error (a bug)",
        502: "the model server answered with an error",
        503: "the model server is unavailable",
        504: "the model server did not answer in time",
    }.items()
}


@router.post(
    "/v1/moderate",
    response_model=ModerationResponse,
    responses=ERROR_RESPONSES,
    summary="Judge a text or a conversation against a safety policy",
)
async def moderate(body: ModerationRequest, request: Request) -> JSONBytesResponse:
    service: ModerationService = request.app.state.service
    result = await service.moderate(body, request.state.request_id)
    log_fields: dict[str, Any] = {
        "verdict": result.verdict.value,
        "flagged": result.flagged,
        "cached": result.cached,
        "policy_id": result.policy.id,
        "model": result.model,
    }
    if request.app.state.settings.log_content:
        log_fields["input"] = body.model_dump(mode="json")["input"]
    request.state.log = log_fields
    return JSONBytesResponse(result.model_dump(mode="json"))


@router.post(
    "/v1/moderate/batch",
    response_model=BatchResponse,
    responses=ERROR_RESPONSES,
    summary="Judge many items concurrently; results in order, errors in place",
)
async def moderate_many(body: BatchRequest, request: Request) -> JSONBytesResponse:
    service: ModerationService = request.app.state.service
    results = await moderate_batch(
        service, body.items, request.state.request_id, request.app.state.settings.max_batch_items
    )
    request.state.log = {"items": len(results)}
    return JSONBytesResponse({"results": results})


@router.post(
    "/v1/moderations",
    response_model=OpenAIModerationResponse,
    responses=ERROR_RESPONSES,
    summary="OpenAI Moderation API compatible endpoint",
)
async def openai_moderations(body: OpenAIModerationRequest, request: Request) -> JSONBytesResponse:
    service: ModerationService = request.app.state.service
    result = await moderate_openai(
        service, body, request.state.request_id, request.app.state.settings.max_batch_items
    )
    request.state.log = {"items": len(result.results), "policy_id": service.openai_policy_id}
    return JSONBytesResponse(result.model_dump(mode="json"))
