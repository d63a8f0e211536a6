"""Faults under load, with the gateway as a REAL process in front of the REAL vLLM and Redis.

- Redis is SIGKILLed in the middle of a load: every request still answers 200.
- The model server hangs (SIGSTOP), then dies (SIGKILL), then comes back on the same port:
  every request answers within the deadline, in the shape the fail mode says; the circuit breaker
  opens (fast answers, gauge 1) and closes again once vLLM is back.
- SIGTERM in the middle of a load: in-flight requests finish, /readyz turns 503 during the delay
  while /healthz answers, and the process exits within the grace period.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import psutil
import pytest

from conftest import (
    GatewayProcess,
    RedisServer,
    VllmServer,
    ensure_tiny_model,
    free_port,
    start_gateway,
    start_vllm,
    stop_process,
    wait_until,
)

from .helpers import (
    ANSWER_FIELDS,
    Outcome,
    access_log,
    error_shape_problem,
    metric_samples,
    percentile,
    run_load,
)

pytestmark = pytest.mark.e2e


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:10]}]"


def kill_tree(pid: int) -> None:
    """SIGKILL a process this test started and every process it started (vLLM's engine core)."""
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = [*parent.children(recursive=True), parent]
    for process in family:
        try:
            process.send_signal(signal.SIGCONT)  # a stopped process must be able to die
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=15)


