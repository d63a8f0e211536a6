"""HTTP/1.1 over raw sockets, for requests no client library sends: half-sent bodies, stalled or
oversized heads, malformed framing, a client that disconnects mid-request."""

from __future__ import annotations

import json
import select
import socket
import time
import weakref
from dataclasses import dataclass
from typing import Any

# Bytes read past the end of a response (the next pipelined response began in the same read):
# they belong to the next `read_response` on that socket.
_UNREAD: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def head(
    method: str, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(sock: socket.socket, timeout: float) -> RawResponse | None:
    """The next response on `sock`, or None if none (complete) arrived within `timeout`."""
    deadline = time.monotonic() + timeout
    received = _UNREAD.pop(sock, b"")
    while True:
        if b"\r\n\r\n" in received:
            raw_head, _, body = received.partition(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(body) >= length:
                if body[length:]:
                    _UNREAD[sock] = body[length:]
                return RawResponse(int(lines[0].split(" ", 2)[1]), headers, body[:length])
        chunk = _recv(sock, deadline)
        if not chunk:
            return None
        received += chunk


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the other side closes the connection within `timeout` (data is dropped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = _recv(sock, deadline)
        except OSError:
            return True  # reset
        if chunk == b"":
            return time.monotonic() < deadline
    return False


def _recv(sock: socket.socket, deadline: float) -> bytes:
    """Up to 64 KiB, b"" on close or when the deadline passes first."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return b""
    readable, _, _ = select.select([sock], [], [], remaining)
    if not readable:
        return b""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
