"""Turn pydantic's error list into one `InvalidRequest` that names the offending field.

Messages are built from the field path and pydantic's message, never from the submitted values,
so nothing of the moderated text or the server's internals leaks into an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidRequest

_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict"}


def field_path(location: Sequence[Any]) -> str | None:
    """`("body", "input", 1, "role")` → `input[1].role` (union branch names are skipped)."""
    path = ""
    for part in location[1:] if location and location[0] == "body" else location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part not in _UNION_TAGS and "[" not in part:
            path += f".{part}" if path else part
    return path or None


def invalid_request_from(errors: Sequence[Any], *, prefix: str = "") -> InvalidRequest:
    if not errors:
        return InvalidRequest("invalid request")
    # The deepest location is the most specific reason (unions report one error per branch).
    error = max(errors, key=lambda item: len(item.get("loc", ())))
    location = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        return InvalidRequest("request body is not valid JSON")
    if error.get("type") == "missing" and location in {("body",), ()}:
        return InvalidRequest("request body is required")
    param = field_path(location)
    if prefix:
        param = f"{prefix}.{param}" if param else prefix
    message = f"{param}: {error.get('msg', 'invalid value')}" if param else error.get("msg")
    return InvalidRequest(str(message), param=param)
