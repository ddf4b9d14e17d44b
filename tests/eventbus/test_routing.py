"""Routing by event type (subclasses included) and string topic; ordering; error isolation."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from buttress.errors import ConfigurationError
from buttress.eventbus import BusClosedError, EventBus, PublishResult, Subscription


@dataclass(frozen=True)
class OrderEvent:
    order_id: int


@dataclass(frozen=True)
class OrderPaid(OrderEvent):
    amount: int = 0


def test_type_topics_include_subclasses_and_object_sees_everything() -> None:
    base: list[object] = []
    paid: list[object] = []
    everything: list[object] = []
    strings: list[str] = []

    async def main() -> None:
        async with EventBus() as bus:
            bus.subscribe(OrderEvent, base.append)
            bus.subscribe(OrderPaid, paid.append)
            bus.subscribe(object, everything.append)
            bus.subscribe(str, strings.append)
            assert await bus.publish(OrderEvent(1)) == PublishResult(accepted=2, dropped=0)
            assert await bus.publish(OrderPaid(2, 10)) == PublishResult(accepted=3, dropped=0)
            assert bus.publish_nowait("note") == PublishResult(accepted=2, dropped=0)
            assert bus.publish_nowait(42) == PublishResult(accepted=1, dropped=0)

    asyncio.run(main())
    assert base == [OrderEvent(1), OrderPaid(2, 10)]
    assert paid == [OrderPaid(2, 10)]
    assert everything == [OrderEvent(1), OrderPaid(2, 10), "note", 42]
    assert strings == ["note"]


def test_string_topics_combine_with_type_topics() -> None:
    created: list[object] = []
    shipped: list[object] = []
    typed: list[object] = []

    async def main() -> None:
        bus = EventBus()
        bus.subscribe("orders.created", created.append)
        bus.subscribe("orders.shipped", shipped.append)
        assert bus.publish_nowait({"id": 1}, topic="orders.created").accepted == 1
        assert bus.publish_nowait({"id": 2}, topic="nobody") == PublishResult(0, 0)
        assert bus.publish_nowait({"id": 3}) == PublishResult(0, 0)  # no topic, no dict subscriber
        bus.subscribe(dict, typed.append)
        assert (await bus.publish({"id": 4}, topic="orders.shipped")).accepted == 2
        assert (await bus.publish({"id": 5}, topic="orders.shipped")).accepted == 2  # cached route
        await bus.close()

    asyncio.run(main())
    assert created == [{"id": 1}]
    assert shipped == [{"id": 4}, {"id": 5}]
    assert typed == [{"id": 4}, {"id": 5}]


def test_each_subscriber_sees_events_in_publication_order() -> None:
    rng = random.Random(7)
    got: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def make(name: str) -> Callable[[int], Awaitable[None]]:
        async def handler(event: int) -> None:
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            got[name].append(event)

        return handler

    async def main() -> None:
        bus = EventBus(buffer=7)
        for name in got:
            bus.subscribe(int, make(name), name=name)
        for i in range(200):  # buffer 7 < 200: publishers keep blocking on full queues
            assert (await bus.publish(i)).ok
        assert (await bus.close(timeout=2)).drained

    asyncio.run(main())
    for events in got.values():
        assert events == list(range(200))


def test_a_failing_handler_is_isolated_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    good: list[int] = []

    def bad(event: int) -> None:
        raise ValueError(f"bad {event}")

    async def also_bad(event: int) -> None:
        await asyncio.sleep(0)
        if event % 2:
            raise KeyError(event)

    async def main() -> None:
        bus = EventBus()
        bad_sub = bus.subscribe(int, bad)
        async_sub = bus.subscribe(int, also_bad)
        good_sub = bus.subscribe(int, good.append, name="good")
        for i in range(10):
            result = await bus.publish(i)  # the publisher never sees a handler error
            assert result == PublishResult(3, 0)
        await bus.close()
        assert (bad_sub.stats().failed, bad_sub.stats().delivered) == (10, 0)
        assert (async_sub.stats().failed, async_sub.stats().delivered) == (5, 5)
        assert (good_sub.stats().failed, good_sub.stats().delivered) == (0, 10)

    with caplog.at_level(logging.ERROR, logger="buttress.eventbus"):
        asyncio.run(main())
    assert good == list(range(10))
    failures = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert len(failures) == 15 and all(r.exc_info for r in failures)


def test_a_sync_callable_returning_an_awaitable_is_awaited() -> None:
    seen: list[str] = []

    async def record(event: str) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    async def main() -> None:
        bus = EventBus()
        bus.subscribe(str, lambda event: record(event))
        bus.publish_nowait("x")
        await bus.close()

    asyncio.run(main())
    assert seen == ["x"]


def test_a_cancelled_subscription_gets_no_new_events_but_keeps_its_queue() -> None:
    seen: list[int] = []

    async def main() -> None:
        bus = EventBus()
        gate = asyncio.Event()

        async def slow(event: int) -> None:
            await gate.wait()
            seen.append(event)

        sub = bus.subscribe(int, slow, name="slow")
        with bus.subscribe(int, lambda e: None, name="quick") as quick:
            for i in range(3):
                bus.publish_nowait(i)
            assert quick.active
        assert not quick.stats().active
        sub.cancel()
        sub.cancel()  # idempotent
        assert bus.publish_nowait(99) == PublishResult(0, 0)
        stats = {s.name: s for s in bus.stats()}
        assert stats["slow"].queued == 3 and not stats["slow"].active  # still draining
        gate.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert [s.name for s in bus.stats()] == []  # drained, then forgotten
        report = await bus.close()
        assert report.drained and report.undelivered == 0

    asyncio.run(main())
    assert seen == [0, 1, 2]


def test_closed_bus_refuses_publish_and_subscribe() -> None:
    async def main() -> None:
        bus = EventBus("orders")
        first = await bus.close()
        assert bus.closed and first.drained
        assert await bus.close() is first
        with pytest.raises(BusClosedError, match="'orders' is closed"):
            bus.publish_nowait(1)
        with pytest.raises(BusClosedError):
            await bus.publish(1)
        with pytest.raises(BusClosedError):
            bus.subscribe(int, print)
        assert repr(bus) == "EventBus('orders', subscribers=0, closed=True)"

    asyncio.run(main())
    assert issubclass(BusClosedError, RuntimeError)


def test_names_are_unique_and_options_are_validated_all_at_once() -> None:
    def handler(event: object) -> None: ...

    bus = EventBus()
    assert [bus.subscribe(int, handler).name for _ in range(3)] == [
        "test_names_are_unique_and_options_are_validated_all_at_once.<locals>.handler",
        "test_names_are_unique_and_options_are_validated_all_at_once.<locals>.handler#2",
        "test_names_are_unique_and_options_are_validated_all_at_once.<locals>.handler#3",
    ]
    assert bus.subscribe(int, print).name == "print"
    sub = bus.subscribe(int, handler, name="audit")
    assert isinstance(sub, Subscription) and repr(sub) == "Subscription('audit', policy='block', queued=0)"
    with pytest.raises(ConfigurationError) as info:
        bus.subscribe(3, 4, buffer=0, policy="spill", block_timeout=-1, name="audit")  # type: ignore[call-overload]
    assert len(info.value.problems) == 6
    with pytest.raises(ConfigurationError) as info:
        EventBus(buffer=0, policy="x", block_timeout=float("inf"))  # type: ignore[arg-type]
    assert len(info.value.problems) == 3
    with pytest.raises(ConfigurationError, match="timeout must be >= 0"):
        asyncio.run(bus.close(timeout=-1))


def test_publish_needs_the_running_loop_and_counts_nothing_without_it() -> None:
    bus = EventBus()
    sub = bus.subscribe(int, print)
    with pytest.raises(RuntimeError, match="no running event loop"):
        bus.publish_nowait(1)
    assert sub.stats().accepted == 0 and sub.stats().queued == 0
