"""Read a request's body whole, bounded in size (RSAFE_MAX_BODY_BYTES) and in time
(RSAFE_BODY_READ_TIMEOUT_SECONDS), then hand it to the app.

- A declared Content-Length over the limit is refused with 413 before anything is read; a chunked
  body is counted as it arrives and refused as soon as it crosses the limit.
- A body that has not arrived by the deadline (a slow or stalled upload) gets 408 and the
  connection is closed: a half-sent upload cannot hold a connection and its buffers for long.
- A client that goes away mid-body ends the request quietly: nothing to answer, no error logged
  (the access log records 499).

This runs after admission (`guard.py`): an unauthenticated or rate-limited caller's body is never
read. The app then gets the body from memory and never waits on the network for it.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BodyTimeout, PayloadTooLarge
from .memory import give_back_free_memory
from .responses import error_response


class _ReadDeadlines:
    """Cancels the requests whose body read outlives the deadline.

    One timer for the process, armed only while reads are pending and checking them a few times
    per deadline, instead of a timer per request (`asyncio.timeout` per request costs a noticeable
    share of a cache hit). A read is cancelled between `timeout` and `timeout + period` seconds.
    One period after reads were cancelled, once their buffers are dropped, the free heap is
    handed back to the OS (`memory.py`), so a flood of half-sent uploads leaves no high-water RSS.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._period = min(1.0, timeout / 4)
        self._reads: dict[asyncio.Task[object], float] = {}  # task -> when its read began
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trim: asyncio.TimerHandle | None = None

    def begin(self, task: asyncio.Task[object]) -> None:
        self._reads[task] = time.monotonic()
        loop = task.get_loop()
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(self._period, self._sweep)

    def end(self, task: asyncio.Task[object]) -> bool:
        """Forget the read; True if it was cancelled for its deadline."""
        del self._reads[task]
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _sweep(self) -> None:
        now = time.monotonic()
        cancelled = False
        for task, began in self._reads.items():
            if now - began >= self._timeout and task not in self._expired:
                self._expired.add(task)
                task.cancel()
                cancelled = True
        loop = self._loop
        if loop is None:
            return
        if cancelled and self._trim is None:
            self._trim = loop.call_later(self._period, self._give_back)
        self._timer = loop.call_later(self._period, self._sweep) if self._reads else None

    def _give_back(self) -> None:
        self._trim = None
        give_back_free_memory()


class _ClientGone(Exception):
    pass


async def _read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body, or None once it is larger than `max_bytes`."""
    message = await receive()
    if message["type"] != "http.request":
        raise _ClientGone
    body: bytes = message.get("body", b"")
    if len(body) > max_bytes:
        return None
    if not message.get("more_body", False):
        return body  # the usual case: the whole body in one message, no copy
    buffer = bytearray(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        buffer += message.get("body", b"")
        if len(buffer) > max_bytes:
            return None
        if not message.get("more_body", False):
            return bytes(buffer)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_seconds: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout_seconds
        self._deadlines = _ReadDeadlines(read_timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await error_response(self._too_large())(scope, receive, send)
                    return
                has_body = value != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:  # neither a length nor chunks: HTTP says there is no body
            await self.app(scope, receive, send)
            return

        task: asyncio.Task[object] | None = asyncio.current_task()
        assert task is not None
        self._deadlines.begin(task)
        try:
            body = await _read_body(receive, self.max_bytes)
        except asyncio.CancelledError:
            if not self._deadlines.end(task):
                raise
            task.uncancel()  # our own deadline, not a shutdown: answer 408
            timed_out = BodyTimeout(f"request body not received within {self.read_timeout:g} s")
            await error_response(timed_out)(scope, receive, send)
            return
        except _ClientGone:
            self._deadlines.end(task)
            return
        self._deadlines.end(task)
        if body is None:
            await error_response(self._too_large())(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than {self.max_bytes} bytes")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. http.disconnect

    return replay
