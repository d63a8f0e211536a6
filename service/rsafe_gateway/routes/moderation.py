"""POST /v1/moderate, /v1/moderate/batch and /v1/moderations.

These are the hot path, so they are plain Starlette routes: FastAPI's per-request machinery for a
declared route (dependency solving, exit stack, a spare Response) was a sizeable share of a cache
hit's cost (scripts/benchmark.py measures it). They are still documented: `documentation`
holds the same operations as FastAPI routes, used only to build /openapi.json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..batch import moderate_batch
from ..decision_log.record import DecisionContext
from ..gateway_state import GatewayState, gateway_state
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
from ..rate_limit import Pay
from ..request_context import RequestContext, request_context
from ..responses import JSONBytesResponse, model_response
from ..tenants import principal_of
from .disconnect import unless_disconnected
from .json_body import json_body_openapi, read_json_body

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "invalid request (the field is named in error.param)",
        401: "missing or wrong API key",
        403: "the API key lacks the `moderate` scope or may not use the policy",
        408: "the request body did not arrive in time",
        413: "request body too large",
        415: "the body is not declared as application/json",
        421: "the Host header names a host this gateway does not serve",
        429: "rate limited, or too many requests in progress for this key (see Retry-After)",
        500: "internal error (a bug)",
        502: "the model server answered with an error",
        503: "the model server is unavailable, or the required decision log cannot write",
        504: "the model server did not answer in time",
    }.items()
}


def _context(gateway: GatewayState, asking: RequestContext, route: str) -> DecisionContext:
    """Who asks (tenant, scopes: tenants.py) and where: for the policy and the decision log."""
    principal = principal_of(asking.principal, gateway.settings.auth_enabled)
    principal.require("moderate")
    return DecisionContext(principal, route)


async def moderate(request: Request) -> Response:
    body = await read_json_body(request, ModerationRequest)
    gateway = gateway_state(request.app)
    asking = request_context(request.scope)
    context = _context(gateway, asking, "/v1/moderate")
    result = await gateway.service.moderate(body, asking.request_id, context)
    log_fields: dict[str, Any] = {
        "verdict": result.verdict.value,
        "flagged": result.flagged,
        "cached": result.cached,
        "policy_id": result.policy.id,
        "model": result.model,
    }
    if gateway.settings.log_content:
        log_fields["input"] = body.model_dump(mode="json")["input"]
    asking.log = log_fields
    return JSONBytesResponse(result)  # a dataclass: orjson writes it directly


def _payment(gateway: GatewayState, asking: RequestContext) -> Pay | None:
    """What charges this request's further model calls to its caller (None: no rate limit)."""
    limiter = gateway.rate_limiter
    if limiter is None:
        return None
    assert asking.caller is not None  # admission runs (and names the caller) with a limiter
    return partial(limiter.take_more, asking.caller, own=asking.own_limit)


async def moderate_many(request: Request) -> Response:
    body = await read_json_body(request, BatchRequest)
    gateway = gateway_state(request.app)
    asking = request_context(request.scope)
    work = moderate_batch(
        gateway.service,
        body.items,
        asking.request_id,
        _context(gateway, asking, "/v1/moderate/batch"),
        pay=_payment(gateway, asking),
    )
    results = await unless_disconnected(request.receive, work)
    asking.log = {"items": len(results)}
    return JSONBytesResponse({"results": results})


async def openai_moderations(request: Request) -> Response:
    body = await read_json_body(request, OpenAIModerationRequest)
    gateway = gateway_state(request.app)
    asking = request_context(request.scope)
    work = moderate_openai(
        gateway.service,
        body,
        asking.request_id,
        _context(gateway, asking, "/v1/moderations"),
        pay=_payment(gateway, asking),
    )
    result = await unless_disconnected(request.receive, work)
    asking.log = {"items": len(result.results), "policy_id": gateway.service.openai_policy_id}
    return model_response(result)


class _ServedRoute(Route):
    """A Starlette route that names itself in `scope["route"]` as FastAPI's own routes do
    (FastAPI's router leaves it unset for plain routes; the access log and metrics read it)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


# What /openapi.json says about the routes below (never mounted, never called).
documentation = APIRouter(tags=["moderation"])
routes: list[Route] = []


def _post(
    path: str,
    endpoint: Callable[[Request], Awaitable[Response]],
    *,
    body: type[BaseModel],
    answer: type[BaseModel],
    summary: str,
) -> None:
    documentation.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        response_model=answer,
        responses=ERROR_RESPONSES,
        summary=summary,
        openapi_extra=json_body_openapi(body),
    )
    routes.append(_ServedRoute(path, endpoint, methods=["POST"]))


_post(
    "/v1/moderate",
    moderate,
    body=ModerationRequest,
    answer=ModerationResponse,
    summary="Judge a text or a conversation against a safety policy",
)
_post(
    "/v1/moderate/batch",
    moderate_many,
    body=BatchRequest,
    answer=BatchResponse,
    summary="Judge many items concurrently; results in order, errors in place",
)
_post(
    "/v1/moderations",
    openai_moderations,
    body=OpenAIModerationRequest,
    answer=OpenAIModerationResponse,
    summary="OpenAI Moderation API compatible endpoint",
)
