"""Stand-in model servers for FAULT INJECTION only (every happy path runs against real vLLM)."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _handler(status: int, body: bytes, delay: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 makes concurrent clients stall on TCP retries


# What vLLM answers for a well-formed verdict (the stand-ins that must answer one send this).
VALID_COMPLETION = (
    b'{"choices": [{"message": {"content": "<think>ok</think>\\\\boxed{safe}"},'
    b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'
)


@contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Run `server` on a daemon thread; yield its URL; shut it down afterwards."""
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def standin_server(status: int = 200, body: bytes = b"{}", delay: float = 0.0) -> Iterator[str]:
    """A loopback HTTP server answering every request with `status`/`body` after `delay`."""
    with _serving(_Server(("127.0.0.1", 0), _handler(status, body, delay))) as url:
        yield url


@contextmanager
def recording_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback server that records each request's headers and answers a valid completion."""
    seen: list[dict[str, str]] = []
    answer = _handler(200, VALID_COMPLETION, 0.0)

    class Handler(answer):  # type: ignore[misc,valid-type]
        def do_POST(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            super().do_POST()

    with _serving(_Server(("127.0.0.1", 0), Handler)) as url:
        yield url, seen


@contextmanager
def dropping_server(drops: int) -> Iterator[tuple[str, list[float]]]:
    """A loopback server that closes its first `drops` connections without answering, then
    answers a valid completion; yields its URL and the arrival time of every connection."""
    arrivals: list[float] = []

    class Server(_Server):
        def verify_request(self, request: object, client_address: object) -> bool:
            arrivals.append(time.monotonic())
            return len(arrivals) > drops  # False: the connection is closed unanswered

    with _serving(Server(("127.0.0.1", 0), _handler(200, VALID_COMPLETION, 0.0))) as url:
        yield url, arrivals


@dataclass
class CallLog:
    """What a `watching_server` saw: calls begun, answered, and abandoned by the gateway."""

    begun: int = 0
    answered: int = 0
    abandoned: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The request bodies behind each count, so that a test can follow its own calls even when a
    # late call from an earlier test lands in the middle of it.
    bodies: dict[str, list[bytes]] = field(
        default_factory=lambda: {"begun": [], "answered": [], "abandoned": []}
    )

    def count(self, what: str, body: bytes = b"") -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)
            self.bodies[what].append(body)

    def tagged(self, what: str, tags: list[str]) -> int:
        """How many of the calls counted as `what` carry one of `tags`."""
        with self.lock:
            seen = list(self.bodies[what])
        return sum(1 for body in seen for tag in tags if tag.encode() in body)


def _client_closed(sock: socket.socket, wait: float) -> bool:
    """True when the peer closes the connection within `wait` seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


@contextmanager
def watching_server(
    delay: float,
    slow_marker: str = "SLOW",
    fail_marker: str = "FAIL-AT-ONCE",
    fail_status: int = 500,
) -> Iterator[tuple[str, CallLog]]:
    """A loopback model stand-in that watches its calls: a prompt containing `fail_marker` is
    answered `fail_status` at once; one containing `slow_marker` a valid completion after
    `delay` seconds, unless the gateway closes the connection first (counted as abandoned);
    any other a valid completion at once."""
    calls = CallLog()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(200, b'{"object": "list", "data": [{"id": "rsafe"}]}')

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            calls.count("begun", raw)
            if fail_marker.encode() in raw:
                self._send(fail_status, b'{"error": {"message": "injected failure"}}')
                return
            if slow_marker.encode() in raw and _client_closed(self.connection, delay):
                calls.count("abandoned", raw)
                self.close_connection = True
                return
            try:
                self._send(200, VALID_COMPLETION)
                calls.count("answered", raw)
            except OSError:
                calls.count("abandoned", raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    with _serving(_Server(("127.0.0.1", 0), Handler)) as url:
        yield url, calls
