"""Admission, read deadlines and rate limits by cost, against REAL gateway processes (uvicorn)
with a model stand-in that counts its calls (fault injection: nothing here judges content).

- The key and the rate limit are decided from the request's head: a caller without a key, or
  over its limit, is answered without the gateway waiting for its body.
- A stalled or dripping body gets 408 and its connection closed; after a flood of half-sent
  uploads the gateway's memory comes back to where it was.
- A token per model call: batch items and /v1/moderations inputs count each, cache hits and
  identical items do not; a request the bucket cannot pay for is refused whole, before any call.
- A key has at most RSAFE_MAX_CONCURRENT_REQUESTS_PER_KEY requests in progress.
- X-Forwarded-For picks the rate-limit bucket only when it comes from a trusted proxy.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import GatewayProcess, wait_until
from standins import CallLog, watching_server

from .helpers import assert_error, gateway_stack, rss_mib, stacked_gateway
from .raw_http import closed_by_peer, connect, head, read_response

KEYS = [f"rsk-{uuid.uuid4().hex}" for _ in range(8)]
KEY_HASHES = ",".join(hashlib.sha256(key.encode()).hexdigest() for key in KEYS)
JSON = {"Content-Type": "application/json"}
BODY_TIMEOUT_S = 1.0


def bearer(index: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[index]}"}


def port_of(gateway: GatewayProcess) -> int:
    return int(gateway.url.rsplit(":", 1)[1])


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:12]}]"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExitStack, Path]]:
    with gateway_stack(tmp_path_factory.mktemp("admission")) as stack:
        yield stack


gateway = stacked_gateway


@pytest.fixture(scope="module")
def model(stack: tuple[ExitStack, Path]) -> tuple[str, CallLog]:
    return stack[0].enter_context(watching_server(delay=1.0))


@pytest.fixture(scope="module")
def limited(stack: tuple[ExitStack, Path], model: tuple[str, CallLog]) -> GatewayProcess:
    """Keys on; 5 tokens per key, refilled one per 50 s; at most 2 requests in progress per key."""
    return gateway(
        stack,
        "limited",
        {
            "RSAFE_MODEL_SERVER_URL": model[0],
            "RSAFE_AUTH_ENABLED": "true",
            "RSAFE_API_KEY_HASHES": KEY_HASHES,
            "RSAFE_RATE_LIMIT_PER_SECOND": "0.02",
            "RSAFE_RATE_LIMIT_BURST": "5",
            "RSAFE_MAX_CONCURRENT_REQUESTS_PER_KEY": "2",
        },
    )


@pytest.fixture(scope="module")
def deadlined(stack: tuple[ExitStack, Path], model: tuple[str, CallLog]) -> GatewayProcess:
    return gateway(
        stack,
        "deadlined",
        {
            "RSAFE_MODEL_SERVER_URL": model[0],
            "RSAFE_BODY_READ_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
        },
    )


# ---- Admission before reading -----------------------------------------------------------------


PENDING_BODY = {  # a body announced, and not sent (its first bytes at most)
    "content-length": ({"Content-Length": "500000"}, b""),
    "chunked": ({"Transfer-Encoding": "chunked"}, b'10\r\n{"input": "start\r\n'),
}


@pytest.mark.parametrize("framing", sorted(PENDING_BODY))
def test_a_caller_without_a_key_is_answered_before_its_body_is_read(
    limited: GatewayProcess, framing: str
) -> None:
    framing_headers, first_bytes = PENDING_BODY[framing]
    with connect(port_of(limited)) as sock:
        sock.sendall(head("POST", "/v1/moderate", {**JSON, **framing_headers}) + first_bytes)
        answer = read_response(sock, timeout=5)  # the rest of the body never comes
    assert answer is not None, "the gateway waited for an unauthenticated caller's body"
    assert answer.status == 401
    assert_error(answer.json(), "unauthorized")


@pytest.mark.parametrize(("framing", "key"), [("content-length", 0), ("chunked", 6)])
def test_a_caller_over_its_limit_is_answered_before_its_body_is_read(
    limited: GatewayProcess, framing: str, key: int
) -> None:
    with httpx.Client(base_url=limited.url, headers=bearer(key), timeout=10) as client:
        for _ in range(5):
            assert client.get("/v1/policies").status_code == 200
    framing_headers, first_bytes = PENDING_BODY[framing]
    with connect(port_of(limited)) as sock:
        sock.sendall(
            head("POST", "/v1/moderate", {**JSON, **bearer(key), **framing_headers}) + first_bytes
        )
        answer = read_response(sock, timeout=5)
    assert answer is not None, "the gateway waited for a rate-limited caller's body"
    assert answer.status == 429
    assert_error(answer.json(), "rate_limited")
    assert int(answer.headers["retry-after"]) >= 1


# ---- Body deadline ------------------------------------------------------------------------------


def stalled_body(sock: socket.socket, framing: str) -> None:
    if framing == "content-length":
        sock.sendall(head("POST", "/v1/moderate", {**JSON, "Content-Length": "4000"}))
        sock.sendall(b'{"input": "only the start of the body')
    else:
        sock.sendall(head("POST", "/v1/moderate", {**JSON, "Transfer-Encoding": "chunked"}))
        sock.sendall(b'10\r\n{"input": "start\r\n')


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_stalled_body_gets_408_and_its_connection_closed(
    deadlined: GatewayProcess, framing: str
) -> None:
    with connect(port_of(deadlined)) as sock:
        started = time.monotonic()
        stalled_body(sock, framing)
        answer = read_response(sock, timeout=BODY_TIMEOUT_S + 10)
        assert answer is not None, "a stalled body was never timed out"
        waited = time.monotonic() - started
        assert answer.status == 408, answer
        assert_error(answer.json(), "invalid_request")
        assert closed_by_peer(sock, timeout=5), "the connection stayed open after the 408"
    print(f"\n{framing}: 408 after {waited:.2f} s (deadline {BODY_TIMEOUT_S} s)")
    assert waited >= BODY_TIMEOUT_S


def test_a_dripping_body_gets_408_too(deadlined: GatewayProcess) -> None:
    """The deadline is for the whole body: a byte now and then does not keep it alive."""
    with connect(port_of(deadlined)) as sock:
        sock.sendall(head("POST", "/v1/moderate", {**JSON, "Content-Length": "4000"}))
        answer = None
        deadline = time.monotonic() + BODY_TIMEOUT_S + 10
        while answer is None and time.monotonic() < deadline:
            sock.sendall(b" ")
            answer = read_response(sock, timeout=0.2)
    assert answer is not None and answer.status == 408, answer


def test_a_complete_body_is_still_served(deadlined: GatewayProcess) -> None:
    response = httpx.post(f"{deadlined.url}/v1/moderate", json={"input": unique("hi")}, timeout=10)
    assert response.status_code == 200, response.text


def test_memory_comes_back_after_a_flood_of_half_sent_uploads(
    stack: tuple[ExitStack, Path], model: tuple[str, CallLog]
) -> None:
    flooded = gateway(
        stack,
        "flooded",
        {"RSAFE_MODEL_SERVER_URL": model[0], "RSAFE_BODY_READ_TIMEOUT_SECONDS": "3"},
    )
    pid = flooded.process.pid
    for _ in range(20):  # warm up: imports, pools, first allocations
        httpx.post(f"{flooded.url}/v1/moderate", json={"input": unique("warm")}, timeout=10)
    baseline = rss_mib(pid)
    connections = 150
    part = b"a" * 65536
    sockets = [connect(port_of(flooded)) for _ in range(connections)]
    try:
        for sock in sockets:
            sock.sendall(head("POST", "/v1/moderate", {**JSON, "Transfer-Encoding": "chunked"}))
            sock.sendall(b'10000\r\n{"input": "' + part[:-11] + b"\r\n")
            for _ in range(7):  # 512 KiB in all, then the upload stalls
                sock.sendall(b"10000\r\n" + part + b"\r\n")
        wait_until(lambda: rss_mib(pid) > baseline + 40, 20, "the flood to be buffered", 0.1)
        peak = rss_mib(pid)
        deadline = time.monotonic() + 20  # for all of them together
        answers = [
            read_response(sock, timeout=max(0.01, deadline - time.monotonic())) for sock in sockets
        ]
    finally:
        for sock in sockets:
            sock.close()
    statuses = {answer.status if answer else None for answer in answers}
    assert statuses == {408}, statuses

    def back_to_baseline() -> bool:
        return rss_mib(pid) < baseline + 15

    try:
        wait_until(back_to_baseline, 15, "RSS back to its baseline", 0.2)
    finally:
        print(
            f"\nRSS: {baseline:.1f} MiB before, {peak:.1f} MiB with {connections} half-sent "
            f"uploads of 512 KiB, {rss_mib(pid):.1f} MiB after their 408s"
        )
    healthy = httpx.post(f"{flooded.url}/v1/moderate", json={"input": unique("after")}, timeout=10)
    assert healthy.status_code == 200


# ---- Rate limits by cost -------------------------------------------------------------------------


def items(count: int, cache: bool = False, text: str | None = None) -> list[dict[str, object]]:
    return [{"input": text or unique(f"item {i}"), "cache": cache} for i in range(count)]


def test_a_batch_costs_a_token_per_model_call_and_is_refused_whole(
    limited: GatewayProcess, model: tuple[str, CallLog]
) -> None:
    calls = model[1]
    with httpx.Client(base_url=limited.url, headers=bearer(1), timeout=30) as client:
        before = calls.begun
        too_big = client.post("/v1/moderate/batch", json={"items": items(8)})
        assert too_big.status_code == 429, too_big.text  # 8 calls > a burst of 5: never payable
        assert_error(too_big.json(), "rate_limited")
        assert "retry-after" not in too_big.headers
        assert calls.begun == before, "a refused batch made model calls"

        paid = client.post("/v1/moderate/batch", json={"items": items(3)})
        assert paid.status_code == 200, paid.text
        assert calls.begun == before + 3
        # 1 (the refused batch's admission) + 3 taken: 1 token left, this one needs 2.
        unpaid = client.post("/v1/moderate/batch", json={"items": items(2)})
        assert unpaid.status_code == 429, unpaid.text
        assert int(unpaid.headers["retry-after"]) >= 1
        assert calls.begun == before + 3


def test_openai_inputs_cost_a_token_each(
    limited: GatewayProcess, model: tuple[str, CallLog]
) -> None:
    calls = model[1]
    before = calls.begun
    with httpx.Client(base_url=limited.url, headers=bearer(2), timeout=30) as client:
        refused = client.post(
            "/v1/moderations", json={"input": [unique(f"text {i}") for i in range(6)]}
        )
        assert refused.status_code == 429, refused.text
        assert calls.begun == before
        served = client.post(
            "/v1/moderations", json={"input": [unique(f"text {i}") for i in range(3)]}
        )
        assert served.status_code == 200, served.text
        assert calls.begun == before + 3


def test_cache_hits_and_identical_items_cost_no_extra_token(
    limited: GatewayProcess, model: tuple[str, CallLog]
) -> None:
    calls = model[1]
    texts = items(3, cache=True)
    with httpx.Client(base_url=limited.url, headers=bearer(3), timeout=30) as client:
        before = calls.begun
        first = client.post("/v1/moderate/batch", json={"items": texts})  # 3 calls: 3 tokens
        assert first.status_code == 200, first.text
        again = client.post("/v1/moderate/batch", json={"items": texts})  # all hits: 1 token
        assert again.status_code == 200, again.text
        assert all(result["cached"] for result in again.json()["results"])
        same = client.post(  # one new text three times: one shared call, 1 token
            "/v1/moderate/batch", json={"items": items(3, cache=True, text=unique("same"))}
        )
        assert same.status_code == 200, same.text
        assert calls.begun == before + 4
        # 3 + 1 + 1 tokens spent: the bucket of 5 is empty, even a hit is refused now.
        assert client.post("/v1/moderate/batch", json={"items": texts}).status_code == 429


def test_a_key_has_at_most_its_cap_of_requests_in_progress(
    limited: GatewayProcess, model: tuple[str, CallLog]
) -> None:
    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with httpx.AsyncClient(base_url=limited.url, timeout=30) as client:

            def slow(key: int) -> Coroutine[Any, Any, httpx.Response]:
                body = {"input": unique("SLOW request"), "cache": False}
                return client.post("/v1/moderate", json=body, headers=bearer(key))

            capped = asyncio.gather(*(slow(4) for _ in range(3)))
            other = slow(5)  # another key is not held back by this one's cap
            answers, other_answer = await asyncio.gather(capped, other)
            return list(answers), other_answer

    answers, other = asyncio.run(scenario())
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 200, 429], [a.text for a in answers]
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert_error(refused.json(), "rate_limited")
    assert refused.headers["retry-after"] == "1"
    assert other.status_code == 200, other.text


# ---- X-Forwarded-For --------------------------------------------------------------------------


def per_address(stack: tuple[ExitStack, Path], model_url: str, trusted: str) -> GatewayProcess:
    return gateway(
        stack,
        f"per-address-{trusted or 'none'}",
        {
            "RSAFE_MODEL_SERVER_URL": model_url,
            "RSAFE_RATE_LIMIT_PER_SECOND": "0.02",
            "RSAFE_RATE_LIMIT_BURST": "2",
            "RSAFE_TRUSTED_PROXIES": trusted,
        },
    )


def statuses_with_forwarded_for(gateway: GatewayProcess, addresses: list[str]) -> list[int]:
    return [
        httpx.get(
            f"{gateway.url}/v1/policies", headers={"X-Forwarded-For": address}, timeout=10
        ).status_code
        for address in addresses
    ]


def test_forwarded_for_from_an_untrusted_peer_does_not_pick_the_bucket(
    stack: tuple[ExitStack, Path], model: tuple[str, CallLog]
) -> None:
    untrusting = per_address(stack, model[0], "")
    # Loopback is not a trusted proxy by default: all three share the peer's bucket of 2.
    assert statuses_with_forwarded_for(untrusting, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [
        200,
        200,
        429,
    ]


def test_forwarded_for_from_a_trusted_proxy_is_the_client(
    stack: tuple[ExitStack, Path], model: tuple[str, CallLog]
) -> None:
    trusting = per_address(stack, model[0], "127.0.0.1")
    distinct = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"]
    assert statuses_with_forwarded_for(trusting, distinct) == [200] * 4
    repeated = ["10.0.1.9"] * 3
    assert statuses_with_forwarded_for(trusting, repeated) == [200, 200, 429]
