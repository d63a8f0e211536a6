"""Helpers of the attack tests: the recording model stand-in, the error contract, a bounded load.

The stand-in (tests/standins.py) is for fault injection and for reading the EXACT prompt the gateway
sends; every happy path of these tests that claims something about the model runs against the real
vLLM.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Any

import aiohttp
import psutil

from conftest import GatewayProcess, start_gateway, stop_process
from standins import ModelStandin as ModelStandin  # the one stand-in, re-exported for the tests
from standins import model_standin as model_standin

# The contract's error types (README "Errors"); `internal` is a bug and must never be seen.
ERROR_TYPES = frozenset(
    {
        "invalid_request",
        "payload_too_large",
        "unauthorized",
        "rate_limited",
        "backend_unavailable",
        "backend_timeout",
        "backend_error",
    }
)
ANSWER_FIELDS = frozenset(
    {
        "id", "verdict", "flagged", "categories", "reasoning", "policy", "model", "cached",
        "usage", "latency_ms", "fail_mode", "hidden_content", "model_family", "template_version",
    }
)  # fmt: skip


def error_shape_problem(body: Any) -> str | None:
    """Why `body` is not exactly {"error": {type, message, param}} with a contract type, or None."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"not exactly {{'error': …}}: {body!r}"[:300]
    error = body["error"]
    if not isinstance(error, dict) or set(error) != {"type", "message", "param"}:
        return f"error is not exactly {{type, message, param}}: {error!r}"[:300]
    if error["type"] not in ERROR_TYPES:
        return f"error.type {error['type']!r} is not in the contract"
    if not isinstance(error["message"], str) or not error["message"]:
        return f"error.message is not a non-empty string: {error['message']!r}"
    if error["param"] is not None and not isinstance(error["param"], str):
        return f"error.param is neither a string nor null: {error['param']!r}"
    return None


def assert_error(body: Any, error_type: str, param: str | EllipsisType | None = ...) -> None:
    problem = error_shape_problem(body)
    assert problem is None, problem
    assert body["error"]["type"] == error_type, body
    if param is not ...:
        assert body["error"]["param"] == param, body


@dataclass
class Outcome:
    status: int  # 0: no HTTP answer (connection refused/reset, client timeout)
    latency: float
    body: Any
    headers: dict[str, str]
    started: float
    failure: str | None = None
    detail: str = ""


async def _one(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    payload: Any,
    limit_s: float,
    request_id: str | None = None,
) -> Outcome:
    started = time.monotonic()
    headers = {"X-Request-ID": request_id} if request_id else None
    try:
        async with session.request(
            method,
            path,
            json=payload,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=limit_s),
        ) as response:
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return Outcome(
                response.status, time.monotonic() - started, body, dict(response.headers), started
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(
            0, time.monotonic() - started, None, {}, started, type(exc).__name__, str(exc)
        )


async def run_load(
    base_url: str,
    payloads: Sequence[Any],
    *,
    concurrency: int,
    request_timeout_s: float = 30.0,
    path: str = "/v1/moderate",
    headers: dict[str, str] | None = None,
    on_progress: Any = None,
    fresh: bool = False,
    request_ids: Sequence[str] | None = None,
) -> list[Outcome]:
    """POST every payload (bounded count) with at most `concurrency` in flight; results in order.

    `on_progress(done)` (sync, optional) is called after each answer, e.g. to inject a fault.
    `fresh`: a new connection per request (no keep-alive), so a refused connection is visible.
    `request_ids`: an X-Request-ID per payload (the gateway logs it), to match answers to its log.
    """
    semaphore = asyncio.Semaphore(concurrency)
    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=fresh)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:

        async def bounded(index: int, payload: Any) -> Outcome:
            nonlocal done
            request_id = request_ids[index] if request_ids else None
            async with semaphore:
                outcome = await _one(session, "POST", path, payload, request_timeout_s, request_id)
            done += 1
            if on_progress is not None:
                on_progress(done)
            return outcome

        return list(await asyncio.gather(*(bounded(i, p) for i, p in enumerate(payloads))))


def metric_samples(text: str, name: str) -> list[tuple[str, float]]:
    """(labels, value) of every sample of `name` in a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            rest = head[len(name) :]
            if rest and rest[0] not in "{ ":
                continue  # another metric whose name starts with `name`
            samples.append((rest.strip(), float(value)))
    return samples


def rss_mib(pid: int) -> float:
    rss: int = psutil.Process(pid).memory_info().rss
    return rss / 2**20


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def access_log(path: Path) -> dict[str, dict[str, Any]]:
    """The gateway's JSON access-log lines (one per request that reached the app), by request id."""
    entries: dict[str, dict[str, Any]] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "rsafe_gateway.access" and entry.get("request_id"):
            entries[entry["request_id"]] = entry
    return entries


@contextmanager
def gateway_stack(folder: Path) -> Iterator[tuple[ExitStack, Path]]:
    """Gateways (and servers) a test module starts, all stopped when the module ends."""
    with ExitStack() as stack:
        yield stack, folder


def stacked_gateway(
    stack: tuple[ExitStack, Path], name: str, env: dict[str, str]
) -> GatewayProcess:
    """A gateway without Redis, logging to `<folder>/<name>.log`, stopped with the stack."""
    exits, folder = stack
    started = start_gateway({"RSAFE_REDIS_URL": "", **env}, folder / f"{name}.log")
    exits.callback(stop_process, started.process)
    return started
