"""A circuit breaker toward the model server: a dead backend costs microseconds, not a timeout.

closed ──(threshold consecutive failures)──▶ open ──(reset_seconds)──▶ half-open
  ▲                                                                      │
  └──────────────── the single trial call succeeds ◀─────────────────────┘
                    (a failed trial opens it again)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum

from .errors import BackendUnavailable
from .metrics import BREAKER_STATE, BREAKER_TRANSITIONS


class BreakerState(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        BREAKER_STATE.set(self._state)

    @property
    def state(self) -> BreakerState:
        return self._state

    def _move(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            BREAKER_STATE.set(state)
            BREAKER_TRANSITIONS.labels(state.name.lower()).inc()

    def before_call(self) -> None:
        """Raise BackendUnavailable at once while open; let one trial through after the pause."""
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self._reset_seconds:
                raise BackendUnavailable("model server unavailable (circuit breaker open)")
            self._move(BreakerState.HALF_OPEN)
        if self._trial_in_flight:
            raise BackendUnavailable("model server unavailable (circuit breaker testing)")
        self._trial_in_flight = True

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._move(BreakerState.OPEN)

    def release_trial(self) -> None:
        """The trial ended without a verdict on the backend (e.g. the gateway was overloaded)."""
        self._trial_in_flight = False
