"""One caller's hostile text must not stall the gateway: a REAL gateway process under fire.

The gateway's own CPU is the point here, so its model server is the recording stand-in (it answers
at once). Hostile requests of the maximum size are sent at once: a `<` followed by 31,999 spaces
(the old neutraliser backtracked over it for 15 s with the event loop blocked), a batch that fills
the body limit, an inline policy of the maximum size, `/v1/moderations` with many inputs, long
runs of combining marks and of invisible characters, and text that NFKC expands 18-fold.
Meanwhile `/healthz` is polled on its own connection: it must keep answering within 50 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from conftest import GatewayProcess, start_gateway, stop_process

from .helpers import ModelStandin, model_standin

MAX_TEXT = 32_000  # RSAFE_MAX_TEXT_CHARS (default)
MAX_POLICY = 16_000  # RSAFE_MAX_POLICY_CHARS (default)
MAX_BODY = 1_048_576  # RSAFE_MAX_BODY_BYTES (default)
HEALTHZ_BUDGET_S = 0.050

WHITESPACE_AFTER_LT = "<" + " " * (MAX_TEXT - 1)


def _batch(text_chars: int) -> dict[str, object]:
    """As many items of `text_chars` hostile characters as the batch and body limits allow."""
    item = {"input": "<" + " " * (text_chars - 1), "cache": False}
    count = min(64, (MAX_BODY - 64) // (len(orjson.dumps(item)) + 1))
    return {"items": [item] * count}


HOSTILE: list[tuple[str, dict[str, object]]] = [
    ("/v1/moderate", {"input": WHITESPACE_AFTER_LT, "cache": False}),
    ("/v1/moderate", {"input": "<" + " /" * (MAX_TEXT // 2 - 1), "cache": False}),
    ("/v1/moderate/batch", _batch(16_000)),
    (
        "/v1/moderate",
        {"input": "hi", "policy": "X1 - x\n<" + " " * (MAX_POLICY - 8), "cache": False},
    ),
    ("/v1/moderations", {"input": ["<" + " " * 15_999] * 60}),
    # Combining marks in reverse canonical order: CPython's NFKC sorts them quadratically.
    ("/v1/moderate", {"input": "a" + "\u0301" * 15_999 + "\u0316" * 16_000, "cache": False}),
    ("/v1/moderate", {"input": "a" + "\u0f73" * 31_999, "cache": False}),
    ("/v1/moderate", {"input": "a\u200b" * (MAX_TEXT // 2), "cache": False}),
    ("/v1/moderate", {"input": "\ufdfa" * MAX_TEXT, "cache": False}),  # 18x once normalised: 400
    ("/v1/moderate", {"input": "User\n" * (MAX_TEXT // 5), "cache": False}),
]


@pytest.fixture(scope="module")
def standin() -> Iterator[ModelStandin]:
    with model_standin() as model:
        yield model


@pytest.fixture(scope="module")
def gateway(
    standin: ModelStandin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    log_path: Path = tmp_path_factory.mktemp("text-dos") / "gateway.log"
    process = start_gateway(
        {"RSAFE_MODEL_SERVER_URL": standin.url, "RSAFE_REDIS_URL": ""}, log_path
    )
    yield process
    stop_process(process.process)


async def _post(session: aiohttp.ClientSession, path: str, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    async with session.post(
        path, data=body, headers={"Content-Type": "application/json"}
    ) as response:
        await response.read()
        return response.status, time.perf_counter() - started


def test_the_32k_whitespace_request_is_answered_fast(gateway: GatewayProcess) -> None:
    async def scenario() -> list[tuple[int, float]]:
        body = orjson.dumps({"input": WHITESPACE_AFTER_LT, "cache": False})
        async with aiohttp.ClientSession(gateway.url) as session:
            return [await _post(session, "/v1/moderate", body) for _ in range(5)]

    answers = asyncio.run(scenario())
    assert all(status == 200 for status, _ in answers), answers
    best = min(seconds for _, seconds in answers)
    print(f"\n32 KB '<' + spaces: best of 5 {best * 1000:.1f} ms (was 15.2 s)")
    assert best < 1.0  # generous on a shared machine: the old code took 15 s


def test_healthz_answers_while_hostile_max_size_requests_are_in_flight(
    gateway: GatewayProcess,
) -> None:
    """Three rounds of every hostile request at once, /healthz polled all along. The machine is
    shared (load from other processes shows as probe latency too), so the storm is tried up to
    three times and the best try must stay under budget: a real stall (seconds before the fix)
    fails every try."""
    bodies = [(path, orjson.dumps(payload)) for path, payload in HOSTILE]
    assert all(len(body) <= MAX_BODY for _, body in bodies)

    async def storm() -> tuple[list[tuple[int, float]], list[float]]:
        connector = aiohttp.TCPConnector(limit=len(bodies) * 3)
        async with (
            aiohttp.ClientSession(gateway.url, connector=connector) as hostile,
            aiohttp.ClientSession(gateway.url) as probe,
        ):
            await (await probe.get("/healthz")).read()  # the probe's connection is open
            rounds = [
                asyncio.create_task(_post(hostile, path, body))
                for _ in range(3)
                for path, body in bodies
            ]
            latencies: list[float] = []
            while not all(task.done() for task in rounds):
                started = time.perf_counter()
                async with probe.get("/healthz") as response:
                    await response.read()
                    assert response.status == 200
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.002)
            return [task.result() for task in rounds], latencies

    worst: list[float] = []
    for _ in range(3):
        answers, latencies = asyncio.run(storm())
        statuses = sorted({status for status, _ in answers})
        print(
            f"\n{len(answers)} hostile requests (statuses {statuses}), slowest "
            f"{max(seconds for _, seconds in answers) * 1000:.0f} ms; /healthz {len(latencies)} "
            f"probes, max {max(latencies) * 1000:.1f} ms, "
            f"p50 {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms"
        )
        assert set(statuses) <= {200, 400}, answers  # the 18-fold expansion is a 400; no 5xx
        assert len(latencies) >= 5  # the probes really ran while the hostile requests did
        worst.append(max(latencies))
        if worst[-1] < HEALTHZ_BUDGET_S:
            break
    assert min(worst) < HEALTHZ_BUDGET_S, worst
