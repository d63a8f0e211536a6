"""CPU work on large texts, one text per turn of the event loop, so one caller cannot stall others.

Checking and neutralising a text is linear in its length but not free: a maximum-size text of
the worst shapes costs milliseconds (scripts/bench_text.py). A batch or `/v1/moderations` fans out
into up to 64 texts, whose synchronous steps asyncio would otherwise run back to back in ONE turn of
the loop, with no socket served meanwhile (`/healthz` waited behind hostile maximum-size requests).
Large texts take turns instead: each starts in a fresh loop turn, after the loop has served its
sockets, and one at a time. Small texts (nearly all) do their work inline, at no cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Above this many characters (content plus inline policy) a text's work waits for its own turn.
# 64 texts just under it, of the costliest shape, still fit one short turn (scripts/bench_text.py).
LARGE_TEXT_CHARS = 1024


class LargeTextTurns:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def run(self, work: Callable[[], T]) -> T:
        async with self._lock:
            await asyncio.sleep(0)  # begin in a new turn: the loop serves its sockets first
            return work()
