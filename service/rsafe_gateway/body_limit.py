"""Refuse request bodies over RSAFE_MAX_BODY_BYTES with 413, before reading them whole.

A declared Content-Length over the limit is refused at once; a body without one (chunked) is
read here up to the limit and refused as soon as it crosses it, so memory per request stays
bounded either way.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge
from .responses import error_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(f"request body is larger than {self.max_bytes} bytes")
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await error_response(too_large)(scope, receive, send)
                    return
                break
        else:
            # No declared length (chunked): read it here, up to the limit, then replay it.
            chunks: list[bytes] = []
            received = 0
            more_body = True
            while more_body:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_bytes:
                    await error_response(too_large)(scope, receive, send)
                    return
                chunks.append(chunk)
                more_body = message.get("more_body", False)
            receive = _replay(b"".join(chunks), receive)
        await self.app(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect

    return replay
