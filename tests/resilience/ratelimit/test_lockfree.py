"""The lock-free admission of MemoryLimiter: retired states, stale readings, the LRU hint."""

from __future__ import annotations

import pytest

from buttress.resilience.ratelimit import GCRA, FixedWindow, MemoryLimiter, SlidingWindowLog, TokenBucket
from buttress.resilience.ratelimit._rules import Rule
from buttress.testing import FakeClock

RULES: list[Rule] = [TokenBucket(rate=1, burst=5), GCRA(limit=5, period=5), FixedWindow(limit=5, window=5)]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: type(r).__name__)
def test_a_state_removed_from_the_map_refuses_what_a_late_caller_admits_on_it(rule: Rule) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(rule, clock=clock)
    assert limiter.try_acquire_fast("k")
    held = limiter._states["k"]  # what a lock-free caller fetched just before the removal
    limiter.clear()
    assert held[0].admit(held, clock.monotonic(), 1) is False
    # the key itself starts again with full capacity
    assert [limiter.try_acquire_fast("k") for _ in range(6)] == [True] * 5 + [False]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: type(r).__name__)
def test_evicted_and_swept_states_are_retired(rule: Rule) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(rule, max_keys=1, clock=clock)
    assert limiter.try_acquire_fast("a")
    evicted = limiter._states["a"]
    assert limiter.try_acquire_fast("b")  # evicts "a"
    assert "a" not in limiter
    assert evicted[0].admit(evicted, clock.monotonic(), 1) is False
    swept = limiter._states["b"]
    clock.advance(100)
    assert limiter.sweep() == 1
    assert swept[0].admit(swept, clock.monotonic(), 1) is False


def test_a_refusal_decides_again_under_the_lock() -> None:
    limiter = MemoryLimiter(TokenBucket(rate=1, burst=2), clock=FakeClock())
    assert [limiter.try_acquire_fast() for _ in range(3)] == [True, True, False]
    assert limiter.try_acquire("").remaining == 0


def test_a_reading_older_than_the_state_never_rolls_it_back() -> None:
    bucket = MemoryLimiter(TokenBucket(rate=1, burst=1))._core
    state = bucket.new(10.0)
    assert bucket.admit(state, 10.0, 1)
    assert not bucket.admit(state, 9.0, 1)  # a stale reading is taken as the state's own time
    assert state[2] == 10.0
    decision = bucket.decide(state, 9.5, 1)
    assert not decision.allowed and decision.retry_after == pytest.approx(1.0)
    window = MemoryLimiter(FixedWindow(limit=1, window=1))._core
    state = window.new(0.0)
    assert window.admit(state, 1.5, 1)  # window 1
    assert not window.admit(state, 0.5, 1)  # a window-0 reading counts in window 1: no re-opening
    assert not window.decide(state, 0.5, 1).allowed
    assert state[1] == 1


def test_keys_still_leave_in_least_recently_used_order() -> None:
    clock = FakeClock()
    for rule in (TokenBucket(rate=1, burst=5), SlidingWindowLog(limit=5, window=5)):
        limiter = MemoryLimiter(rule, max_keys=2, clock=clock, overrides={"x": rule})
        limiter.try_acquire_fast("a")
        limiter.try_acquire_fast("b")
        limiter.try_acquire_fast("a")  # "a" is the most recent again
        limiter.try_acquire("b")
        limiter.try_acquire("a")
        limiter.try_acquire_fast("c")  # evicts the least recent: "b"
        assert "a" in limiter and "b" not in limiter and "c" in limiter


@pytest.mark.parametrize("rule", RULES, ids=lambda r: type(r).__name__)
def test_lock_free_admissions_touch_keys_and_refill(rule: Rule) -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(rule, max_keys=2, clock=clock)
    assert limiter.try_acquire_fast("a") and limiter.try_acquire_fast("b")
    clock.advance(60)  # everything refilled; the bucket clamps at its burst
    assert limiter.try_acquire_fast("a")  # "a" becomes the most recent
    assert limiter.try_acquire_fast("c")  # evicts "b"
    assert "a" in limiter and "b" not in limiter
    assert limiter.try_acquire("a").remaining == 3
