"""The retention job: decisions and reviews older than the retention period are deleted, and
stored content (RSAFE_DECISION_LOG_STORE_CONTENT) is blanked after its own, shorter period.

Every replica runs it every RSAFE_DECISION_LOG_RETENTION_INTERVAL_SECONDS; the statements are
idempotent, so replicas running them together only repeat each other's work.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import AsyncConnectionPool

from .record import now
from .writer import WRITE_FAILURES

logger = logging.getLogger("rsafe_gateway.decision_log")


@dataclass(frozen=True, slots=True)
class Retention:
    days: int
    content_days: int


@dataclass(frozen=True, slots=True)
class Purged:
    decisions: int
    reviews: int
    contents: int


async def enforce_retention(pool: AsyncConnectionPool, retention: Retention) -> Purged:
    """One pass of the job (also what the tests call)."""
    cutoff = now() - timedelta(days=retention.days)
    content_cutoff = now() - timedelta(days=retention.content_days)
    async with pool.connection() as connection:
        decisions = await connection.execute(
            "DELETE FROM decisions WHERE created_at < %s", [cutoff]
        )
        reviews = await connection.execute("DELETE FROM reviews WHERE created_at < %s", [cutoff])
        contents = await connection.execute(
            "UPDATE decisions SET content = NULL WHERE content IS NOT NULL AND created_at < %s",
            [content_cutoff],
        )
    return Purged(decisions.rowcount, reviews.rowcount, contents.rowcount)


async def run_retention(
    pool: AsyncConnectionPool, retention: Retention, interval_seconds: float
) -> None:
    """Enforce the retention now and then every `interval_seconds` (until cancelled)."""
    while True:
        try:
            purged = await enforce_retention(pool, retention)
            if purged.decisions or purged.reviews or purged.contents:
                logger.info(
                    "decision log retention: %d decisions, %d reviews deleted, %d contents blanked",
                    purged.decisions, purged.reviews, purged.contents,
                )  # fmt: skip
        except WRITE_FAILURES as exc:
            logger.warning("decision log retention skipped: %s", exc)
        await asyncio.sleep(interval_seconds)
