"""The one stand-in model server, for FAULT INJECTION and for reading the exact request the gateway
sends (every happy path that claims something about the model runs against the real vLLM).

`ModelStandin` is a loopback OpenAI-compatible server on a daemon thread. It records every call
(headers, body, and what became of it: begun, answered, abandoned by the gateway) and answers what
its `respond` function says for that call: a status, a body, a delay, optionally cut short when the
gateway hangs up first. The context managers below are its configurations, named for what they
inject. (The chat proxy's scripted upstream LLM, tests/chat_proxy/standins.py, is not a model
server of the gateway but the LLM it proxies: a streaming server with its own role.)
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What vLLM answers for a well-formed verdict (the stand-ins that must answer one send this).
VALID_COMPLETION = (
    b'{"choices": [{"message": {"content": "<think>ok</think>\\\\boxed{safe}"},'
    b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'
)
UNSAFE_COMPLETION = "<think>ok</think>\\boxed{unsafe}"
MODELS_LIST = b'{"object": "list", "data": [{"id": "rsafe"}]}'


def completion_body(text: str) -> bytes:
    """A chat completion whose answer is `text`, as vLLM would send it."""
    return json.dumps(
        {
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3},
        }
    ).encode()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = VALID_COMPLETION
    delay: float = 0.0
    # True: wait up to `delay` for the gateway to hang up, and answer nothing if it does.
    unless_hung_up: bool = False


@dataclass
class CallLog:
    """The model calls (POSTs) a stand-in saw: begun, answered (200 sent), abandoned by the gateway."""

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


Respond = Callable[["ModelStandin", Call], Reply]


def answer_completion(standin: ModelStandin, call: Call) -> Reply:
    """Like vLLM: the model list on GET /v1/models, `standin.completion` on every POST."""
    if call.method == "GET":
        return Reply(body=MODELS_LIST if call.path.startswith("/v1/models") else b"{}")
    return Reply(body=completion_body(standin.completion))


@dataclass
class ModelStandin:
    respond: Respond = answer_completion
    keep_alive: bool = False  # HTTP/1.1 keep-alive, as vLLM (the gateway pools connections)
    drops: int = 0  # the first `drops` connections are closed without an answer
    completion: str = UNSAFE_COMPLETION  # what `answer_completion` answers (a test may change it)
    url: str = ""
    calls: CallLog = field(default_factory=CallLog)
    arrivals: list[float] = field(default_factory=list)  # when each connection arrived
    headers: list[dict[str, str]] = field(default_factory=list)  # of every POST, in order
    bodies: list[Any] = field(default_factory=list)  # every POST's JSON body, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_request_id(self) -> dict[str, Any]:
        with self.lock:
            return {
                h.get("x-request-id", ""): b for h, b in zip(self.headers, self.bodies, strict=True)
            }

    def clear(self) -> None:
        with self.lock:
            self.bodies.clear()
            self.headers.clear()

    def record(self, call: Call) -> None:
        try:
            body: Any = json.loads(call.body)
        except ValueError:
            body = call.body.decode(errors="replace")
        with self.lock:
            self.headers.append(call.headers)
            self.bodies.append(body)
        self.calls.count("begun", call.body)

    @contextmanager
    def serving(self) -> Iterator[ModelStandin]:
        """Serve on a free loopback port (in `url`) until the block ends."""
        server = _Server(self)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def _hung_up(sock: socket.socket, wait: float) -> bool:
    """True when the peer closes the connection within `wait` seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        standin = self.server.standin
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        posted = self.command == "POST"
        if posted:
            standin.record(call)
        reply = standin.respond(standin, call)
        if reply.unless_hung_up:
            if _hung_up(self.connection, reply.delay):
                if posted:
                    standin.calls.count("abandoned", raw)
                self.close_connection = True
                return
        elif reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            if posted:
                standin.calls.count("abandoned", raw)
            return
        if posted and reply.status == 200:
            standin.calls.count("answered", raw)

    do_GET = _handle
    do_POST = _handle

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of new connections (a batch fans out to 64
    # concurrent model calls) would overflow it and wait for SYN retransmits (1 s, 3 s, ...).
    request_queue_size = 256

    def __init__(self, standin: ModelStandin) -> None:
        self.standin = standin
        handler = type(
            "Handler",
            (_Handler,),
            {
                "protocol_version": "HTTP/1.1" if standin.keep_alive else "HTTP/1.0",
                # headers and body are two writes: no 40 ms delayed ACK on a kept-alive connection
                "disable_nagle_algorithm": standin.keep_alive,
            },
        )
        super().__init__(("127.0.0.1", 0), handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.standin.arrivals.append(time.monotonic())
        return len(self.standin.arrivals) > self.standin.drops  # False: closed unanswered


# ---------------------------------------------------------------- configurations


@contextmanager
def model_standin(completion: str = UNSAFE_COMPLETION) -> Iterator[ModelStandin]:
    """A vLLM-like stand-in (keep-alive, model list) that records every request and answers
    `completion` (changeable through `.completion`)."""
    with ModelStandin(keep_alive=True, completion=completion).serving() as standin:
        yield standin


@contextmanager
def standin_server(status: int = 200, body: bytes = b"{}", delay: float = 0.0) -> Iterator[str]:
    """A loopback HTTP server answering every request with `status`/`body` after `delay`."""
    reply = Reply(status, body, delay)
    with ModelStandin(lambda _standin, _call: reply).serving() as standin:
        yield standin.url


@contextmanager
def recording_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback server that records each request's headers and answers a valid completion."""
    with ModelStandin(lambda _standin, _call: Reply()).serving() as standin:
        yield standin.url, standin.headers


@contextmanager
def dropping_server(drops: int) -> Iterator[tuple[str, list[float]]]:
    """A loopback server that closes its first `drops` connections without answering, then
    answers a valid completion; yields its URL and the arrival time of every connection."""
    with ModelStandin(lambda _standin, _call: Reply(), drops=drops).serving() as standin:
        yield standin.url, standin.arrivals


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

    def respond(_standin: ModelStandin, call: Call) -> Reply:
        if call.method == "GET":
            return Reply(body=MODELS_LIST)
        if fail_marker.encode() in call.body:
            return Reply(fail_status, b'{"error": {"message": "injected failure"}}')
        if slow_marker.encode() in call.body:
            return Reply(delay=delay, unless_hung_up=True)
        return Reply()

    with ModelStandin(respond, keep_alive=True).serving() as standin:
        yield standin.url, standin.calls
