"""The runner against a stand-in gateway (httpx.MockTransport): resume, error rows, limits."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsafe_gateway.evaluation.dataset import EvalItem
from rsafe_gateway.evaluation.runner import RunConfig, load_results, run_eval

CONFIG = RunConfig(concurrency=3, progress=False, retries=0)


def items(n: int = 20) -> list[EvalItem]:
    return [
        EvalItem(id=f"i{k:02d}", prompt=f"prompt {k}", label="unsafe" if k % 2 else "safe",
                 source="s", response="reply" if k % 3 == 0 else None)
        for k in range(n)
    ]  # fmt: skip


def decision(body: dict[str, Any]) -> dict[str, Any]:
    text = body["input"] if isinstance(body["input"], str) else body["input"][0]["content"]
    verdict = "unsafe" if int(text.split()[-1]) % 2 else "safe"
    return {
        "id": "mod-1", "verdict": verdict, "flagged": verdict == "unsafe", "categories": [],
        "reasoning": "r", "policy": {"id": "rsafe-default", "version": "1", "sha256": "h"},
        "model": "rsafe", "cached": False, "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        "latency_ms": 1.5, "fail_mode": None,
    }  # fmt: skip


async def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=decision(json.loads(request.content)))


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


async def test_writes_one_row_per_item(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    stats = await run_eval(items(), results, CONFIG, transport=httpx.MockTransport(ok))
    assert (stats.total, stats.completed, stats.errors, stats.skipped) == (20, 20, 0, 0)
    rows = load_results(results)
    assert sorted(rows) == [item.id for item in items()]
    row = rows["i03"]
    assert row.target == "response" and row.verdict == "unsafe" and row.flagged is True
    assert row.prompt_tokens == 3 and row.latency_ms == 1.5 and row.client_latency_ms is not None
    # rerun: nothing to do
    again = await run_eval(items(), results, CONFIG, transport=httpx.MockTransport(ok))
    assert (again.completed, again.skipped) == (0, 20)
    assert len(ids_in(results)) == 20


async def test_resume_after_kill_midway(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    answered = 0
    stalled = 0
    all_slots_stuck = asyncio.Event()

    async def stalls_after_five(request: httpx.Request) -> httpx.Response:
        nonlocal answered, stalled
        if answered >= 5:
            stalled += 1
            if stalled == CONFIG.concurrency:  # every slot waits: the 5 answers are written
                all_slots_stuck.set()
            await asyncio.Event().wait()  # never answers: the run is killed while waiting
        answered += 1
        return await ok(request)

    task = asyncio.create_task(
        run_eval(items(), results, CONFIG, transport=httpx.MockTransport(stalls_after_five))
    )
    await asyncio.wait_for(all_slots_stuck.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first = ids_in(results)
    assert len(first) == 5
    with results.open("a") as handle:  # a kill in the middle of a write leaves a torn line
        handle.write('{"id": "i19", "sour')

    stats = await run_eval(items(), results, CONFIG, transport=httpx.MockTransport(ok))
    assert stats.skipped == 5 and stats.completed == 15
    final = ids_in(results)
    assert len(final) == len(set(final)) == 20
    assert sorted(final) == [item.id for item in items()]
    assert final[:5] == first  # earlier decisions kept, not redone


async def test_limit_then_full_run(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    transport = httpx.MockTransport(ok)
    first = await run_eval(
        items(), results, RunConfig(limit=4, progress=False), transport=transport
    )
    assert first.completed == 4
    assert sorted(ids_in(results)) == ["i00", "i01", "i02", "i03"]
    rest = await run_eval(items(), results, CONFIG, transport=transport)
    assert rest.skipped == 4 and rest.completed == 16
    assert sorted(ids_in(results)) == [item.id for item in items()]


async def test_errors_are_rows_and_retried(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"

    async def flaky(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = body["input"] if isinstance(body["input"], str) else body["input"][0]["content"]
        if text.endswith(" 4"):
            error = {"type": "backend_unavailable", "message": "down", "param": None}
            return httpx.Response(503, json={"error": error})
        if text.endswith(" 7"):
            raise httpx.ConnectError("refused", request=request)
        return await ok(request)

    stats = await run_eval(items(10), results, CONFIG, transport=httpx.MockTransport(flaky))
    assert stats.completed == 10 and stats.errors == 2
    rows = load_results(results)
    assert rows["i04"].error is not None and rows["i04"].error.status == 503
    assert rows["i04"].error.type == "backend_unavailable" and rows["i04"].verdict is None
    assert rows["i07"].error is not None and rows["i07"].error.type == "transport"

    keep = RunConfig(progress=False, retries=0, retry_errors=False)
    skipped = await run_eval(items(10), results, keep, transport=httpx.MockTransport(ok))
    assert skipped.completed == 0

    retried = await run_eval(items(10), results, CONFIG, transport=httpx.MockTransport(ok))
    assert retried.completed == 2 and retried.errors == 0
    final = ids_in(results)
    assert len(final) == len(set(final)) == 10
    assert all(row.ok for row in load_results(results).values())


async def test_retries_transient_errors_and_sends_api_key(tmp_path: Path) -> None:
    seen: list[str | None] = []
    failures = {"left": 1}

    async def once_down(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503, json={"error": {"type": "backend_unavailable",
                                                       "message": "x", "param": None}})  # fmt: skip
        return await ok(request)

    config = RunConfig(progress=False, retries=1, api_key="sekrit", concurrency=1)
    stats = await run_eval(items(1), tmp_path / "r.jsonl", config, httpx.MockTransport(once_down))
    assert stats.errors == 0 and stats.completed == 1
    assert seen == ["Bearer sekrit", "Bearer sekrit"]


async def test_request_shape(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []

    async def capture(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/moderate"
        bodies.append(json.loads(request.content))
        return await ok(request)

    pf = [
        EvalItem(id="a", prompt="x 1", label="safe", source="s", policy_id="kids-education"),
        EvalItem(id="b", prompt="x 2", label="safe", source="s", policy="X1 - Pirates"),
    ]
    await run_eval(pf, tmp_path / "r.jsonl", RunConfig(progress=False, concurrency=1),
                   transport=httpx.MockTransport(capture))  # fmt: skip
    by_input = {b["input"]: b for b in bodies}
    assert by_input["x 1"] == {"input": "x 1", "target": "prompt", "policy_id": "kids-education",
                               "reasoning": True, "cache": False}  # fmt: skip
    assert by_input["x 2"]["policy"] == "X1 - Pirates" and "policy_id" not in by_input["x 2"]
    assert load_results(tmp_path / "r.jsonl")["b"].policy_id == "inline"
