#!/usr/bin/env python
"""CPU cost of the gateway's own work per request, without sockets or a load generator.

    .venv/bin/python scripts/profile_gateway.py hit              # µs per cache hit vs bare FastAPI
    .venv/bin/python scripts/profile_gateway.py hit --profile    # plus a cProfile of the hits
    .venv/bin/python scripts/profile_gateway.py miss --model-url http://127.0.0.1:8000 \\
        --redis-url redis://127.0.0.1:6379/0 --profile           # CPU ms per miss (real vLLM)

The ASGI app is called directly (its lifespan run), so what is timed is the gateway process's own
Python work, the part the benchmark's ratios are about. `hit`: the one model call that fills the
cache goes to a stand-in answer and Redis is off (hits come from the in-process LRU, as in
production). `miss`: unique texts, 16 at a time, against a real model server and Redis; the time
reported is this process's CPU time (the model server's own work runs in its processes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import time
import uuid
from typing import Any

import devstack  # noqa: F401 (first: this checkout's gateway sources on the path)
import orjson
import uvloop
from gateway_bench.bare_app import bare_app  # the benchmark's baseline endpoint

from rsafe_gateway.backend import Completion

HIT_BODY = orjson.dumps({"input": "How do I bake sourdough bread at home?", "reasoning": True})


async def call(app: Any, body: bytes, path: str = "/v1/moderate") -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would deliver it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def time_hits(app: Any, count: int) -> float:
    """Wall µs per request, one at a time (nothing else runs: wall ≈ CPU)."""
    started = time.perf_counter()
    for _ in range(count):
        status, answer = await call(app, HIT_BODY)
        assert status == 200, answer
    return (time.perf_counter() - started) / count * 1e6


async def cpu_per_miss(app: Any, count: int, concurrency: int) -> float:
    """This process's CPU ms per unique request, `concurrency` in flight."""
    tag = uuid.uuid4().hex[:8]
    bodies = [orjson.dumps({"input": f"[{tag}-{i}] How do I fix a bike?"}) for i in range(count)]
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            status, answer = await call(app, body)
            assert status == 200, answer

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / count * 1000


def print_profile(profiler: cProfile.Profile) -> None:
    stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
    stats.print_stats(int(os.environ.get("TOP", "35")))


def silence_access_log() -> None:
    # Lines go to stderr in production; here to a null stream (same formatting and write cost).
    null_stream = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the run)
    handler = logging.getLogger("rsafe_gateway").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(null_stream)


async def profile_hits(count: int, profile: bool) -> None:
    from rsafe_gateway.app import create_app

    os.environ["RSAFE_REDIS_URL"] = ""
    os.environ.setdefault("RSAFE_MODEL_SERVER_URL", "http://127.0.0.1:9")
    app = create_app()
    async with app.router.lifespan_context(app):

        async def answer(payload: dict[str, Any], request_id: str) -> Completion:
            return Completion("<think>baking is fine</think> \\boxed{safe}", 120, 12, "stop")

        app.state.gateway.service._backend.complete = answer
        status, first = await call(app, HIT_BODY)
        assert status == 200, first
        silence_access_log()
        await time_hits(app, count // 10)  # warm up
        gateway_us = await time_hits(app, count)
        bare = bare_app(first)
        await time_hits(bare, count // 10)
        bare_us = await time_hits(bare, count)
        print(f"gateway hit: {gateway_us:7.1f} µs/request")
        print(f"bare       : {bare_us:7.1f} µs/request  (ratio {bare_us / gateway_us:.2f})")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await time_hits(app, count)
            profiler.disable()
            print_profile(profiler)


async def profile_misses(count: int, concurrency: int, profile: bool) -> None:
    from rsafe_gateway.app import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        silence_access_log()
        await cpu_per_miss(app, concurrency, concurrency)  # connections, first compilations
        cpu_ms = await cpu_per_miss(app, count, concurrency)
        print(f"gateway miss: {cpu_ms:.3f} CPU ms/request ({concurrency} in flight)")
        if profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            await cpu_per_miss(app, count, concurrency)
            profiler.disable()
            print_profile(profiler)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("path", choices=["hit", "miss"])
    parser.add_argument("--count", type=int, help="requests (default: 20000 hits, 400 misses)")
    parser.add_argument("--concurrency", type=int, default=16, help="misses in flight")
    parser.add_argument("--model-url", help="the model server (miss)")
    parser.add_argument("--redis-url", help="Redis (miss)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile (CPU time)")
    args = parser.parse_args()
    if args.path == "hit":
        uvloop.run(profile_hits(args.count or 20_000, args.profile))
        return
    if not args.model_url:
        parser.error("miss needs --model-url (a running vLLM; scripts/run-local.sh starts one)")
    os.environ["RSAFE_MODEL_SERVER_URL"] = args.model_url
    os.environ["RSAFE_REDIS_URL"] = args.redis_url or ""
    uvloop.run(profile_misses(args.count or 400, args.concurrency, args.profile))


if __name__ == "__main__":
    main()
