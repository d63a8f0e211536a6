"""Run a data set through a RUNNING gateway over HTTP, appending each decision as it completes.

- Bounded concurrency (a semaphore), one `POST /v1/moderate` per item, the cache bypassed by default
  (`cache: false`) so that every decision is the model's own.
- The results file is JSONL, one row per item, written and flushed as each decision arrives, so a
  killed run loses at most the requests in flight.
- Resumable: a rerun skips the ids already in the results file. Error rows (HTTP errors, timeouts,
  refused connections) are kept as rows with `error` set; a rerun retries them unless told not to.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import BaseModel, ConfigDict
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .dataset import EvalItem

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"
_RETRYABLE_STATUS = {502, 503, 504}


class ErrorInfo(BaseModel):
    status: int | None = None
    type: str
    message: str


class ResultRow(BaseModel):
    """One decision (or one failure) for one item."""

    model_config = ConfigDict(extra="ignore")

    id: str
    source: str
    label: str
    target: str
    policy_id: str | None = None
    verdict: str | None = None
    flagged: bool | None = None
    categories: list[str] = []
    reasoning: str | None = None
    fail_mode: str | None = None
    cached: bool | None = None
    model: str | None = None
    policy_sha256: str | None = None
    decision_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None  # the gateway's own figure
    client_latency_ms: float | None = None  # round trip seen by the runner
    error: ErrorInfo | None = None
    completed_at: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RunConfig:
    gateway_url: str = DEFAULT_GATEWAY_URL
    concurrency: int = 8
    api_key: str | None = None
    api_key_header: str = "Authorization"
    timeout_s: float = 120.0
    reasoning: bool = True
    cache: bool = False
    limit: int | None = None
    retries: int = 2  # for 502/503/504 and transport errors
    retry_errors: bool = True  # retry error rows of an earlier run
    progress: bool = True


@dataclass
class RunStats:
    total: int = 0  # items in this run (after --limit)
    skipped: int = 0  # already in the results file
    completed: int = 0  # decisions written by this run
    errors: int = 0  # error rows written by this run


def load_results(path: Path) -> dict[str, ResultRow]:
    """Rows by id (the last row of an id wins). A torn last line from a killed run is ignored."""
    rows: dict[str, ResultRow] = {}
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = ResultRow.model_validate_json(line)
            except ValueError:
                continue
            rows[row.id] = row
    return rows


def _rewrite(path: Path, rows: Sequence[ResultRow]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row.model_dump_json() + "\n")
    tmp.replace(path)


def prepare_results(path: Path, retry_errors: bool) -> set[str]:
    """Compact the results file (one row per id, no torn line, error rows dropped if they are to
    be retried) and return the ids that are done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = load_results(path)
    keep = [row for row in rows.values() if row.ok or not retry_errors]
    if path.exists():
        _rewrite(path, keep)
    return {row.id for row in keep}


def _headers(config: RunConfig) -> dict[str, str]:
    if not config.api_key:
        return {}
    if config.api_key_header.lower() == "authorization":
        return {"Authorization": f"Bearer {config.api_key}"}
    return {config.api_key_header: config.api_key}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _base_row(item: EvalItem) -> dict[str, Any]:
    policy_id = item.policy_id if item.policy is None else "inline"
    return {
        "id": item.id,
        "source": item.source,
        "label": item.label,
        "target": item.target,
        "policy_id": policy_id,
    }


def _error_from_response(response: httpx.Response) -> ErrorInfo:
    try:
        error = response.json()["error"]
        return ErrorInfo(status=response.status_code, type=error["type"], message=error["message"])
    except (ValueError, KeyError, TypeError):
        return ErrorInfo(status=response.status_code, type="http", message=response.text[:500])


async def judge(client: httpx.AsyncClient, item: EvalItem, config: RunConfig) -> ResultRow:
    """One item -> one result row (never raises for HTTP or transport failures)."""
    body = item.request_body(reasoning=config.reasoning, cache=config.cache)
    error: ErrorInfo | None = None
    started = time.perf_counter()
    for attempt in range(config.retries + 1):
        if attempt:
            await asyncio.sleep(min(0.5 * 2**attempt, 8.0))  # backoff between retries
        started = time.perf_counter()
        try:
            response = await client.post("/v1/moderate", json=body)
        except httpx.TimeoutException as exc:
            error = ErrorInfo(type="timeout", message=str(exc) or type(exc).__name__)
            continue
        except httpx.TransportError as exc:
            error = ErrorInfo(type="transport", message=str(exc) or type(exc).__name__)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            try:
                return _decision_row(item, response.json(), elapsed)
            except (ValueError, KeyError, TypeError) as exc:
                error = ErrorInfo(status=200, type="bad_response", message=str(exc)[:500])
                break
        error = _error_from_response(response)
        if response.status_code not in _RETRYABLE_STATUS:
            break
    elapsed = (time.perf_counter() - started) * 1000
    return ResultRow(
        **_base_row(item), error=error, client_latency_ms=round(elapsed, 2), completed_at=_now()
    )


