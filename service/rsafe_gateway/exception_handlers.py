"""Every non-2xx answer leaves in the contract's shape: {"error": {type, message, param}}.

Validation messages are built from pydantic's error list (field path + its message), never from
the submitted values, so nothing of the moderated text or the server's internals leaks.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .errors import GatewayError
from .responses import JSONBytesResponse, error_body, error_response

logger = logging.getLogger("rsafe_gateway.errors")

_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict"}


def _param(location: tuple[Any, ...]) -> str | None:
    path = ""
    for part in location[1:] if location and location[0] == "body" else location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part not in _UNION_TAGS and "[" not in part:
            path += f".{part}" if path else part
    return path or None


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:
        return JSONBytesResponse(error_body("invalid_request", "invalid request"), status_code=400)
    # The deepest location is the most specific reason (unions report one error per branch).
    error = max(errors, key=lambda item: len(item.get("loc", ())))
    if error.get("type") == "json_invalid":
        message, param = "request body is not valid JSON", None
    elif error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",):
        message, param = "request body is required", None
    else:
        param = _param(tuple(error.get("loc", ())))
        message = f"{param}: {error.get('msg', 'invalid value')}" if param else error.get("msg")
    return JSONBytesResponse(error_body("invalid_request", str(message), param), status_code=400)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = "invalid_request" if exc.status_code < 500 else "internal"
    return JSONBytesResponse(
        error_body(error_type, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error", exc_info=exc)
    return JSONBytesResponse(
        error_body("internal", "internal error; the gateway logged the details"), status_code=500
    )


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
