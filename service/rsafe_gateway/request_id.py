"""Request ids: the caller's `X-Request-ID` when sane, else a new one.

`AccessLogMiddleware` applies them (one ASGI layer for the id and the log line: every layer
costs on each request): the id goes into the request's context (`request_context.py`), the
`X-Request-ID` response header and the access log line.
"""

from __future__ import annotations

import os
import re

_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    # 128 random bits as hex (what uuid4().hex gives, minus the version bits, at a quarter of
    # the cost: this runs on every request).
    return f"mod-{os.urandom(16).hex()}"


def request_id_for(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's id from the raw ASGI headers if it is sane, else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            return given if _SANE_ID.match(given) else new_request_id()
    return new_request_id()
