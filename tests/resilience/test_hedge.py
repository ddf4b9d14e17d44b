"""Hedging: delays, first success wins, losers cancelled and closed, budgets, percentiles."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from buttress.errors import ConfigurationError
from buttress.events import Event, HedgeStarted
from buttress.resilience import Deadline, Hedge, LatencyWindow, RetryBudget, close_result, time_left
from buttress.resilience import hedge as hedge_module
from buttress.testing import FakeClock


class Response:
    """A result with a close() method, like an HTTP response."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.closed = False

    def close(self) -> None:
        self.closed = True


class AsyncResponse(Response):
    async def aclose(self) -> None:
        self.closed = True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_fast_first_attempt_starts_no_hedge() -> None:
    calls: list[int] = []
    events: list[Event] = []
    hedge = Hedge(1.0, max_hedges=2, name="h")
    hedge.events.subscribe(events.append)

    @hedge
    async def fast() -> str:
        calls.append(1)
        return "first"

    assert asyncio.run(fast()) == "first"
    assert calls == [1] and events == []


def test_a_slow_first_attempt_is_hedged_and_the_loser_cancelled_and_closed() -> None:
    cancelled: list[int] = []
    results: list[Response] = []
    events: list[Event] = []
    hedge = Hedge(0.005, max_hedges=1, name="h")
    hedge.events.subscribe(events.append)

    async def replica(n: int, gate: asyncio.Event) -> Response:
        try:
            if n == 0:
                await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        response = Response(f"replica {n}")
        results.append(response)
        return response

    async def main() -> str:
        counter = iter(range(10))
        gate = asyncio.Event()
        winner = await hedge.acall(lambda: replica(next(counter), gate))
        await settle()
        return winner.label

    assert asyncio.run(main()) == "replica 1"
    assert cancelled == [0]
    assert [r.closed for r in results] == [False]
    assert len(events) == 1 and isinstance(events[0], HedgeStarted)
    assert events[0].attempt == 2 and events[0].reason == "delay" and events[0].delay >= 0.0


def test_a_loser_that_still_returns_has_its_result_closed() -> None:
    made: list[Response] = []

    async def stubborn(n: int) -> Response:
        if n == 0:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass  # swallows the cancellation and returns a result nobody reads
            response: Response = AsyncResponse("late")
        else:
            await asyncio.sleep(0)
            response = Response("winner")
        made.append(response)
        return response

    async def main() -> tuple[str, list[bool]]:
        counter = iter(range(10))
        winner = await Hedge(0.002).acall(lambda: stubborn(next(counter)))
        await settle()
        return winner.label, [r.closed for r in made]

    label, closed = asyncio.run(main())
    assert label == "winner"
    assert closed == [False, True]  # the winner is open, the late loser's aclose() ran


def test_a_failed_attempt_starts_the_next_hedge_at_once() -> None:
    events: list[Event] = []
    hedge = Hedge(10.0, max_hedges=2)
    hedge.events.subscribe(events.append)
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("reset")
        return "second"

    assert asyncio.run(hedge.acall(flaky)) == "second"
    assert [(e.attempt, e.reason) for e in events if isinstance(e, HedgeStarted)] == [(2, "failure")]


def test_all_attempts_failing_raise_the_last_error() -> None:
    calls: list[int] = []

    async def down() -> None:
        calls.append(1)
        raise ConnectionError(f"down {len(calls)}")

    with pytest.raises(ConnectionError, match="down 3"):
        asyncio.run(Hedge(10.0, max_hedges=2).acall(down))
    assert len(calls) == 3


def test_an_error_outside_on_is_raised_at_once_and_cancels_the_rest() -> None:
    cancelled: list[int] = []

    async def attempt(n: int) -> None:
        if n == 0:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(n)
                raise
        raise KeyError("bug")

    async def main() -> None:
        counter = iter(range(10))
        try:
            await Hedge(0.001, on=ConnectionError).acall(lambda: attempt(next(counter)))
        finally:
            await settle()

    with pytest.raises(KeyError, match="bug"):
        asyncio.run(main())
    assert cancelled == [0]


