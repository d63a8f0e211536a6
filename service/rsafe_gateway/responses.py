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


def error_body(error_type: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, "param": param}}


def error_response(exc: GatewayError) -> JSONBytesResponse:
    return JSONBytesResponse(
        error_body(exc.error_type, exc.message, exc.param),
        status_code=exc.status_code,
        headers=exc.headers,
    )
