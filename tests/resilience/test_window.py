"""Tests of buttress.resilience.window: RollingWindow, OutcomeRing, TimeOutcomeWindow."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import ConfigurationError
from buttress.resilience.window import (
    Bucket,
    OutcomeRing,
    OutcomeWindow,
    RollingWindow,
    TimeOutcomeWindow,
)
from buttress.testing import FakeClock

# -- RollingWindow ------------------------------------------------------------------------


def test_defaults_and_repr() -> None:
    window = RollingWindow()
    assert window.size == 10
    assert window.bucket_duration == 1.0
    assert repr(window) == "RollingWindow(size=10, bucket_duration=1.0)"


def test_timedelta_bucket_duration() -> None:
    assert RollingWindow(2, timedelta(milliseconds=250)).bucket_duration == 0.25


def test_empty_window_reads() -> None:
    window = RollingWindow(3, 1.0, clock=FakeClock())
    assert window.sum() == 0.0
    assert window.count() == 0
    assert window.min() == 0.0
    assert window.max() == 0.0
    assert window.avg() == 0.0
    assert window.reduce(list) == []


def test_points_in_one_bucket_aggregate() -> None:
    clock = FakeClock(5.2)
    window = RollingWindow(3, 1.0, clock=clock)
    for value in (4.0, -1.0, 7.0, 2.0):
        window.add(value)
    assert window.sum() == 12.0
    assert window.count() == 4
    assert window.min() == -1.0
    assert window.max() == 7.0
    assert window.avg() == 3.0
    [bucket] = window.reduce(list)
    assert (bucket.start, bucket.sum, bucket.count, bucket.min, bucket.max) == (5.0, 12.0, 4, -1.0, 7.0)
    assert bucket.avg == 3.0
    assert bucket.index == 5
    assert repr(bucket) == "Bucket(start=5.0, sum=12.0, count=4)"


def test_empty_bucket_avg() -> None:
    assert Bucket().avg == 0.0


def test_buckets_are_aligned_to_boundaries() -> None:
    # Points at 0.99 and 1.0 are a hundredth apart but fall into different buckets; the
    # window of size 2 read at 2.0 covers buckets 1 and 2 only.
    window = RollingWindow(2, 1.0)
    window.add(1.0, now=0.99)
    window.add(10.0, now=1.0)
    assert window.sum(now=1.99) == 11.0
    assert window.sum(now=2.0) == 10.0
    assert window.sum(now=2.999) == 10.0
    assert window.sum(now=3.0) == 0.0


def test_window_expires_whole_buckets() -> None:
    clock = FakeClock()
    window = RollingWindow(3, 0.5, clock=clock)
    window.add(1.0)  # bucket 0 = [0, 0.5)
    clock.advance(0.5)
    window.add(2.0)  # bucket 1
    clock.advance(0.5)
    window.add(3.0)  # bucket 2
    assert window.sum() == 6.0
    clock.advance(0.5)  # bucket 3: bucket 0 expires
    assert window.sum() == 5.0
    assert window.count() == 2
    clock.advance(1.0)  # bucket 5: buckets 3..5 are live and all empty
    assert window.sum() == 0.0
    assert window.count() == 0


def test_read_skips_expired_bucket_that_was_not_overwritten() -> None:
    window = RollingWindow(4, 1.0)
    window.add(1.0, now=0.0)  # slot 0
    window.add(2.0, now=2.0)  # slot 2
    # At t=4.5 the current bucket is 4 (slot 0); bucket 0 still sits in slot 0 unrecycled.
    assert window.sum(now=4.5) == 2.0
    assert window.min(now=4.5) == 2.0
    assert window.max(now=4.5) == 2.0
    assert [b.start for b in window.reduce(list, now=4.5)] == [2.0]


def test_recycled_slot_starts_fresh() -> None:
    window = RollingWindow(2, 1.0)
    window.add(100.0, now=0.0)
    window.add(-100.0, now=0.5)
    window.add(3.0, now=2.0)  # same slot as bucket 0, which expired
    [bucket] = window.reduce(list, now=2.0)
    assert (bucket.sum, bucket.count, bucket.min, bucket.max) == (3.0, 1, 3.0, 3.0)


def test_point_older_than_its_slot_is_dropped() -> None:
    window = RollingWindow(2, 1.0)
    window.add(5.0, now=2.5)
    window.add(7.0, now=0.5)  # bucket 0 shares slot 0 with bucket 2: far outside the window
    assert window.sum(now=2.5) == 5.0
    assert window.count(now=2.5) == 1


def test_late_point_inside_window_is_kept() -> None:
    window = RollingWindow(3, 1.0)
    window.add(5.0, now=2.5)
    window.add(7.0, now=1.5)
    assert window.sum(now=2.5) == 12.0


def test_reads_before_the_points_exclude_future_buckets() -> None:
    window = RollingWindow(3, 1.0)
    window.add(5.0, now=2.5)
    assert window.sum(now=1.0) == 0.0


def test_reduce_yields_buckets_oldest_first_across_the_ring_seam() -> None:
    window = RollingWindow(3, 1.0)
    for t in (3.0, 4.0, 5.0):  # slots 0, 1, 2
        window.add(t, now=t)
    assert window.reduce(lambda bs: [b.sum for b in bs], now=5.0) == [3.0, 4.0, 5.0]
    window.add(6.0, now=6.0)  # slot 0 again
    assert window.reduce(lambda bs: [b.sum for b in bs], now=6.0) == [4.0, 5.0, 6.0]


def test_reduce_returns_fn_result() -> None:
    window = RollingWindow(3, 1.0)
    window.add(2.0, now=0.0)
    window.add(4.0, now=1.0)

    def weighted(buckets: Iterable[Bucket]) -> float:
        return sum(b.sum * b.count for b in buckets)

    assert window.reduce(weighted, now=1.0) == 6.0


def test_reset_forgets_everything() -> None:
    window = RollingWindow(3, 1.0)
    window.add(2.0, now=0.0)
    window.reset()
    assert window.count(now=0.0) == 0
    window.add(1.0, now=0.0)
    assert window.sum(now=0.0) == 1.0


def test_negative_times_floor_correctly() -> None:
    window = RollingWindow(2, 1.0)
    window.add(1.0, now=-0.5)  # bucket -1
    window.add(2.0, now=0.5)  # bucket 0
    assert window.sum(now=0.5) == 3.0
    assert window.sum(now=1.0) == 2.0


def test_uses_clock_when_now_is_omitted() -> None:
    clock = FakeClock(100.0)
    window = RollingWindow(1, 10.0, clock=clock)
    window.add(1.0)
    assert window.sum() == 1.0
    assert window.sum(now=100.0) == 1.0
    clock.advance(10.0)
    assert window.sum() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "messages"),
    [
        ({"size": 0}, ["size must be an integer >= 1 (got 0)"]),
        ({"size": 2.5}, ["size must be an integer >= 1 (got 2.5)"]),
        ({"bucket_duration": 0}, ["bucket_duration must be > 0 (got 0)"]),
        ({"bucket_duration": math.inf}, ["bucket_duration must be finite (got inf)"]),
        ({"bucket_duration": math.nan}, ["bucket_duration must not be NaN"]),
        (
            {"size": True, "bucket_duration": -1.0},
            ["size must be an integer >= 1 (got True)", "bucket_duration must be > 0 (got -1.0)"],
        ),
    ],
)
def test_rolling_window_validation(kwargs: dict[str, object], messages: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        RollingWindow(**kwargs)  # type: ignore[arg-type]
    assert list(info.value.problems) == messages


# Times are multiples of 1/8 so that floor(t / bucket_duration) is exact for both the window
# and the model; values are integers so that sums do not depend on the order of addition.
_times = st.integers(min_value=0, max_value=400).map(lambda n: n / 8)
_rolling_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(min_value=-1000, max_value=1000)),
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=40).map(lambda n: n / 8)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=6),
    bucket_duration=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    start=_times,
    ops=_rolling_ops,
)
def test_rolling_window_matches_reference_model(
    size: int, bucket_duration: float, start: float, ops: list[tuple[str, float]]
) -> None:
    clock = FakeClock(start)
    window = RollingWindow(size, bucket_duration, clock=clock)
    points: list[tuple[float, float]] = []
    for op, arg in ops:
        if op == "add":
            window.add(float(arg))
            points.append((clock.monotonic(), float(arg)))
        else:
            clock.advance(arg)
        current = math.floor(clock.monotonic() / bucket_duration)
        live = [v for t, v in points if current - size < math.floor(t / bucket_duration) <= current]
        assert window.sum() == sum(live)
        assert window.count() == len(live)
        assert window.min() == (min(live) if live else 0.0)
        assert window.max() == (max(live) if live else 0.0)
        assert window.avg() == pytest.approx(sum(live) / len(live) if live else 0.0)
        assert sum(b.count for b in window.reduce(list)) == len(live)


# -- outcome windows ------------------------------------------------------------------------


def test_outcome_windows_satisfy_the_protocol() -> None:
    windows: list[OutcomeWindow] = [OutcomeRing(3), TimeOutcomeWindow(1.0)]
    for window in windows:
        window.record(True, True, 0.0)
        assert window.totals(0.0) == (1, 1, 1)
        window.reset()
        assert window.totals(0.0) == (0, 0, 0)


def test_ring_keeps_last_size_outcomes() -> None:
    ring = OutcomeRing(3)
    assert ring.totals() == (0, 0, 0)
    ring.record(True, True, 1.0)
    ring.record(False, True, 2.0)
    assert ring.totals(99.0) == (2, 1, 2)
    ring.record(False, False, 3.0)
    assert ring.totals() == (3, 1, 2)
    ring.record(False, False, 4.0)  # evicts (failed, slow)
    assert ring.totals() == (3, 0, 1)
    ring.record(True, False, 5.0)  # evicts (ok, slow)
    assert ring.totals() == (3, 1, 0)
    assert repr(ring) == "OutcomeRing(size=3)"


def test_ring_reset_starts_over() -> None:
    ring = OutcomeRing(2)
    ring.record(True, True)
    ring.record(True, True)
    ring.reset()
    assert ring.totals() == (0, 0, 0)
    ring.record(False, False)
    ring.record(False, True)
    ring.record(False, False)  # must evict only outcomes recorded after the reset
    assert ring.totals() == (2, 0, 1)


def test_ring_of_one() -> None:
    ring = OutcomeRing(1)
    ring.record(True, False)
    ring.record(False, True)
    assert ring.totals() == (1, 0, 1)


@pytest.mark.parametrize("size", [0, -3, 1.5, None])
def test_ring_validation(size: object) -> None:
    with pytest.raises(ConfigurationError, match="size must be an integer >= 1"):
        OutcomeRing(size)  # type: ignore[arg-type]


_outcomes = st.lists(st.tuples(st.booleans(), st.booleans()), max_size=80)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(min_value=1, max_value=10), outcomes=_outcomes)
def test_ring_matches_reference_model(size: int, outcomes: list[tuple[bool, bool]]) -> None:
    ring = OutcomeRing(size)
    model: deque[tuple[bool, bool]] = deque(maxlen=size)
    for failed, slow in outcomes:
        ring.record(failed, slow, 0.0)
        model.append((failed, slow))
        assert ring.totals(0.0) == (len(model), sum(f for f, _ in model), sum(s for _, s in model))


def test_time_window_attributes_and_repr() -> None:
    window = TimeOutcomeWindow(timedelta(seconds=5), buckets=5)
    assert (window.duration, window.buckets, window.bucket_duration) == (5.0, 5, 1.0)
    assert repr(window) == "TimeOutcomeWindow(duration=5.0, buckets=5)"
    assert TimeOutcomeWindow(3.0).buckets == 10


def test_time_window_expires_by_bucket() -> None:
    window = TimeOutcomeWindow(4.0, buckets=4)
    window.record(True, False, 0.2)
    window.record(False, True, 1.7)
    window.record(True, True, 3.9)
    assert window.totals(3.99) == (3, 2, 2)
    assert window.totals(4.0) == (2, 1, 2)  # bucket [0, 1) left
    assert window.totals(4.99) == (2, 1, 2)
    assert window.totals(5.0) == (1, 1, 1)  # bucket [1, 2) left
    assert window.totals(6.99) == (1, 1, 1)
    assert window.totals(7.0) == (0, 0, 0)


def test_time_window_jump_longer_than_window_clears_all() -> None:
    window = TimeOutcomeWindow(1.0, buckets=4)
    window.record(True, True, 0.0)
    window.record(True, True, 0.9)
    window.record(False, False, 100.0)
    assert window.totals(100.0) == (1, 0, 0)


def test_time_window_late_outcomes() -> None:
    window = TimeOutcomeWindow(3.0, buckets=3)
    window.record(False, False, 5.5)
    window.record(True, False, 4.2)  # within the window: counted in its own bucket
    window.record(True, True, 2.9)  # older than the window: dropped
    assert window.totals(5.5) == (2, 1, 0)
    assert window.totals(1.0) == (2, 1, 0)  # time going backwards answers for the latest time
    assert window.totals(7.0) == (1, 0, 0)  # bucket 4 left, so the late failure left with it


def test_time_window_reset() -> None:
    window = TimeOutcomeWindow(3.0, buckets=3)
    window.record(True, True, 10.0)
    window.reset()
    window.record(True, False, 2.0)  # earlier than before the reset: accepted after a reset
    assert window.totals(2.0) == (1, 1, 0)
    window.reset()
    assert window.totals(10.0) == (0, 0, 0)


@pytest.mark.parametrize(
    ("duration", "buckets", "messages"),
    [
        (0.0, 10, ["duration must be > 0 (got 0.0)"]),
        (math.inf, 10, ["duration must be finite (got inf)"]),
        ("3", 10, ["duration must be a number of seconds (got '3')"]),
        (-1, 0, ["duration must be > 0 (got -1)", "buckets must be an integer >= 1 (got 0)"]),
    ],
)
def test_time_window_validation(duration: object, buckets: object, messages: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        TimeOutcomeWindow(duration, buckets)  # type: ignore[arg-type]
    assert list(info.value.problems) == messages


_time_ops = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=24).map(lambda n: n / 8),  # time step
        st.booleans(),
        st.booleans(),
        st.booleans(),  # record (True) or only read (False)
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    duration=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    buckets=st.sampled_from([1, 2, 4]),
    start=_times,
    ops=_time_ops,
)
def test_time_window_matches_reference_model(
    duration: float, buckets: int, start: float, ops: list[tuple[float, bool, bool, bool]]
) -> None:
    window = TimeOutcomeWindow(duration, buckets)
    bucket_duration = duration / buckets
    now = start
    events: list[tuple[float, bool, bool]] = []
    for step, failed, slow, do_record in ops:
        now += step
        if do_record:
            window.record(failed, slow, now)
            events.append((now, failed, slow))
        current = math.floor(now / bucket_duration)
        live = [(f, s) for t, f, s in events if current - buckets < math.floor(t / bucket_duration)]
        assert window.totals(now) == (len(live), sum(f for f, _ in live), sum(s for _, s in live))
