"""Isolation between requests and callers, and no work for answers nobody reads, against REAL
gateway processes (uvicorn) with model stand-ins (fault injection and call counting).

- An error from a shared (single-flight) model call reaches each waiting request as its own
  object: what one request does to its error (a batch naming the item's field) is not seen by
  another.
- With several API keys, the cache is per key by default: no `cached: true`, reasoning or shared
  call tells a key what another submitted; RSAFE_CACHE_SCOPE=shared shares it. The hit-rate cost
  is measured and printed.
- /v1/moderations validates every input before any call and cancels the calls still running when
  one input fails; a batch or /v1/moderations request whose client disconnects cancels its calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from conftest import GatewayProcess, wait_until
from standins import CallLog, standin_server, watching_server

from .helpers import assert_error, gateway_stack, metric_samples, stacked_gateway
from .raw_http import connect, head

KEYS = [f"rsk-{uuid.uuid4().hex}" for _ in range(4)]
KEY_HASHES = ",".join(hashlib.sha256(key.encode()).hexdigest() for key in KEYS)
CONTEXT_OVERFLOW = json.dumps(
    {"error": {"message": "This model's maximum context length is 8192 tokens"}}
).encode()


def bearer(index: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[index]}"}


TAG = re.compile(r"\[[0-9a-f]{12}\]")


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:12]}]"


def metric(gateway: GatewayProcess, name: str) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    return sum(value for _, value in metric_samples(text, name))


def server_errors(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    samples = metric_samples(text, "rsafe_requests_total")
    return sum(value for labels, value in samples if "5xx" in labels)


def in_flight(gateway: GatewayProcess) -> float:
    return metric(gateway, "rsafe_requests_in_flight")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExitStack, Path]]:
    with gateway_stack(tmp_path_factory.mktemp("isolation")) as stack:
        yield stack


gateway = stacked_gateway


@pytest.fixture(scope="module")
def model(stack: tuple[ExitStack, Path]) -> tuple[str, CallLog]:
    return stack[0].enter_context(watching_server(delay=5.0))


# ---- Errors are never shared ------------------------------------------------------------------


def test_each_request_sharing_a_failed_call_gets_its_own_error(
    stack: tuple[ExitStack, Path],
) -> None:
    overflowing = stack[0].enter_context(
        standin_server(status=400, body=CONTEXT_OVERFLOW, delay=1.0)
    )
    shared = gateway(stack, "overflow", {"RSAFE_MODEL_SERVER_URL": overflowing})
    text = unique("a text the model cannot take")

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=shared.url, timeout=30) as client:
            batch = client.post("/v1/moderate/batch", json={"items": [{"input": text}] * 3})
            single = client.post("/v1/moderate", json={"input": text})
            return await asyncio.gather(batch, single)

    batch, single = asyncio.run(scenario())
    # They did share one call: the single request and two of the items joined it.
    assert metric(shared, "rsafe_singleflight_joins_total") >= 3
    assert batch.status_code == 200, batch.text
    for index, result in enumerate(batch.json()["results"]):
        assert_error(result, "invalid_request", f"items[{index}].input")
    assert single.status_code == 400, single.text
    assert_error(single.json(), "invalid_request", "input")


# ---- The cache is per key -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scoped(stack: tuple[ExitStack, Path], model: tuple[str, CallLog]) -> dict[str, GatewayProcess]:
    keyed = {"RSAFE_AUTH_ENABLED": "true", "RSAFE_API_KEY_HASHES": KEY_HASHES}
    base = {"RSAFE_MODEL_SERVER_URL": model[0], **keyed}
    return {
        "": gateway(stack, "scope-default", base),  # per key, without being asked
        "shared": gateway(stack, "scope-shared", {**base, "RSAFE_CACHE_SCOPE": "shared"}),
    }


def moderate(gateway: GatewayProcess, key: int, text: str) -> dict[str, object]:
    response = httpx.post(
        f"{gateway.url}/v1/moderate", json={"input": text}, headers=bearer(key), timeout=30
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_one_key_never_gets_another_keys_cached_decision(
    scoped: dict[str, GatewayProcess], model: tuple[str, CallLog]
) -> None:
    calls = model[1]
    text = unique("something only key 0 asked")
    before = calls.begun
    assert moderate(scoped[""], 0, text)["cached"] is False
    assert moderate(scoped[""], 0, text)["cached"] is True  # its own decision: a hit
    other = moderate(scoped[""], 1, text)
    assert other["cached"] is False
    assert calls.begun == before + 2  # key 1 was judged afresh, not answered from key 0's
    # With a shared scope, key 1 is answered from key 0's decision.
    assert moderate(scoped["shared"], 0, text)["cached"] is False
    assert moderate(scoped["shared"], 1, text)["cached"] is True


def test_two_keys_never_share_an_in_flight_call(
    scoped: dict[str, GatewayProcess], model: tuple[str, CallLog]
) -> None:
    calls = model[1]

    async def both(gateway: GatewayProcess, text: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post("/v1/moderate", json={"input": text}, headers=bearer(key))
                        for key in (2, 3)
                    )
                )
            )

    before = calls.begun
    answers = asyncio.run(both(scoped[""], unique("SLOW, asked by two keys at once")))
    assert [answer.status_code for answer in answers] == [200, 200]
    assert calls.begun == before + 2, "two keys shared one model call"
    before = calls.begun
    asyncio.run(both(scoped["shared"], unique("SLOW, asked by two keys at once")))
    assert calls.begun == before + 1  # a shared scope shares the call too


def test_hit_rate_of_a_per_key_cache_against_a_shared_one(
    scoped: dict[str, GatewayProcess],
) -> None:
    """4 keys each send the same 50 texts, twice: the hit rate each scope gives."""
    texts = [unique(f"common text {i}") for i in range(50)]
    rates: dict[str, float] = {}
    for scope, gateway in scoped.items():
        hits = answers = 0
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            for _ in range(2):
                for key in range(4):
                    for text in texts:
                        response = client.post(
                            "/v1/moderate", json={"input": text}, headers=bearer(key)
                        )
                        answers += 1
                        hits += bool(response.json()["cached"])
        rates[scope or "key"] = hits / answers
    print(
        f"\n4 keys x 50 texts x 2 rounds: hit rate {rates['key']:.1%} per key, "
        f"{rates['shared']:.1%} shared"
    )
    assert rates == {"key": 0.5, "shared": 0.875}


# ---- No calls for answers nobody reads ----------------------------------------------------------


@pytest.fixture(scope="module")
def open_gateway(stack: tuple[ExitStack, Path], model: tuple[str, CallLog]) -> GatewayProcess:
    return gateway(stack, "open", {"RSAFE_MODEL_SERVER_URL": model[0]})


def test_openai_inputs_are_all_validated_before_any_call(
    open_gateway: GatewayProcess, model: tuple[str, CallLog]
) -> None:
    calls = model[1]
    before = calls.begun
    response = httpx.post(
        f"{open_gateway.url}/v1/moderations",
        json={"input": [unique("SLOW fine"), unique("SLOW fine"), "bad \u0000 input"]},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    # An observation window, not a wait for readiness: calls started for the two fine inputs
    # would reach the stand-in within milliseconds (and last 5 s).
    window_ends = time.monotonic() + 2
    while time.monotonic() < window_ends:
        assert calls.begun == before, "calls were made for a request refused for its third input"
        time.sleep(0.05)


def test_openai_cancels_the_other_calls_when_one_input_fails(
    open_gateway: GatewayProcess, model: tuple[str, CallLog]
) -> None:
    calls = model[1]
    before = (calls.begun, calls.abandoned)
    inputs = [unique("FAIL-AT-ONCE")] + [unique(f"SLOW {i}") for i in range(6)]
    response = httpx.post(f"{open_gateway.url}/v1/moderations", json={"input": inputs}, timeout=30)
    assert response.status_code == 502, response.text  # closed fail mode: the failure is the answer
    assert_error(response.json(), "backend_error")
    assert calls.begun > before[0]  # the failing call reached the model server

    def every_slow_call_dropped() -> bool:
        # Each slow call (5 s) that reached the model server is dropped at once, not waited for;
        # on a loaded machine some are cancelled before they even start, which is as good.
        return calls.abandoned - before[1] == calls.begun - before[0] - 1

    wait_until(every_slow_call_dropped, 3, "the slow calls to be abandoned", 0.05)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/moderate/batch", {"items": [{"input": unique(f"SLOW {i}")} for i in range(5)]}),
        ("/v1/moderations", {"input": [unique(f"SLOW {i}") for i in range(5)]}),
    ],
)
def test_a_client_that_disconnects_cancels_its_calls(
    open_gateway: GatewayProcess, model: tuple[str, CallLog], path: str, payload: object
) -> None:
    calls = model[1]
    tags = TAG.findall(json.dumps(payload))
    assert len(tags) == 5
    errors_before = server_errors(open_gateway)
    body = json.dumps(payload).encode()
    port = int(open_gateway.url.rsplit(":", 1)[1])
    with connect(port) as sock:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        sock.sendall(head("POST", path, headers) + body)
        # Counted by their own tags: a late call from the test before may land meanwhile.
        wait_until(lambda: calls.tagged("begun", tags) == 5, 10, "the five calls to start", 0.05)
    # The client is gone: its five calls (5 s each) are dropped at once, not waited for.
    wait_until(
        lambda: calls.tagged("abandoned", tags) == 5, 3, "the five calls to be abandoned", 0.05
    )
    wait_until(lambda: in_flight(open_gateway) <= 1, 10, "the request to end", 0.05)
    assert server_errors(open_gateway) == errors_before, "the abandoned request counted as a 5xx"
