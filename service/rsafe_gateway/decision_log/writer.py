"""The background writer: decisions go into a bounded in-memory buffer; one task writes them out.

The request path only builds the row and puts it in the buffer (no I/O; what that costs is
measured by scripts/benchmark_decision_log.py, not quoted here). The writer takes up to
`batch_size` rows at a time and writes them in one INSERT of one JSON parameter
(`jsonb_populate_recordset`): orjson turns the rows into JSON in C, where COPY's
per-row adaptation in Python cost the gateway far more CPU a row. In
best_effort it first lets `flush_seconds` pass after the first row, so a busy gateway writes few
large batches (one transaction per decision cost a sizeable share of a cache hit's CPU).

- best_effort: a failed write keeps its batch and retries (backoff up to 1 s) until PostgreSQL is
  back; new decisions wait in the buffer meanwhile. A full buffer drops the new decision, counted in
  `rsafe_decision_log_dropped_total{reason="buffer_full"}` (alerted).
- required: each answer waits for its row's commit (up to the write timeout); a failed write, a
  full buffer or the timeout is a 503 `DecisionLogUnavailable`, so no answer leaves without a row.
  (A row may exist for a 503 whose commit landed after its wait gave up; never the reverse.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from rsafe_core.formats import GuardFormat
from rsafe_core.turns import Target

from ..errors import DecisionLogUnavailable
from ..metrics import (
    DECISION_LOG_BUFFERED,
    DECISION_LOG_ERRORS,
    DECISIONS_DROPPED,
    DECISIONS_LOGGED,
)
from ..protocol import ModerationRequest
from ..result import ModerationResult
from ..settings import DecisionLogMode
from .record import COLUMNS, DecisionContext, DecisionRecord, build_record

logger = logging.getLogger("rsafe_gateway.decision_log")

_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = (
    f"INSERT INTO decisions ({_COLUMN_LIST}) "  # noqa: S608 (constant column names)
    f"SELECT {_COLUMN_LIST} FROM jsonb_populate_recordset(NULL::decisions, %s::jsonb)"
)
_RETRY_FIRST_SECONDS = 0.05
_RETRY_MAX_SECONDS = 1.0
# What a failed write raises: the server is down or restarting, the pool cannot connect in time.
WRITE_FAILURES = (psycopg.Error, PoolTimeout, OSError)

_Pending = tuple[DecisionRecord, "asyncio.Future[None] | None"]
_DROPPED_FULL = DECISIONS_DROPPED.labels("buffer_full")


def _fail(waiter: asyncio.Future[None] | None, error: DecisionLogUnavailable) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_exception(error)
        waiter.exception()  # marked retrieved: its request may have stopped waiting already


class DecisionWriter:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        mode: DecisionLogMode,
        buffer_size: int,
        batch_size: int,
        write_timeout_seconds: float,
        store_content: bool,
        guard: GuardFormat,
        flush_seconds: float = 0.0,
    ) -> None:
        self._pool = pool
        self._guard = guard  # the serving model's format: its family goes into every row
        self._required = mode is DecisionLogMode.REQUIRED
        # An answer in required mode waits for its row: no lingering there.
        self._linger = 0.0 if self._required else flush_seconds
        self._batch_size = batch_size
        self._write_timeout = write_timeout_seconds
        self._store_content = store_content
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=buffer_size)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # set once the schema is in place (see `run`)
        self._in_hand = 0  # rows taken from the buffer and not yet written
        self._closing = asyncio.Event()

    def submit(
        self,
        request: ModerationRequest,
        result: ModerationResult,
        target: Target,
        reasoning: str | None,
        failure: str | None,
        context: DecisionContext,
    ) -> Awaitable[None] | None:
        record = build_record(
            request, result, target, reasoning, failure, context, self._store_content, self._guard
        )
        return self.enqueue(record)

    def enqueue(self, record: DecisionRecord) -> Awaitable[None] | None:
        """Buffer one row: None in best_effort; in required, an awaitable for its commit."""
        waiter = asyncio.get_running_loop().create_future() if self._required else None
        try:
            self._queue.put_nowait((record, waiter))
        except asyncio.QueueFull:
            _DROPPED_FULL.inc()
            if self._required:
                raise DecisionLogUnavailable("the decision log is behind; retry shortly") from None
            return None
        return self._wait(waiter) if waiter is not None else None

    async def _wait(self, waiter: asyncio.Future[None]) -> None:
        try:
            async with asyncio.timeout(self._write_timeout):
                await asyncio.shield(waiter)  # a cancelled request leaves the writer's future be
        except TimeoutError:
            raise DecisionLogUnavailable("the decision log did not confirm the write") from None

    @property
    def stores_content(self) -> bool:
        return self._store_content

    @property
    def buffered(self) -> int:
        return self._queue.qsize()

    def start(self, prepare: Awaitable[None]) -> None:
        """Run `prepare` (the migrations, retried until PostgreSQL answers), then write."""
        self._task = asyncio.create_task(self._run(prepare), name="decision-log-writer")

    async def _run(self, prepare: Awaitable[None]) -> None:
        await prepare
        self._ready.set()
        while True:
            batch = [await self._queue.get()]
            if self._linger:
                # Let a batch gather: one transaction per batch, and no wake-up per decision
                # (cut short at shutdown).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._closing.wait()
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            DECISION_LOG_BUFFERED.set(self._queue.qsize())
            self._in_hand = len(batch)
            try:
                await self._write_batch(batch)
            finally:
                self._in_hand = 0
                for _ in batch:
                    self._queue.task_done()

    async def _write_batch(self, batch: list[_Pending]) -> None:
        delay = _RETRY_FIRST_SECONDS
        while True:
            try:
                await self._insert([record for record, _ in batch])
            except WRITE_FAILURES as exc:
                DECISION_LOG_ERRORS.inc()
                logger.warning("decision log write failed (%d rows): %s", len(batch), exc)
                if self._required:
                    # Their answers become 503s now: nobody waits on a retry.
                    failed = DecisionLogUnavailable("the decision log cannot write")
                    for _, waiter in batch:
                        _fail(waiter, failed)
                    DECISIONS_DROPPED.labels("failed").inc(len(batch))
                    return
                await asyncio.sleep(delay)  # best_effort: keep the batch until it is written
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
                continue
            DECISIONS_LOGGED.inc(len(batch))
            for _, waiter in batch:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            return

    async def _insert(self, records: list[DecisionRecord]) -> None:
        rows = orjson.dumps(records).decode()
        async with self._pool.connection(timeout=self._write_timeout) as connection:
            await connection.execute(_INSERT, [rows])

    async def close(self, timeout_seconds: float) -> None:
        """Write what is buffered (up to `timeout_seconds`), then stop; the rest is counted."""
        if self._task is None:
            return
        self._closing.set()
        if not self._task.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_seconds):
                    await self._ready.wait()  # a gateway stopped during its migration
                    await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        left = self._queue.qsize() + self._in_hand
        if left:
            DECISIONS_DROPPED.labels("shutdown").inc(left)
            logger.error("decision log: %d decisions not written at shutdown", left)
        while not self._queue.empty():
            _, waiter = self._queue.get_nowait()
            _fail(waiter, DecisionLogUnavailable("the gateway is shutting down"))