def _decision_row(item: EvalItem, data: dict[str, Any], elapsed: float) -> ResultRow:
    usage = data.get("usage") or {}
    return ResultRow(
        **_base_row(item),
        verdict=data["verdict"],
        flagged=data["flagged"],
        categories=data.get("categories") or [],
        reasoning=data.get("reasoning"),
        fail_mode=data.get("fail_mode"),
        cached=data.get("cached"),
        model=data.get("model"),
        policy_sha256=(data.get("policy") or {}).get("sha256"),
        decision_id=data.get("id"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=data.get("latency_ms"),
        client_latency_ms=round(elapsed, 2),
        completed_at=_now(),
    )


def _open_append(path: Path) -> IO[str]:
    return path.open("a", encoding="utf-8")


async def run_eval(
    items: Sequence[EvalItem],
    results: Path,
    config: RunConfig,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunStats:
    """Judge every item not yet in `results`, appending one flushed line per decision.

    `transport` replaces the network (tests use `httpx.MockTransport` or an ASGI transport)."""
    selected = list(items[: config.limit] if config.limit is not None else items)
    done = prepare_results(results, config.retry_errors)
    pending = [item for item in selected if item.id not in done]
    stats = RunStats(total=len(selected), skipped=len(selected) - len(pending))
    if not pending:
        return stats
    semaphore = asyncio.Semaphore(max(1, config.concurrency))
    limits = httpx.Limits(max_connections=max(1, config.concurrency))
    progress = Progress(
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("errors: {task.fields[errors]}"),
        TimeRemainingColumn(),
        disable=not config.progress,
    )
    handle = _open_append(results)
    try:
        async with httpx.AsyncClient(
            base_url=config.gateway_url.rstrip("/"),
            headers=_headers(config),
            timeout=httpx.Timeout(config.timeout_s, connect=10.0),
            limits=limits,
            transport=transport,
        ) as client:
            with progress:
                task = progress.add_task("eval", total=len(pending), errors=0)

                async def one(item: EvalItem) -> None:
                    async with semaphore:
                        row = await judge(client, item, config)
                    handle.write(row.model_dump_json() + "\n")
                    handle.flush()
                    stats.completed += 1
                    if not row.ok:
                        stats.errors += 1
                    progress.update(task, advance=1, errors=stats.errors)

                async with asyncio.TaskGroup() as group:
                    for item in pending:
                        group.create_task(one(item))
    finally:
        handle.close()
    return stats


_BUILD_INFO = re.compile(r"^rsafe_build_info\{([^}]*)\}")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


async def fetch_gateway_info(
    gateway_url: str, api_key: str | None = None, api_key_header: str = "Authorization"
) -> dict[str, Any]:
    """What the gateway says about itself: build labels (version, model, prompt template) from
    /metrics and the default policy from /v1/policies. Missing pieces are simply left out."""
    config = RunConfig(gateway_url=gateway_url, api_key=api_key, api_key_header=api_key_header)
    info: dict[str, Any] = {"gateway_url": gateway_url}
    async with httpx.AsyncClient(
        base_url=gateway_url.rstrip("/"), headers=_headers(config), timeout=10.0
    ) as client:
        try:
            metrics = await client.get("/metrics")
            for line in metrics.text.splitlines():
                match = _BUILD_INFO.match(line)
                if match:
                    info["build"] = dict(_LABEL.findall(match.group(1)))
                    break
        except httpx.HTTPError:
            pass
        try:
            policies = await client.get("/v1/policies")
            if policies.status_code == 200:
                data = policies.json()
                info["default_policy_id"] = data.get("default_policy_id")
                info["policies"] = {
                    p["id"]: {"version": p["version"], "sha256": p["sha256"]}
                    for p in data.get("policies", [])
                }
        except (httpx.HTTPError, ValueError, KeyError):
            pass
    return info


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
