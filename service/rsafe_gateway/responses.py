"""JSON responses rendered with orjson, and the one error body of the contract."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from .errors import GatewayError


class JSONBytesResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def model_response(model: BaseModel) -> Response:
    """A pydantic model serialised straight to JSON by pydantic-core (no intermediate dict)."""
    return Response(model.model_dump_json(), media_type="application/json")


def error_body(exc: GatewayError) -> dict[str, Any]:
    """The contract's error object: the one place its shape is written (HTTP answers, batch items,
    stream events, the raw answers of the HTTP protocol)."""
    return {"error": {"type": exc.error_type, "message": exc.message, "param": exc.param}}


def error_response(exc: GatewayError) -> JSONBytesResponse:
    """Every error answer: from the exception handlers, the middleware, the routes."""
    return JSONBytesResponse(error_body(exc), status_code=exc.status_code, headers=exc.headers)
