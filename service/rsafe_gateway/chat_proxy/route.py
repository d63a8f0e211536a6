"""POST /v1/chat/completions: read and validate the request, then hand it to `ChatProxy`.

Registered only when RSAFE_UPSTREAM_URL is set (otherwise the path is unknown: 404 in the one
error shape). API keys, rate limits and the body limit apply as on every `/v1/` route: they are
middleware around all routes. A client that disconnects before its answer starts cancels the
work in flight (checks and the upstream call); once streaming, the streaming response does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from pydantic import ValidationError
from rsafe_core.errors import InvalidInput
from rsafe_core.turns import check_encodable
from starlette.responses import Response
from starlette.types import Receive

from ..decision_log.record import DecisionContext
from ..errors import InvalidRequest
from ..gateway_state import gateway_state
from ..request_context import request_context
from ..routes.json_body import json_body_openapi
from ..routes.moderation import ERROR_RESPONSES
from ..service import ModerationService
from ..settings import Settings
from ..tenants import principal_of
from ..validation import invalid_request_from
from .protocol import ChatCompletion, ChatCompletionRequest
from .serving import ChatProxy, ProxyCall

PATH = "/v1/chat/completions"
POLICY_HEADER = "x-rsafe-policy-id"
OUTPUT_POLICY_HEADER = "x-rsafe-output-policy-id"
# nginx's convention for "the client closed the request": only the access log sees it.
CLIENT_CLOSED_REQUEST = 499


def _last_user_text(request: ChatCompletionRequest, max_chars: int) -> str:
    """The text of the last user turn (text parts joined), the input check's subject."""
    for index in range(len(request.messages) - 1, -1, -1):
        message = request.messages[index]
        if message.role != "user":
            continue
        param = f"messages[{index}].content"
        if isinstance(message.content, str):
            text = message.content
        else:
            text = "\n".join(part.text for part in message.content or () if part.text)
        if not text.strip():
            raise InvalidRequest("the last user message has no text to check", param=param)
        if len(text) > max_chars:
            raise InvalidRequest(f"'{param}' is longer than {max_chars} characters", param=param)
        try:
            check_encodable(text, param)
        except InvalidInput as exc:
            raise InvalidRequest.from_input(exc) from None
        return text
    raise InvalidRequest("the conversation has no user message", param="messages")


def _policy_id(
    service: ModerationService, request: Request, header: str, given: str | None, param: str
) -> str | None:
    """A policy named by the header (first) or the body extension; None when neither names one."""
    wanted = request.headers.get(header)
    source = header if wanted is not None else param
    wanted = wanted if wanted is not None else given
    if wanted is None:
        return None
    if service.policies.get(wanted) is None:
        raise InvalidRequest(f"unknown policy id {wanted!r}", param=source)
    return wanted


def build_call(request: Request, raw: bytes, settings: Settings) -> ProxyCall:
    try:
        parsed = ChatCompletionRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_request_from(exc.errors(include_url=False, include_input=False)) from None
    if parsed.n not in (None, 1):
        raise InvalidRequest("the guarded proxy supports n = 1 only", param="n")
    service = gateway_state(request.app).service
    asking = request_context(request.scope)
    principal = principal_of(asking.principal, settings.auth_enabled)
    principal.require("moderate")
    options = parsed.rsafe
    named_input = _policy_id(
        service,
        request,
        POLICY_HEADER,
        options.policy_id if options else None,
        "rsafe.policy_id",
    )
    named_output = _policy_id(
        service, request, OUTPUT_POLICY_HEADER, options.output_policy_id if options else None,
        "rsafe.output_policy_id",
    )  # fmt: skip
    # The key's own default policy comes before the gateway's (as on /v1/moderate).
    named_input = principal.policy_for(named_input, False)
    input_policy = named_input or settings.proxy_input_policy_id or service.policies.default_id
    # A policy the request names applies to both checks unless it names an output one too.
    output_policy = named_output or named_input or settings.proxy_output_policy_id or input_policy
    # Refused here (403), not inside a check, where a refusal would read as a guard failure.
    for policy_id in {input_policy, output_policy}:
        principal.policy_for(policy_id, False)
    body: dict[str, Any] = orjson.loads(raw)
    body.pop("rsafe", None)
    return ProxyCall(
        body=body,
        stream=bool(parsed.stream),
        model=parsed.model,
        user_text=_last_user_text(parsed, settings.max_text_chars),
        input_policy_id=input_policy,
        output_policy_id=output_policy,
        request_id=asking.request_id,
        started=time.perf_counter(),
        log=asking.log,
        context=DecisionContext(principal, PATH),
    )


async def until_disconnect(receive: Receive, work: Coroutine[Any, Any, Response]) -> Response:
    """`work`'s response, or (when the client disconnects first) `work` cancelled."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request itself was cancelled
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def chat_completions(request: Request) -> Response:
    raw = await request.body()
    gateway = gateway_state(request.app)
    call = build_call(request, raw, gateway.settings)
    assert gateway.chat_proxy is not None  # the route exists only with a proxy
    return await until_disconnect(request.receive, gateway.chat_proxy.handle(call))


def install_routes(app: FastAPI, settings: Settings) -> None:
    """Serve POST /v1/chat/completions when an upstream LLM is configured; else nothing."""
    if settings.upstream_url is None:
        return
    router = APIRouter(tags=["chat proxy"])
    responses: dict[int | str, dict[str, Any]] = {
        **ERROR_RESPONSES,
        200: {
            "model": ChatCompletion,
            "description": "the upstream's answer (JSON), or its stream (`text/event-stream`, "
            "when `stream` is true); cut or blocked replies end with finish_reason "
            "`content_filter` and the decision in `rsafe`",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    }
    router.add_api_route(
        PATH,
        chat_completions,
        methods=["POST"],
        response_model=None,
        responses=responses,
        summary="OpenAI-compatible chat completions, guarded: input and output checks",
        openapi_extra=json_body_openapi(ChatCompletionRequest),
    )
    app.include_router(router)


def open_proxy(settings: Settings, service: ModerationService) -> ChatProxy | None:
    """The proxy's clients (inside the app's lifespan), or None when it is off."""
    return ChatProxy.open(settings, service) if settings.upstream_url is not None else None
