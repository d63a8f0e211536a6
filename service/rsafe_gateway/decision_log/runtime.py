"""What the app starts and stops for the decision log: the pool, the writer, the retention job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

from psycopg_pool import AsyncConnectionPool

from ..families import format_for
from ..service import ModerationService
from ..settings import Settings
from .retention import Retention, run_retention
from .store import DecisionStore
from .writer import DecisionWriter

logger = logging.getLogger("rsafe_gateway.decision_log")

_MIGRATE_RETRY_MAX_SECONDS = 5.0


async def _migrate_in_child_process(database_url: str) -> None:
    """`migrate.py` in a child process (see there why); its output in the error if it fails."""
    spawning = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rsafe_gateway.decision_log.migrate",
            env={**os.environ, "RSAFE_DATABASE_URL": database_url},  # not argv: `ps` shows it
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    )
    try:
        process = await asyncio.shield(spawning)
    except asyncio.CancelledError:
        # Shutdown while the child was starting: it starts all the same, so stop it here too
        # (left alone, it would outlive the event loop that watches it).
        with contextlib.suppress(Exception):
            orphan = await spawning
            orphan.kill()
            await orphan.wait()
        raise
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (shutdown): the child goes with us
            process.kill()
            await process.wait()
    if process.returncode != 0:
        lines = output.decode(errors="replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {process.returncode}")


class DecisionLog:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self._database_url = database_url
        timeout = settings.decision_log_write_timeout_seconds
        self.pool = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=settings.database_pool_size,
            open=False,
            timeout=timeout,
            # A connection that died with a PostgreSQL restart is replaced, not handed out.
            check=AsyncConnectionPool.check_connection,
            name="rsafe-decision-log",
        )
        self.writer = DecisionWriter(
            self.pool,
            mode=settings.decision_log_mode,
            buffer_size=settings.decision_log_buffer,
            batch_size=settings.decision_log_batch_size,
            write_timeout_seconds=timeout,
            store_content=settings.decision_log_store_content,
            # The format the serving ModerationService is built with (the same function).
            guard=format_for(settings),
            flush_seconds=settings.decision_log_flush_seconds,
        )
        self.store = DecisionStore(self.pool, timeout)
        self.appeals: ModerationService | None = None  # set by the app (it owns the backends)
        self._retention: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Not waiting for a connection: with PostgreSQL down the gateway still starts and
        # (best_effort) buffers decisions until it is back.
        await self.pool.open(wait=False)
        self.writer.start(self._prepare())

    async def _prepare(self) -> None:
        """Migrate (retried until PostgreSQL answers), then start the retention job."""
        delay = 0.1
        while self.settings.database_migrate_on_start:
            try:
                await _migrate_in_child_process(self._database_url)
                break
            except Exception as exc:  # down, restarting, or a broken migration: logged, retried
                logger.error("decision log migration failed, retrying: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MIGRATE_RETRY_MAX_SECONDS)
        retention = Retention(
            self.settings.decision_log_retention_days,
            self.settings.decision_log_content_retention_days,
        )
        self._retention = asyncio.create_task(
            run_retention(
                self.pool, retention, self.settings.decision_log_retention_interval_seconds
            ),
            name="decision-log-retention",
        )

    async def close(self) -> None:
        """Flush the buffer (up to the write timeout), stop the jobs, close the pool."""
        await self.writer.close(self.settings.decision_log_write_timeout_seconds)
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        await self.pool.close()
