"""Single-flight: identical concurrent requests (same cache key) on one replica share ONE call.

The others wait for its answer. Across replicas the shared Redis cache does the rest: a burst that
lands on N replicas makes at most N calls, later requests are hits. (A distributed lock would save
those N-1 calls at the price of a Redis round trip and a lock timeout on every miss; not worth it.)
The call is cancelled when the last request waiting for it is, and a failure reaches every waiting
request as its own copy of the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from .errors import GatewayError
from .metrics import SINGLEFLIGHT_JOINS

T = TypeVar("T")


class _Flight(Generic[T]):
    """One shared call and how many requests wait for it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T | GatewayError]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._in_flight: dict[str, _Flight[T]] = {}

    async def run(self, key: str, call: Callable[[], Coroutine[Any, Any, T | GatewayError]]) -> T:
        """`call()`'s result, shared with every concurrent `run` for `key`. `call` returns its
        error rather than raising it: every waiter raises its own copy."""
        flight = self._in_flight.get(key)
        if flight is not None:
            SINGLEFLIGHT_JOINS.inc()
        else:
            started = _Flight(asyncio.create_task(call()))
            started.task.add_done_callback(lambda _: self._land(key, started))
            flight = self._in_flight[key] = started
        flight.waiters += 1
        try:
            # shield: one waiter going away must not cancel the call the others wait on.
            outcome = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1:  # nobody else wants this answer: stop the call
                self._land(key, flight)
                flight.task.cancel()
            raise
        finally:
            flight.waiters -= 1
        if isinstance(outcome, GatewayError):
            raise outcome.own_copy()
        return outcome

    def _land(self, key: str, flight: _Flight[T]) -> None:
        # Only this flight's own entry: a newer flight for the key may have taken its place.
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]
