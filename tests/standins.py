"""Stand-in model servers for FAULT INJECTION only (every happy path runs against real vLLM)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