def test_hedges_spend_from_the_retry_budget() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, ttl=10, clock=clock)  # exactly one hedge
    hedge = Hedge(0.001, max_hedges=3, budget=budget)
    calls: list[int] = []

    async def slow() -> str:
        calls.append(1)
        await asyncio.sleep(0.02)
        return "slow"

    async def main() -> str:
        return await hedge.acall(slow)

    assert asyncio.run(main()) == "slow"
    assert len(calls) == 2  # the first attempt and the single hedge the budget allowed
    assert budget.balance == 0.0

    failing = Hedge(10.0, max_hedges=3, budget=RetryBudget(ratio=0.0, min_per_second=0.0, clock=clock))

    async def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        asyncio.run(failing.acall(down))


def test_the_percentile_delay_follows_recent_latencies() -> None:
    clock = FakeClock()
    hedge = Hedge(0.5, percentile=0.9, window=10, min_samples=5, clock=clock)
    assert hedge.current_delay() == 0.5

    async def timed(latency: float) -> float:
        clock.advance(latency)
        return latency

    async def main() -> None:
        for latency in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10):
            await hedge.acall(timed, latency)

    asyncio.run(main())
    assert hedge.current_delay() == pytest.approx(0.09)
    assert repr(hedge) == "Hedge(percentile=0.9, max_hedges=1, name='')"
    assert repr(Hedge(0.25)) == "Hedge(delay=0.25, max_hedges=1, name='')"


def test_latency_window_percentiles_are_cached_and_refreshed() -> None:
    window = LatencyWindow(16)
    assert window.percentile(0.5) == 0.0 and len(window) == 0
    for ms in range(1, 17):
        window.add(ms / 1000)
    assert window.percentile(0.5) == 0.008 and window.percentile(1.0) == 0.016
    window.add(1.0)  # one new sample: the cached answer stands until size // 8 have arrived
    assert window.percentile(1.0) == 0.016
    window.add(1.0)
    assert window.percentile(1.0) == 1.0
    with pytest.raises(ConfigurationError):
        LatencyWindow(0)


def test_the_callers_cancellation_cancels_every_attempt() -> None:
    cancelled: list[int] = []

    async def hang(n: int) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    async def main() -> None:
        counter = iter(range(10))
        task = asyncio.create_task(Hedge(0.001, max_hedges=1).acall(lambda: hang(next(counter))))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await settle()

    asyncio.run(main())
    assert sorted(cancelled) == [0, 1]


def test_attempts_see_the_callers_deadline() -> None:
    async def left() -> float | None:
        return time_left()

    async def main() -> float | None:
        async with Deadline(5.0):
            return await Hedge(1.0).acall(left)

    seen = asyncio.run(main())
    assert seen is not None and 4.0 < seen <= 5.0


def test_sync_functions_are_refused_and_validation_reports_every_problem() -> None:
    hedge = Hedge()
    with pytest.raises(TypeError, match="coroutine"):
        hedge(lambda: 1)
    with pytest.raises(TypeError, match="sync function"):
        hedge.call(lambda: 1)
    with pytest.raises(ConfigurationError) as info:
        Hedge(-1, max_hedges=0, percentile=1.5, window=0, min_samples=0, on="x", budget=3)  # type: ignore[arg-type]
    assert len(info.value.problems) == 7


def test_close_result_handles_every_kind_and_logs_failures(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def close(self) -> None:
            raise OSError("cannot close")

    class BrokenAsync:
        def aclose(self) -> Any:
            raise OSError("cannot start closing")

    class FailsLater:
        async def aclose(self) -> None:
            raise OSError("failed while closing")

    class SyncAclose:
        def __init__(self) -> None:
            self.closed = False

        def aclose(self) -> None:
            self.closed = True

    close_result(object())  # nothing to close
    plain = Response("x")
    close_result(plain)
    assert plain.closed
    sync_aclose = SyncAclose()
    close_result(sync_aclose)
    assert sync_aclose.closed
    with caplog.at_level(logging.ERROR, logger="buttress.resilience.hedge"):
        close_result(Broken())
        close_result(BrokenAsync())

        async def main() -> None:
            close_result(FailsLater())
            await settle()

        asyncio.run(main())
    assert len(caplog.records) == 3
    assert not hedge_module._background
