"""Each algorithm against a simple, exact reference model (rational arithmetic) on a fake clock.

Times are multiples of 1/64 s and windows powers of two, so the float implementation and the
exact model see the same instants; where float rounding remains (GCRA's ``period / limit``),
the documented TOLERANCE absorbs it and the decisions must still agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction as F
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.resilience.ratelimit import (
    GCRA,
    Concurrency,
    FixedWindow,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from buttress.resilience.ratelimit._algorithms import core_for
from buttress.resilience.ratelimit._rules import Rule

Expected = tuple[bool, int, float, float]  # allowed, remaining, retry_after, reset_after


class TokenBucketModel:
    def __init__(self, rate: F, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens: F = F(burst)
        self.last: F | None = None

    def step(self, t: F, cost: int) -> Expected:
        if self.last is not None:
            self.tokens = min(F(self.burst), self.tokens + (t - self.last) * self.rate)
        self.last = t
        allowed = self.tokens >= cost
        if allowed:
            self.tokens -= cost
        retry = (
            0.0 if allowed else (math.inf if cost > self.burst else float((cost - self.tokens) / self.rate))
        )
        return allowed, math.floor(self.tokens), retry, float((self.burst - self.tokens) / self.rate)


class GCRAModel:
    def __init__(self, limit: int, period: F, burst: int) -> None:
        self.T = period / limit
        self.tau = self.T * burst
        self.burst = burst
        self.tat: F | None = None

    def step(self, t: F, cost: int) -> Expected:
        tat = t if self.tat is None else max(self.tat, t)
        new = tat + self.T * cost
        allowed = new - t <= self.tau
        after = new if allowed else tat
        if allowed:
            self.tat = new
        elif self.tat is None:
            self.tat = t
        remaining = max(0, math.floor((self.tau - (after - t)) / self.T))
        retry = 0.0 if allowed else (math.inf if cost > self.burst else float(new - self.tau - t))
        return allowed, remaining, retry, float(max(F(0), after - t))


class FixedWindowModel:
    def __init__(self, limit: int, window: F) -> None:
        self.limit, self.window = limit, window
        self.counts: dict[int, int] = {}

    def step(self, t: F, cost: int) -> Expected:
        w = math.floor(t / self.window)
        count = self.counts.get(w, 0)
        allowed = count + cost <= self.limit
        if allowed:
            count += cost
            self.counts[w] = count
        reset = float((w + 1) * self.window - t)
        retry = 0.0 if allowed else (math.inf if cost > self.limit else reset)
        return allowed, self.limit - count, retry, reset


class SlidingLogModel:
    def __init__(self, limit: int, window: F) -> None:
        self.limit, self.window = limit, window
        self.log: list[F] = []

    def step(self, t: F, cost: int) -> Expected:
        live = [x for x in self.log if x > t - self.window]
        allowed = len(live) + cost <= self.limit
        if allowed:
            live += [t] * cost
        self.log = live
        if allowed:
            retry = 0.0
        elif cost > self.limit:
            retry = math.inf
        else:
            retry = float(live[len(live) - self.limit + cost - 1] + self.window - t)
        reset = float(live[-1] + self.window - t) if live else 0.0
        return allowed, self.limit - len(live), retry, reset


class SlidingCounterModel:
    def __init__(self, limit: int, window: F) -> None:
        self.limit, self.window = limit, window
        self.counts: dict[int, int] = {}

    def estimate(self, t: F) -> F:
        w = math.floor(t / self.window)
        f = (t - w * self.window) / self.window
        return self.counts.get(w - 1, 0) * (1 - f) + self.counts.get(w, 0)

    def step(self, t: F, cost: int) -> Expected:
        w = math.floor(t / self.window)
        est = self.estimate(t)
        allowed = est + cost <= self.limit
        if allowed:
            self.counts[w] = self.counts.get(w, 0) + cost
            est += cost
        busy = self.counts.get(w - 1, 0) or self.counts.get(w, 0)
        reset = float((w + 2) * self.window - t) if busy else 0.0
        if allowed:
            retry = 0.0
        elif cost > self.limit:
            retry = math.inf
        else:
            retry = float(self.first_admission(t, cost) - t)
        return allowed, max(0, math.floor(self.limit - est)), retry, reset

    def first_admission(self, t: F, cost: int) -> F:
        # Brute force on a fine grid, then exact: the estimate only falls between admissions.
        step = self.window / 4096
        probe = t
        while self.estimate(probe) + cost > self.limit:
            probe += step
        return probe


class ConcurrencyModel:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0

    def step(self, t: F, cost: int) -> Expected:
        allowed = self.inflight + cost <= self.limit
        if allowed:
            self.inflight += cost
        retry = 0.0 if allowed or cost <= self.limit else math.inf
        return allowed, self.limit - self.inflight, retry, 0.0


steps = st.lists(st.tuples(st.integers(0, 96), st.integers(1, 6)), min_size=1, max_size=60)
windows = st.sampled_from([F(1, 4), F(1, 2), F(1), F(2), F(4)])


def check(rule: Rule, model: Any, trace: list[tuple[int, int]], *, retry_tolerance: float = 1e-6) -> None:
    core = core_for(rule)
    t = F(1000)  # a monotonic clock rarely starts at zero
    state = core.new(float(t))
    twin = core.new(float(t))
    for dt, cost in trace:
        t += F(dt, 64)
        got = core.decide(state, float(t), cost)
        assert core.admit(twin, float(t), cost) is got.allowed, (t, cost)
        allowed, remaining, retry, reset = model.step(t, cost)
        assert got.allowed is allowed, (t, cost, got)
        assert got.remaining == remaining, (t, cost, got, remaining)
        assert got.limit == rule.capacity
        assert got.policy == rule.policy_header()
        assert math.isclose(got.reset_after, reset, abs_tol=1e-6), (t, cost, got, reset)
        if math.isinf(retry):
            assert math.isinf(got.retry_after)
        else:
            assert math.isclose(got.retry_after, retry, abs_tol=retry_tolerance), (t, cost, got, retry)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 16), st.sampled_from([F(1, 2), F(1), F(4), F(16)]), steps)
def test_token_bucket_matches_model(burst: int, rate: F, trace: list[tuple[int, int]]) -> None:
    check(TokenBucket(rate=float(rate), burst=burst), TokenBucketModel(rate, burst), trace)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10), windows, st.one_of(st.none(), st.integers(1, 12)), steps)
def test_gcra_matches_model(limit: int, period: F, burst: int | None, trace: list[tuple[int, int]]) -> None:
    rule = GCRA(limit=limit, period=float(period), burst=burst)
    check(rule, GCRAModel(limit, period, rule.capacity), trace)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), windows, steps)
def test_fixed_window_matches_model(limit: int, window: F, trace: list[tuple[int, int]]) -> None:
    check(FixedWindow(limit=limit, window=float(window)), FixedWindowModel(limit, window), trace)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), windows, steps)
def test_sliding_log_matches_model(limit: int, window: F, trace: list[tuple[int, int]]) -> None:
    check(SlidingWindowLog(limit=limit, window=float(window)), SlidingLogModel(limit, window), trace)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), windows, steps)
def test_sliding_counter_matches_model(limit: int, window: F, trace: list[tuple[int, int]]) -> None:
    model = SlidingCounterModel(limit, window)
    # the model finds the first admission on a grid of window/4096
    check(
        SlidingWindowCounter(limit=limit, window=float(window)),
        model,
        trace,
        retry_tolerance=float(window) / 2048,
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), steps)
def test_concurrency_matches_model(limit: int, trace: list[tuple[int, int]]) -> None:
    check(Concurrency(limit=limit), ConcurrencyModel(limit), trace)


def _admitted_after_retry(rule: Rule, make: Callable[[], list[tuple[int, int]]]) -> None:
    core = core_for(rule)
    t = 10.0
    state = core.new(t)
    for dt, cost in make():
        t += dt / 64
        d = core.decide(state, t, cost)
        if not d.allowed and math.isfinite(d.retry_after):
            probe = list(state)
            probe[1:] = [type(v)(v) if not hasattr(v, "copy") else v.copy() for v in state[1:]]
            assert core.decide(probe, t + d.retry_after, cost).allowed, (rule, t, cost, d)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            TokenBucket(rate=3, burst=5),
            GCRA(limit=3, period=1),
            FixedWindow(limit=4, window=0.5),
            SlidingWindowLog(limit=4, window=0.5),
            SlidingWindowCounter(limit=4, window=0.5),
        ]
    ),
    steps,
)
def test_waiting_retry_after_admits(rule: Rule, trace: list[tuple[int, int]]) -> None:
    """The promise drivers rely on: after ``retry_after`` the same request is admitted."""
    _admitted_after_retry(rule, lambda: trace)


def test_idle_state_equals_fresh_state() -> None:
    for rule in (
        TokenBucket(rate=2, burst=4),
        GCRA(limit=2, period=1),
        FixedWindow(limit=2, window=1),
        SlidingWindowLog(limit=2, window=1),
        SlidingWindowCounter(limit=2, window=1),
        Concurrency(limit=2),
    ):
        core = core_for(rule)
        state = core.new(0.0)
        assert core.idle(state, 0.0)
        core.decide(state, 0.0, 2)
        assert not core.idle(state, 0.0), rule
        if isinstance(rule, Concurrency):
            core.release(state, 5)  # type: ignore[union-attr]
            assert state[1] == 0 and core.idle(state, 0.0)
        else:
            assert core.idle(state, 2.5), rule
            assert core.decide(state, 2.5, rule.capacity).allowed


def test_core_for_rejects_other_objects() -> None:
    import pytest

    with pytest.raises(TypeError, match="not a rate-limit rule"):
        core_for("10/minute")  # type: ignore[arg-type]
