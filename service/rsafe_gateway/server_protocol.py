"""uvicorn's httptools protocol with bounded request heads (`python -m rsafe_gateway` serves it).

uvicorn bounds neither the size of a request's head (request line and headers) nor the time it
may take to arrive: a client could stream headers without end, or open connections and trickle
a byte now and then, holding memory and connections for as long as it likes. Here a head larger
than RSAFE_MAX_HEADER_BYTES gets 431, and one not complete within
RSAFE_HEADER_READ_TIMEOUT_SECONDS gets 408 (a connection that never sent a byte is just closed);
both close the connection. The body has its own limits (`body_limit.py`).

The deadline is watched by one timer per process sweeping the pending heads once a second or so,
not by a timer per request (the hot path pays a dict write and a clock read).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import InvalidRequest
from .responses import error_body
from .settings import get_settings

_LINGER_SECONDS = 2.0


def _raw_error(status_line: bytes, message: str) -> bytes:
    body = orjson.dumps(error_body(InvalidRequest(message)))
    return b"".join(
        (
            status_line,
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


class _HeadDeadlines:
    """Heads being received, by connection, and the sweep that ends the ones past due."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.pending: dict[BoundedHttpToolsProtocol, float] = {}  # -> when its head began
        self._period = min(1.0, timeout / 4)
        self._timer: asyncio.TimerHandle | None = None

    def begin(self, connection: BoundedHttpToolsProtocol) -> None:
        self.pending[connection] = self.loop.time()
        if self._timer is None:
            self._timer = self.loop.call_later(self._period, self._sweep)

    def end(self, connection: BoundedHttpToolsProtocol) -> None:
        self.pending.pop(connection, None)

    def _sweep(self) -> None:
        now = self.loop.time()
        late = [c for c, began in self.pending.items() if now - began >= self.timeout]
        for connection in late:
            self.end(connection)
            connection.head_timed_out()
        self._timer = self.loop.call_later(self._period, self._sweep) if self.pending else None


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _deadlines: _HeadDeadlines | None = None  # one per event loop (one per worker process)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._max_head_bytes = settings.max_header_bytes
        deadlines = BoundedHttpToolsProtocol._deadlines
        if deadlines is None or deadlines.loop is not self.loop:
            deadlines = _HeadDeadlines(self.loop, settings.header_read_timeout_seconds)
            BoundedHttpToolsProtocol._deadlines = deadlines
        self._head_deadlines = deadlines
        self._in_head = False
        self._heads_begun = 0
        # Of the head being received: the bytes of the chunks that were all head (a lower bound
        # of its size), and of every chunk that held some of it (an upper bound).
        self._head_bytes = 0
        self._head_seen = 0
        self._chunk_bytes = 0  # the chunk being parsed
        self._refused = False

    def _begin_head(self, seen: int = 0) -> None:
        self._in_head = True
        self._heads_begun += 1
        self._head_bytes = 0
        self._head_seen = seen
        self._head_deadlines.begin(self)

    def _end_head(self) -> None:
        self._in_head = False
        self._head_deadlines.end(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._begin_head()  # the first request's head is due

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered already; what the client still sends is dropped
        self._chunk_bytes = len(data)
        head = -1
        if self._in_head:
            head = self._heads_begun
            self._head_seen += len(data)
        super().data_received(data)
        # Still in the same head after the whole chunk: all of it was head. (A head that began
        # inside this chunk is not counted yet: never a false refusal, at most a chunk late.)
        if self._in_head and head == self._heads_begun and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_bytes:
                self._refuse_oversized_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            self._begin_head(seen=self._chunk_bytes)  # began somewhere in this chunk

    def on_headers_complete(self) -> None:
        self._end_head()
        # Exact size only when the bytes seen could exceed the limit (rarely): cheap per request.
        if self._head_seen > self._max_head_bytes:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self._max_head_bytes:
                self._refuse_oversized_head()
                return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def head_timed_out(self) -> None:
        if self._heads_begun == 1 and self._head_seen == 0:
            self._end_head()
            self.transport.close()  # never sent a byte (a browser's pre-connection, say)
            return
        self._refuse(
            b"HTTP/1.1 408 Request Timeout\r\n",
            "request headers not received within "
            f"{self._head_deadlines.timeout:g} s (RSAFE_HEADER_READ_TIMEOUT_SECONDS)",
        )

    def _refuse_oversized_head(self) -> None:
        self._refuse(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            f"request line and headers are larger than {self._max_head_bytes} bytes "
            "(RSAFE_MAX_HEADER_BYTES)",
        )

    def _refuse(self, status_line: bytes, message: str) -> None:
        self._end_head()
        self._refused = True
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier (pipelined) request is still answering: an error now would garble it.
            self.transport.close()
            return
        self.transport.write(_raw_error(status_line, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        # Keep reading (and dropping) for a moment: closing with unread input would reset the
        # connection, and the client might lose the answer before reading it.
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)
