"""Backpressure policies with exact counts, close/drain with a timeout, and a volume test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from buttress.eventbus import EventBus, PublishResult, SubscriberStats


def balanced(stats: SubscriberStats) -> bool:
    """Every accepted event is accounted for exactly once."""
    return (
        stats.accepted
        == stats.delivered + stats.failed + stats.dropped_oldest + stats.undelivered + stats.queued
    )


def test_drop_oldest_keeps_the_newest_events() -> None:
    seen: list[int] = []

    async def main() -> None:
        bus = EventBus()
        sub = bus.subscribe(int, seen.append, buffer=3, policy="drop_oldest")
        # No await between publishes: the consumer has not run, so the queue holds 3 at most.
        results = [bus.publish_nowait(i) for i in range(10)]
        assert results == [PublishResult(1, 0)] * 10
        stats = sub.stats()
        assert (stats.queued, stats.accepted, stats.dropped_oldest, stats.dropped) == (3, 10, 7, 7)
        await bus.close()
        stats = sub.stats()
        assert (stats.delivered, stats.undelivered) == (3, 0) and balanced(stats)

    asyncio.run(main())
    assert seen == [7, 8, 9]


def test_drop_newest_keeps_the_oldest_events() -> None:
    seen: list[int] = []

    async def main() -> None:
        bus = EventBus(policy="drop_newest", buffer=3)
        sub = bus.subscribe(int, seen.append)
        results = [bus.publish_nowait(i) for i in range(10)]
        assert results == [PublishResult(1, 0)] * 3 + [PublishResult(0, 1)] * 7
        assert (await bus.publish(10)) == PublishResult(0, 1)  # drop_newest never waits
        await bus.close()
        stats = sub.stats()
        assert (stats.accepted, stats.dropped_newest, stats.delivered, stats.timed_out) == (3, 8, 3, 0)
        assert balanced(stats)

    asyncio.run(main())
    assert seen == [0, 1, 2]


def test_block_policy_publish_nowait_does_not_wait() -> None:
    async def main() -> None:
        bus = EventBus()
        sub = bus.subscribe(int, lambda e: None, buffer=2, policy="block", block_timeout=10)
        assert [bus.publish_nowait(i).accepted for i in range(5)] == [1, 1, 0, 0, 0]
        assert (sub.stats().timed_out, sub.stats().accepted) == (3, 2)
        await bus.close()

    asyncio.run(main())


def test_block_policy_waits_for_room() -> None:
    seen: list[int] = []

    async def main() -> None:
        bus = EventBus()
        gate = asyncio.Event()

        async def slow(event: int) -> None:
            await gate.wait()
            seen.append(event)

        sub = bus.subscribe(int, slow, buffer=1, block_timeout=5)
        await bus.publish(0)
        await asyncio.sleep(0)  # the consumer takes event 0 and waits at the gate
        await bus.publish(1)  # fills the buffer
        publisher = asyncio.ensure_future(bus.publish(2))
        await asyncio.sleep(0)
        assert not publisher.done() and sub.stats().queued == 1
        gate.set()
        assert await asyncio.wait_for(publisher, 2) == PublishResult(1, 0)
        await bus.close()
        stats = sub.stats()
        assert (stats.accepted, stats.delivered, stats.timed_out) == (3, 3, 0)

    asyncio.run(main())
    assert seen == [0, 1, 2]


def test_block_policy_times_out_then_counts_the_drop() -> None:
    async def main() -> None:
        bus = EventBus()
        never = asyncio.Event()
        sub = bus.subscribe(int, lambda e: never.wait(), buffer=1, block_timeout=0.01)
        await bus.publish(0)
        await asyncio.sleep(0)
        await bus.publish(1)
        assert await bus.publish(2) == PublishResult(0, 1)
        stats = sub.stats()
        assert (stats.accepted, stats.timed_out, stats.dropped) == (2, 1, 1)
        report = await bus.close(timeout=0.01)
        assert (report.drained, report.undelivered, report.undelivered_by) == (False, 2, {sub.name: 2})

    asyncio.run(main())


def test_several_full_block_subscribers_are_waited_for_concurrently() -> None:
    async def main() -> None:
        bus = EventBus(buffer=1, block_timeout=0.04)
        never = asyncio.Event()
        subs = [bus.subscribe(int, lambda e: never.wait(), name=f"s{i}") for i in range(3)]
        bus.subscribe(int, lambda e: None, name="fast", policy="drop_newest", buffer=10)
        await bus.publish(0)
        await asyncio.sleep(0)
        await bus.publish(1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await bus.publish(2) == PublishResult(1, 3)
        assert loop.time() - started < 0.1  # one shared 0.04 s wait, not three in a row
        assert [s.stats().timed_out for s in subs] == [1, 1, 1]
        await bus.close(timeout=0)

    asyncio.run(main())


def test_a_slot_freed_for_a_cancelled_publisher_passes_to_the_next() -> None:
    async def main() -> None:
        bus = EventBus()
        gate = asyncio.Event()
        first: asyncio.Future[PublishResult] | None = None
        seen: list[int] = []

        async def handler(event: int) -> None:
            if event == 0:
                await gate.wait()
            elif event == 1 and first is not None:
                first.cancel()  # its putter was just woken for the slot event 1 freed
            seen.append(event)

        bus.subscribe(int, handler, buffer=1, block_timeout=5)
        await bus.publish(0)
        await asyncio.sleep(0)
        await bus.publish(1)
        first = asyncio.ensure_future(bus.publish(2))
        second = asyncio.ensure_future(bus.publish(3))
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.wait_for(second, 2) == PublishResult(1, 0)
        assert first.cancelled()
        await bus.close()
        assert seen == [0, 1, 3]

    asyncio.run(main())


def test_close_drains_what_was_accepted() -> None:
    seen: list[int] = []

    async def slowish(event: int) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    async def main() -> None:
        bus = EventBus()
        sub = bus.subscribe(int, slowish, buffer=50)
        idle = bus.subscribe(str, print)  # never received anything: no consumer to wait for
        for i in range(50):
            bus.publish_nowait(i)
        report = await bus.close(timeout=2)
        assert (report.drained, report.undelivered, report.cancelled) == (True, 0, ())
        assert sub.stats().delivered == 50 and not sub.stats().active and idle.task is None

    asyncio.run(main())
    assert seen == list(range(50))


def test_close_times_out_cancels_and_reports_every_undelivered_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        bus = EventBus("orders")
        gate = asyncio.Event()
        interrupted: list[int] = []

        async def stuck(event: int) -> None:
            try:
                await gate.wait()
            except asyncio.CancelledError:
                interrupted.append(event)
                raise

        sub = bus.subscribe(int, stuck, name="stuck", buffer=10)
        ok = bus.subscribe(int, lambda e: None, name="ok", buffer=10)
        for i in range(5):
            bus.publish_nowait(i)
        await asyncio.sleep(0)
        report = await bus.close(timeout=0.02)
        assert (report.drained, report.undelivered, report.undelivered_by, report.cancelled) == (
            False, 5, {"stuck": 5}, ("stuck",))  # fmt: skip
        stats = sub.stats()
        assert (stats.accepted, stats.delivered, stats.undelivered, stats.queued) == (5, 0, 5, 0)
        assert balanced(stats) and balanced(ok.stats()) and ok.stats().delivered == 5
        assert interrupted == [0]

    with caplog.at_level(logging.WARNING, logger="buttress.eventbus"):
        asyncio.run(main())
    assert any("closed with 5 undelivered events" in r.getMessage() for r in caplog.records)


def test_close_releases_blocked_publishers_and_concurrent_closes_share_the_report() -> None:
    async def main() -> None:
        bus = EventBus()
        gate = asyncio.Event()
        sub = bus.subscribe(int, lambda e: gate.wait(), buffer=1, block_timeout=30)
        await bus.publish(0)
        await asyncio.sleep(0)
        await bus.publish(1)
        blocked = asyncio.ensure_future(bus.publish(2))
        await asyncio.sleep(0)
        closing = [asyncio.ensure_future(bus.close(timeout=1)) for _ in range(2)]
        assert await asyncio.wait_for(blocked, 1) == PublishResult(0, 1)
        assert sub.stats().timed_out == 1
        gate.set()
        first, second = await asyncio.gather(*closing)
        assert first is second and first.drained and first.undelivered == 0
        assert sub.stats().delivered == 2

    asyncio.run(main())


def test_a_thousand_events_to_ten_subscribers() -> None:
    received: dict[str, list[int]] = {}

    def make(name: str, use_async: bool) -> Callable[[int], object]:
        bucket = received.setdefault(name, [])
        if use_async:

            async def handle(event: int) -> None:
                bucket.append(event)

            return handle
        return bucket.append

    async def main() -> None:
        bus = EventBus(buffer=100)
        subs = [bus.subscribe(int, make(f"s{i}", i % 2 == 0), name=f"s{i}") for i in range(10)]
        for i in range(1000):
            assert await bus.publish(i) == PublishResult(10, 0)
        report = await bus.close(timeout=5)
        assert report.drained and report.undelivered == 0
        for sub in subs:
            stats = sub.stats()
            assert (stats.accepted, stats.delivered, stats.dropped, stats.failed) == (1000, 1000, 0, 0)

    asyncio.run(main())
    assert all(events == list(range(1000)) for events in received.values()) and len(received) == 10


@pytest.mark.parametrize("publishers", [1, 2])
def test_cancelled_publishers_waiting_for_room_are_skipped(publishers: int) -> None:
    async def main() -> None:
        bus = EventBus()
        gate = asyncio.Event()
        seen: list[int] = []

        async def handler(event: int) -> None:
            if event == 0:
                await gate.wait()
            seen.append(event)

        bus.subscribe(int, handler, buffer=1, block_timeout=5)
        await bus.publish(0)
        await asyncio.sleep(0)
        await bus.publish(1)
        waiting = [asyncio.ensure_future(bus.publish(2 + i)) for i in range(publishers)]
        await asyncio.sleep(0)
        gate.set()
        waiting[0].cancel()  # its putter is cancelled before the consumer frees the slot
        if publishers == 2:
            assert await asyncio.wait_for(waiting[1], 2) == PublishResult(1, 0)
        await asyncio.sleep(0)
        await bus.close()
        assert waiting[0].cancelled()
        assert seen == ([0, 1, 3] if publishers == 2 else [0, 1])

    asyncio.run(main())


def test_close_skips_a_publisher_cancelled_in_the_same_step() -> None:
    async def main() -> None:
        bus = EventBus()
        never = asyncio.Event()
        sub = bus.subscribe(int, lambda e: never.wait(), buffer=1, block_timeout=5)
        await bus.publish(0)
        await asyncio.sleep(0)
        await bus.publish(1)
        blocked = asyncio.ensure_future(bus.publish(2))
        await asyncio.sleep(0)
        blocked.cancel()
        report = await bus.close(timeout=0)
        assert blocked.cancelled() and report.undelivered == 2 and sub.stats().timed_out == 0

    asyncio.run(main())


def test_cancelling_an_idle_subscription_leaves_nothing_to_drain() -> None:
    async def main() -> None:
        bus = EventBus()
        sub = bus.subscribe(int, print)
        sub.cancel()
        assert bus.stats() == () and sub.task is None
        assert (await bus.close()).drained

    asyncio.run(main())
