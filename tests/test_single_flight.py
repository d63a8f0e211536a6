"""Single-flight on its own: concurrent runs for one key share one call, errors are copied per
waiter, and the call is cancelled only when its last waiter is."""

from __future__ import annotations

import asyncio

import pytest

from rsafe_gateway.errors import BackendUnavailable, GatewayError
from rsafe_gateway.single_flight import SingleFlight


def test_concurrent_runs_share_one_call_and_a_later_run_makes_a_new_one() -> None:
    calls = 0

    async def call() -> str | GatewayError:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return f"answer {calls}"

    async def scenario() -> tuple[list[str], str]:
        flights = SingleFlight[str]()
        shared = await asyncio.gather(*(flights.run("k", call) for _ in range(5)))
        return shared, await flights.run("k", call)

    shared, later = asyncio.run(scenario())
    assert shared == ["answer 1"] * 5
    assert later == "answer 2"
    assert calls == 2


def test_each_waiter_raises_its_own_copy_of_the_error() -> None:
    async def call() -> str | GatewayError:
        await asyncio.sleep(0.01)
        return BackendUnavailable("model server unreachable")

    async def scenario() -> list[BaseException | str]:
        flights = SingleFlight[str]()
        return await asyncio.gather(
            *(flights.run("k", call) for _ in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    assert all(isinstance(outcome, BackendUnavailable) for outcome in outcomes)
    assert len({id(outcome) for outcome in outcomes}) == 3
    assert all(str(outcome) == "model server unreachable" for outcome in outcomes)


def test_the_call_goes_on_for_others_and_stops_with_its_last_waiter() -> None:
    cancelled: list[bool] = []

    async def call() -> str | GatewayError:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    async def scenario() -> None:
        flights = SingleFlight[str]()
        first = asyncio.ensure_future(flights.run("k", call))
        second = asyncio.ensure_future(flights.run("k", call))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.01)
        assert not cancelled, "one waiter leaving cancelled the shared call"
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert cancelled == [True]