def breaker_state(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    return metric_samples(text, "rsafe_circuit_breaker_state")[0][1]


# ---- a. Redis dies during a load --------------------------------------------------------------


def test_redis_killed_during_load_fails_no_request(
    vllm_server: VllmServer, own_redis: RedisServer, tmp_path: Path
) -> None:
    gateway = start_gateway(
        {"RSAFE_MODEL_SERVER_URL": vllm_server.url, "RSAFE_REDIS_URL": own_redis.url},
        tmp_path / "gateway.log",
    )
    try:
        hot = [unique("a hot question") for _ in range(12)]
        # Fill the cache with the hot texts first, so the load really mixes hits and misses.
        warm = asyncio.run(run_load(gateway.url, [{"input": t} for t in hot], concurrency=12))
        assert all(o.status == 200 for o in warm)
        payloads = []
        for index in range(360):
            text = unique("a cold question") if index % 4 == 0 else hot[index % len(hot)]
            payloads.append({"input": text})
        killed_at: list[int] = []

        def kill_redis(done: int) -> None:
            if done == 120 and not killed_at:
                own_redis.process.kill()  # SIGKILL: no goodbye to the clients
                killed_at.append(done)

        started = time.monotonic()
        outcomes = asyncio.run(
            run_load(gateway.url, payloads, concurrency=16, on_progress=kill_redis)
        )
        elapsed = time.monotonic() - started
        assert killed_at == [120]
        assert own_redis.process.wait(timeout=10) is not None
        failed = [o for o in outcomes if o.status != 200]
        cached = sum(1 for o in outcomes if o.status == 200 and o.body["cached"])
        print(
            f"\nredis killed after 120/{len(payloads)} answers: {len(failed)} failed, "
            f"{cached} cache hits, max latency {max(o.latency for o in outcomes):.3f}s, "
            f"{elapsed:.1f}s"
        )
        assert not failed, [(o.status, o.failure, o.body) for o in failed[:5]]
        assert all(set(o.body) == ANSWER_FIELDS for o in outcomes)
        assert cached > 0
        assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200
    finally:
        stop_process(gateway.process)


# ---- b. The model server hangs, dies and comes back ------------------------------------------

FAULT_ENV = {
    "RSAFE_REQUEST_TIMEOUT_SECONDS": "5",
    "RSAFE_READ_TIMEOUT_SECONDS": "3",
    "RSAFE_CONNECT_TIMEOUT_SECONDS": "1",
    "RSAFE_CONNECT_RETRIES": "1",
    "RSAFE_BREAKER_FAILURE_THRESHOLD": "5",
    "RSAFE_BREAKER_RESET_SECONDS": "1",
}
DEADLINE = 5.0  # RSAFE_REQUEST_TIMEOUT_SECONDS
SLACK = 1.5  # HTTP and scheduling overhead on a busy 2-core machine


@pytest.fixture
def own_vllm(tmp_path: Path) -> Iterator[list[VllmServer]]:
    """A vLLM of this test's own (it gets killed); the list holds every incarnation."""
    servers = [start_vllm(ensure_tiny_model(), free_port(), tmp_path / "vllm-1.log")]
    yield servers
    for server in servers:
        kill_tree(server.process.pid)
        server.process.wait(timeout=15)


def check_fail_mode_answer(outcome: Outcome, mode: str) -> None:
    if mode == "closed":
        assert outcome.status in {503, 504}, (outcome.status, outcome.failure, outcome.body)
        assert error_shape_problem(outcome.body) is None, outcome.body
        expected = "backend_timeout" if outcome.status == 504 else "backend_unavailable"
        assert outcome.body["error"]["type"] == expected
    else:
        assert outcome.status == 200, (outcome.status, outcome.failure, outcome.body)
        body = outcome.body
        assert (body["verdict"], body["flagged"], body["fail_mode"]) == (
            "undetermined",
            False,
            "open",
        ), body


def test_model_server_hang_death_and_restart(
    own_vllm: list[VllmServer], redis_server: RedisServer, tmp_path: Path
) -> None:
    vllm = own_vllm[0]
    port = int(vllm.url.rsplit(":", 1)[1])
    gateways: dict[str, GatewayProcess] = {}
    try:
        for mode in ("closed", "open"):
            gateways[mode] = start_gateway(
                {
                    **FAULT_ENV,
                    "RSAFE_FAIL_MODE": mode,
                    "RSAFE_MODEL_SERVER_URL": vllm.url,
                    "RSAFE_REDIS_URL": redis_server.url,
                },
                tmp_path / f"gateway-{mode}.log",
            )
        for gateway in gateways.values():
            warm = httpx.post(
                f"{gateway.url}/v1/moderate", json={"input": unique("hi")}, timeout=30
            )
            assert warm.status_code == 200, warm.text
            assert breaker_state(gateway) == 0

        async def both(count: int) -> dict[str, list[Outcome]]:
            loads = {
                mode: run_load(
                    gateway.url,
                    [{"input": unique("q"), "cache": False} for _ in range(count)],
                    concurrency=16,
                    request_timeout_s=DEADLINE * 4,
                )
                for mode, gateway in gateways.items()
            }
            results = await asyncio.gather(*loads.values())
            return dict(zip(loads, results, strict=True))

        # 1. The model server hangs: it accepts connections and never answers.
        os.kill(vllm.process.pid, signal.SIGSTOP)
        hung = asyncio.run(both(32))
        for mode, outcomes in hung.items():
            for outcome in outcomes:
                check_fail_mode_answer(outcome, mode)
            worst = max(o.latency for o in outcomes)
            print(f"\nvLLM hung, {mode}: 32 answered, max latency {worst:.2f}s")
            assert worst <= DEADLINE + SLACK
        # 16 were in flight when the first deadlines fired; the breaker answered the rest at once.
        assert sum(o.status == 504 for o in hung["closed"]) >= 5
        assert sum(o.latency < 0.5 for o in hung["closed"]) >= 8

        # 2. The model server dies (SIGKILL, engine core included): connections are refused.
        kill_tree(vllm.process.pid)
        fast: dict[str, list[float]] = {}
        for mode, gateway in gateways.items():
            latencies = []
            with httpx.Client(base_url=gateway.url, timeout=DEADLINE * 4) as client:
                for _ in range(60):
                    started = time.monotonic()
                    response = client.post("/v1/moderate", json={"input": unique("q")})
                    latencies.append(time.monotonic() - started)
                    check_fail_mode_answer(
                        Outcome(response.status_code, 0, response.json(), {}, 0), mode
                    )
            fast[mode] = latencies
            state = breaker_state(gateway)
            print(
                f"vLLM dead, {mode}: breaker state {state:.0f}; latency p50 "
                f"{percentile(latencies, 0.5) * 1000:.1f} ms, p99 "
                f"{percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
            )
            assert state == 1
            assert percentile(latencies, 0.5) < 0.05
            assert max(latencies) < 0.5
        closed_errors = httpx.post(
            f"{gateways['closed'].url}/v1/moderate", json={"input": unique("q")}, timeout=10
        ).json()
        assert "circuit breaker" in closed_errors["error"]["message"], closed_errors

        # 3. The model server comes back on the same port: the breaker closes, answers resume.
        restarted_at = time.monotonic()
        own_vllm.append(start_vllm(ensure_tiny_model(), port, tmp_path / "vllm-2.log"))
        healthy_at = time.monotonic()
        for mode, gateway in gateways.items():

            def answers(gateway: GatewayProcess = gateway) -> bool:
                response = httpx.post(
                    f"{gateway.url}/v1/moderate", json={"input": unique("back?")}, timeout=30
                )
                return response.status_code == 200 and response.json()["verdict"] != "undetermined"

            wait_until(answers, 15, f"{mode} gateway answering again")
            recovered = time.monotonic() - healthy_at
            outcomes = asyncio.run(
                run_load(
                    gateway.url,
                    [{"input": unique("q"), "cache": False} for _ in range(16)],
                    concurrency=8,
                )
            )
            assert all(o.status == 200 for o in outcomes), [(o.status, o.body) for o in outcomes]
            assert all(o.body["verdict"] in {"safe", "unsafe"} for o in outcomes)
            assert breaker_state(gateway) == 0
            print(
                f"vLLM restarted in {healthy_at - restarted_at:.1f}s; {mode} gateway answering "
                f"{recovered:.2f}s after vLLM was healthy"
            )
    finally:
        for gateway in gateways.values():
            stop_process(gateway.process)


# ---- c. SIGTERM during a load ----------------------------------------------------------------


async def _probe(url: str, until: float, seen: list[tuple[float, int, int]]) -> None:
    """Poll /readyz and /healthz until the listener is gone (or `until`)."""
    timeout = aiohttp.ClientTimeout(total=2)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(url, timeout=timeout, connector=connector) as session:
        while time.monotonic() < until:
            sent = time.monotonic()
            statuses = []
            for path in ("/readyz", "/healthz"):
                try:
                    async with session.get(path) as response:
                        await response.read()
                        statuses.append(response.status)
                except (aiohttp.ClientError, TimeoutError):
                    statuses.append(0)
            seen.append((sent, *statuses))  # type: ignore[arg-type]
            if statuses == [0, 0]:
                return
            await asyncio.sleep(0.025)


def test_sigterm_during_load_drops_no_accepted_request(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    delay, grace = 2.0, 10.0  # a 2 s drain window: wide enough on a loaded 2-core machine
    gateway = start_gateway(
        {
            "RSAFE_MODEL_SERVER_URL": vllm_server.url,
            "RSAFE_REDIS_URL": redis_server.url,
            "RSAFE_SHUTDOWN_DELAY_SECONDS": str(delay),
            "RSAFE_SHUTDOWN_GRACE_SECONDS": str(grace),
        },
        tmp_path / "gateway.log",
    )
    signalled: list[float] = []
    probes: list[tuple[float, int, int]] = []

    def terminate(done: int) -> None:
        if done == 40 and not signalled:
            signalled.append(time.monotonic())
            os.kill(gateway.process.pid, signal.SIGTERM)

    ids = [f"term-{index}" for index in range(400)]

    async def scenario() -> list[Outcome]:
        payloads = [{"input": unique("in flight"), "cache": False} for _ in ids]
        load = asyncio.create_task(
            run_load(
                gateway.url,
                payloads,
                concurrency=16,
                on_progress=terminate,
                fresh=True,  # a new connection per request: refusals are visible as such
                request_ids=ids,
            )
        )
        probe = asyncio.create_task(_probe(gateway.url, time.monotonic() + 60, probes))
        outcomes = await load
        await probe
        return outcomes

    try:
        outcomes = asyncio.run(scenario())
        exit_code = gateway.process.wait(timeout=delay + grace + 10)
        exited_after = time.monotonic() - signalled[0]
    finally:
        stop_process(gateway.process)
    # Accepted = reached the app (it logs one access line per request, whatever happens to it).
    logged = access_log(gateway.log_path)
    by_id = dict(zip(ids, outcomes, strict=True))
    accepted = [request_id for request_id in ids if request_id in logged]
    completed = [i for i in accepted if by_id[i].status == 200 and logged[i]["status"] == 200]
    dropped = [(i, by_id[i].status, by_id[i].failure, logged[i]["status"]) for i in accepted
               if i not in completed]  # fmt: skip
    not_accepted = [by_id[i] for i in ids if i not in logged]
    after_signal = [i for i in completed if by_id[i].started >= signalled[0]]
    print(
        f"\nSIGTERM after 40 answers: {len(accepted)} accepted, {len(completed)} completed with "
        f"200 ({len(after_signal)} sent after the signal), {len(dropped)} dropped; "
        f"{len(not_accepted)} not accepted once the listener closed "
        f"({sorted({o.failure or str(o.status) for o in not_accepted})}); "
        f"exit code {exit_code} after {exited_after:.2f}s"
    )
    assert not dropped, dropped[:5]
    assert all(by_id[i].status == 200 for i in completed)
    # What never reached the app got no HTTP answer at all (refused or reset by the closed listener).
    assert all(o.status == 0 for o in not_accepted), [(o.status, o.body) for o in not_accepted[:5]]
    assert not_accepted, "the listener never closed during the load"
    assert after_signal, "no request was served during the shutdown delay"
    # From the signal on /readyz is never 200 (its 503 during the delay is checked, without a
    # load that can starve the probe, in test_readiness_turns_false_first_on_sigterm).
    late = [probe for probe in probes if probe[0] >= signalled[0]]
    assert all(ready != 200 for _, ready, _ in late), late
    assert exited_after <= delay + grace + 2
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete: -15 is a clean exit too.
    assert exit_code in {0, -signal.SIGTERM}, f"gateway exit code {exit_code}"


def test_readiness_turns_false_first_on_sigterm(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    gateway = start_gateway(
        {
            "RSAFE_MODEL_SERVER_URL": vllm_server.url,
            "RSAFE_REDIS_URL": redis_server.url,
            "RSAFE_SHUTDOWN_DELAY_SECONDS": "5",
            "RSAFE_SHUTDOWN_GRACE_SECONDS": "5",
        },
        tmp_path / "gateway.log",
    )
    try:
        wait_until(
            lambda: httpx.get(f"{gateway.url}/readyz", timeout=5).status_code == 200, 30, "ready"
        )
        os.kill(gateway.process.pid, signal.SIGTERM)
        wait_until(
            lambda: httpx.get(f"{gateway.url}/readyz", timeout=5).status_code == 503,
            5,
            "/readyz turning 503 after SIGTERM",
            interval=0.05,
        )
        # Still serving while draining: liveness and real requests answer.
        assert httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200
        answer = httpx.post(
            f"{gateway.url}/v1/moderate", json={"input": unique("draining")}, timeout=30
        )
        assert answer.status_code == 200
        assert gateway.process.wait(timeout=20) in {0, -signal.SIGTERM}
    finally:
        stop_process(gateway.process)
