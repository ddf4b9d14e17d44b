"""StopSignal: one stop token for asyncio tasks and threads, waiting through the clock."""

from __future__ import annotations

import asyncio
import threading

from buttress.clock import SYSTEM_CLOCK
from buttress.testing import FakeClock
from buttress.worker import StopSignal


def test_threading_event_surface() -> None:
    stop = StopSignal("w")
    assert not stop.is_set()
    assert stop.wait(0) is False
    stop.set()
    stop.set()  # idempotent
    assert stop.is_set() and stop.wait(0) is True
    assert repr(stop) == "StopSignal(worker='w', set)"
    assert repr(StopSignal()) == "StopSignal(worker='', clear)"


def test_asleep_waits_through_the_fake_clock() -> None:
    clock = FakeClock()
    stop = StopSignal(clock=clock)

    async def main() -> bool:
        return await stop.asleep(30)

    assert asyncio.run(main()) is False
    assert clock.monotonic() == 30.0 and clock.sleeps == [30]
    assert stop._waiters == []


def test_asleep_returns_true_at_once_when_already_set() -> None:
    clock = FakeClock()
    stop = StopSignal(clock=clock)
    stop.set()
    assert asyncio.run(stop.asleep(30)) is True
    assert clock.sleeps == []


def test_asleep_ends_early_when_set_during_a_real_sleep() -> None:
    stop = StopSignal(clock=SYSTEM_CLOCK)

    async def main() -> bool:
        asyncio.get_running_loop().call_soon(stop.set)
        return await asyncio.wait_for(stop.asleep(60), 2)

    assert asyncio.run(main()) is True


def test_set_from_another_thread_wakes_an_async_waiter() -> None:
    stop = StopSignal()

    async def main() -> None:
        waiter = asyncio.ensure_future(stop.wait_async())
        await asyncio.sleep(0)
        assert len(stop._waiters) == 1
        thread = threading.Thread(target=stop.set)
        thread.start()
        await asyncio.wait_for(waiter, 2)
        thread.join()

    asyncio.run(main())
    assert stop._waiters == []


def test_wait_async_returns_at_once_when_set_and_cleans_up_when_cancelled() -> None:
    stop = StopSignal()

    async def main() -> None:
        waiter = asyncio.ensure_future(stop.wait_async())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert stop._waiters == []
        stop.set()
        await stop.wait_async()

    asyncio.run(main())


def test_set_ignores_waiters_of_a_closed_loop() -> None:
    stop = StopSignal()
    loop = asyncio.new_event_loop()
    stop._waiters.append(loop.create_future())
    loop.close()
    stop.set()  # must not raise although the waiter's loop is gone
    assert stop.is_set()


def test_thread_sleep_on_a_fake_clock_advances_time() -> None:
    clock = FakeClock()
    stop = StopSignal(clock=clock)
    assert stop.sleep(5) is False
    assert clock.monotonic() == 5.0
    stop.set()
    assert stop.sleep(5) is True
    assert clock.monotonic() == 5.0


def test_thread_sleep_on_the_system_clock_is_interrupted_by_set() -> None:
    stop = StopSignal(clock=SYSTEM_CLOCK)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(stop.sleep(30)))
    thread.start()
    stop.set()
    thread.join(2)
    assert not thread.is_alive() and result == [True]


def test_resolving_an_already_finished_waiter_is_harmless() -> None:
    from buttress.worker._signal import _resolve

    async def main() -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter.cancel()
        _resolve(waiter)
        assert waiter.cancelled()

    asyncio.run(main())
