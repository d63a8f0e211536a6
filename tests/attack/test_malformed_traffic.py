"""Malformed and abandoned requests over raw sockets, against a REAL gateway process (uvicorn,
keys on) with a model stand-in: every one ends in a 4xx or a quiet close, never in a 5xx counted
toward the error-ratio alert, and never with a traceback in the log.

Found by trying them: before this suite, aborted uploads (with a length or chunked), a chunked
body with broken framing, an unsupported transfer coding and a client giving up on a stalled
body each ended as a 500 `internal` (most with a traceback), and heads of any size were read
whole and served.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import GatewayProcess, start_gateway, stop_process, wait_until
from standins import VALID_COMPLETION, standin_server

from .helpers import error_shape_problem, metric_samples
from .raw_http import closed_by_peer, connect, read_response

KEY = f"rsk-{uuid.uuid4().hex}"
AUTH = f"Authorization: Bearer {KEY}\r\n".encode()
HOST = b"Host: 127.0.0.1\r\n"
JSON = b"Content-Type: application/json\r\n"
HEAD_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 2.0
MAX_HEADER_BYTES = 16_384


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    log_path: Path = tmp_path_factory.mktemp("malformed") / "gateway.log"
    with standin_server(body=VALID_COMPLETION) as model_url:
        started = start_gateway(
            {
                "RSAFE_MODEL_SERVER_URL": model_url,
                "RSAFE_REDIS_URL": "",
                "RSAFE_AUTH_ENABLED": "true",
                "RSAFE_API_KEY_HASHES": hashlib.sha256(KEY.encode()).hexdigest(),
                "RSAFE_HEADER_READ_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_S),
                "RSAFE_BODY_READ_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
                "RSAFE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
                "RSAFE_ACCESS_LOG_FLUSH_SECONDS": "0",
            },
            log_path,
        )
        yield started
        stop_process(started.process)


def post(path: bytes, extra: bytes, body_head: bytes) -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\n" + HOST + AUTH + JSON + extra + b"\r\n" + body_head


def get(extra: bytes, path: bytes = b"/v1/policies") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\n" + HOST + extra + b"\r\n"


Send = Callable[[socket.socket], None]


def then_close(data: bytes) -> Send:
    def send(sock: socket.socket) -> None:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # the client is gone (half-close; then closed)

    return send


def just(data: bytes) -> Send:
    return lambda sock: sock.sendall(data)


def stall_then_give_up(data: bytes) -> Send:
    def send(sock: socket.socket) -> None:
        sock.sendall(data)
        read_response(sock, timeout=0.3)  # wait a moment for an answer that cannot come yet
        sock.shutdown(socket.SHUT_WR)

    return send


CHUNKED = b"Transfer-Encoding: chunked\r\n"
CASES: dict[str, tuple[Send, set[int | None]]] = {
    # None: no answer (the client left first, or the server closed quietly).
    "aborted upload with a length": (
        then_close(post(b"/v1/moderate", b"Content-Length: 1000\r\n", b'{"input": "x')),
        {None},
    ),
    "aborted chunked upload": (
        then_close(post(b"/v1/moderate", CHUNKED, b'5\r\n{"inp\r\n')),
        {None},
    ),
    "aborted batch upload": (
        then_close(post(b"/v1/moderate/batch", b"Content-Length: 900\r\n", b'{"items": [')),
        {None},
    ),
    "broken chunk framing": (
        just(post(b"/v1/moderate", CHUNKED, b'5\r\n{"inp\r\nzz\r\nxx\r\n')),
        {400},
    ),
    "unsupported transfer coding": (
        just(post(b"/v1/moderate", b"Transfer-Encoding: gzip\r\n", b'{"input": "x"}')),
        {400},
    ),
    "client gives up on its stalled body": (
        stall_then_give_up(post(b"/v1/moderate", b"Content-Length: 40\r\n", b'{"input": ')),
        {None},
    ),
    "oversized header": (just(get(b"X-Big: " + b"a" * 100_000 + b"\r\n")), {431}),
    "thousands of headers": (
        just(get(b"".join(b"X-H%d: y\r\n" % i for i in range(3000)))),
        {431},
    ),
    "oversized url": (just(get(b"", b"/v1/policies/" + b"a" * 100_000)), {431}),
    "oversized head, streamed without end": (
        just(b"GET /v1/policies HTTP/1.1\r\n" + HOST + b"X-Endless: " + b"a" * 300_000),
        {431},
    ),
    "stalled head": (just(b"GET /v1/policies HTTP/1.1\r\n" + HOST + b"X-Half: "), {408}),
    "invalid UTF-8 in the key": (just(get(b"Authorization: Bearer \xff\xfe\xc3\x28\r\n")), {401}),
    "invalid UTF-8 in the request id": (just(get(AUTH + b"X-Request-ID: \xff\xfe\r\n")), {200}),
    "invalid UTF-8 in the content type": (
        just(
            b"POST /v1/moderate HTTP/1.1\r\n"
            + HOST
            + AUTH
            + b"Content-Type: application/\xffjson\r\nContent-Length: 14\r\n\r\n"
            + b'{"input": "x"}'
        ),
        {415},
    ),
    "invalid UTF-8 in the host": (just(b"GET /healthz HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n"), {421}),
    "NUL in a header": (just(get(b"X-A: a\x00b\r\n")), {400}),
    "obsolete header folding": (just(get(b"X-A: a\r\n b\r\n")), {400}),
    "two content lengths": (
        just(post(b"/v1/moderate", b"Content-Length: 14\r\nContent-Length: 15\r\n", b"{}")),
        {400},
    ),
}


def server_errors(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    return sum(
        value for labels, value in metric_samples(text, "rsafe_requests_total") if "5xx" in labels
    )


def in_flight(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    return metric_samples(text, "rsafe_requests_in_flight")[0][1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_traffic_is_a_4xx_or_a_quiet_close(gateway: GatewayProcess, case: str) -> None:
    send, expected = CASES[case]
    errors_before = server_errors(gateway)
    log_before = gateway.log_path.stat().st_size
    port = int(gateway.url.rsplit(":", 1)[1])
    with connect(port) as sock:
        send(sock)
        answer = read_response(sock, timeout=HEAD_TIMEOUT_S + BODY_TIMEOUT_S + 5)
        if answer is not None and answer.status in {408, 431}:
            assert closed_by_peer(sock, timeout=5), "the connection stayed open"
    status = answer.status if answer else None
    assert status in expected, (case, status, answer)
    if answer is not None and answer.status >= 400 and answer.body.startswith(b"{"):
        assert error_shape_problem(answer.json()) is None, answer.body
    # Every request the app saw has ended (the /metrics request itself is the one in flight).
    wait_until(lambda: in_flight(gateway) <= 1, 10, "the abandoned request to end", 0.05)
    assert server_errors(gateway) == errors_before, f"{case} was counted as a 5xx"
    with gateway.log_path.open("rb") as log:
        log.seek(log_before)
        written = log.read().decode(errors="replace")
    for sign in ("Traceback", "Exception in ASGI application", "unexpected error"):
        assert sign not in written, f"{case} logged {sign!r}:\n{written[-2000:]}"
    assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200


def test_legitimate_heads_and_pipelined_large_bodies_are_served(gateway: GatewayProcess) -> None:
    """The head limit counts heads only: a head just under it is served, and so are requests
    sent back to back on one connection whose large bodies share TCP reads with the next head."""
    port = int(gateway.url.rsplit(":", 1)[1])
    near_limit = get(AUTH + b"X-Pad: " + b"p" * (MAX_HEADER_BYTES - 200) + b"\r\n")
    body = b'{"input": "hello"' + b" " * 100_000 + b"}"  # JSON whitespace: a large valid body
    one = post(b"/v1/moderate", b"Content-Length: %d\r\n" % len(body), body)
    with connect(port) as sock:
        sock.sendall(near_limit + one * 3)
        answers = [read_response(sock, timeout=10) for _ in range(4)]
    assert [answer.status if answer else None for answer in answers] == [200] * 4
