"""Bound the calls in flight toward the model server, with a bounded queue behind them.

Beyond `limit + queue` waiting calls the gateway answers 503 at once, instead of holding an
ever-growing number of requests (and their memory) while the model server is saturated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import Overloaded
from .metrics import MODEL_QUEUE, OVERLOAD_REJECTIONS


class ConcurrencyLimiter:
    def __init__(self, limit: int, queue: int) -> None:
        self._semaphore = asyncio.Semaphore(limit)
        self._queue = queue
        self._waiting = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._semaphore.locked():
            if self._waiting >= self._queue:
                OVERLOAD_REJECTIONS.inc()
                raise Overloaded("gateway is at its limit of queued model calls; retry shortly")
            self._waiting += 1
            MODEL_QUEUE.set(self._waiting)
            try:
                await self._semaphore.acquire()
            finally:
                self._waiting -= 1
                MODEL_QUEUE.set(self._waiting)
        else:
            await self._semaphore.acquire()
        try:
            yield
        finally:
            self._semaphore.release()
