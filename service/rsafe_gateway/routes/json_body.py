"""Request bodies parsed by pydantic-core straight from bytes, still documented in OpenAPI.

FastAPI's declared body parameters cost, per request, a stdlib `json.loads`, a content-type parse
and its dependency solver before pydantic runs. On the moderation routes (the hot path, measured
by scripts/benchmark.py) the route reads `request.body()` and calls `Model.model_validate_json`
instead: one pass in Rust, same validation, same error shape.
`json_body_openapi` puts the schema back into /openapi.json, so clients and Schemathesis see it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ..errors import UnsupportedMediaType
from ..validation import invalid_request_from

ModelT = TypeVar("ModelT", bound=BaseModel)

# Models documented as request bodies; their schemas are added to the OpenAPI components.
REQUEST_BODY_MODELS: dict[str, type[BaseModel]] = {}

_REF_TEMPLATE = "#/components/schemas/{model}"


async def read_json_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request body validated as `model`; an `InvalidRequest` (400) naming the field if not.

    The body must be declared `application/json` (415 otherwise): a web page can make a browser
    send `text/plain` or form bodies to any address without asking, but not JSON.
    """
    if not _declares_json(request.scope["headers"]):
        raise UnsupportedMediaType(
            "request body must be JSON, sent with 'Content-Type: application/json'"
        )
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request_from(exc.errors(include_url=False, include_input=False)) from None


def _declares_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            media_type = value.partition(b";")[0].strip().lower()
            return media_type == b"application/json"
    return False


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `model` with `read_json_body`."""
    REQUEST_BODY_MODELS[model.__name__] = model
    schema_ref = {"$ref": _REF_TEMPLATE.format(model=model.__name__)}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema_ref}}}
    }


def add_request_body_schemas(schema: dict[str, Any]) -> None:
    """Put the request models (and the models they use) into `components.schemas`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in REQUEST_BODY_MODELS.items():
        model_schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
        for def_name, definition in model_schema.pop("$defs", {}).items():
            components.setdefault(def_name, definition)
        components[name] = model_schema
