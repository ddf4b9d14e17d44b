"""The in-memory limiter: keys, bounded memory, overrides, validation; rules and headers."""

from __future__ import annotations

import asyncio
import math

import pytest

from buttress.errors import ConfigurationError
from buttress.resilience.ratelimit import (
    GCRA,
    Concurrency,
    Decision,
    FixedWindow,
    MemoryLimiter,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from buttress.resilience.ratelimit._decision import make_decision
from buttress.testing import FakeClock


def test_keys_are_independent_and_state_follows_the_clock() -> None:
    clock = FakeClock(100.0)
    limiter = MemoryLimiter(TokenBucket(rate=1, burst=2), clock=clock)
    assert [limiter.try_acquire("a").allowed for _ in range(3)] == [True, True, False]
    assert limiter.try_acquire("b").allowed
    refused = limiter.try_acquire("a")
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 1.0)
    clock.advance(1.0)
    assert limiter.try_acquire_fast("a") is True
    assert limiter.try_acquire_fast("a") is False
    assert asyncio.run(limiter.atry_acquire("b")).remaining == 1  # refilled to 2, took 1


def test_bounded_memory_with_a_flood_of_distinct_keys() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(FixedWindow(limit=5, window=60), max_keys=1000, clock=clock)
    for i in range(100_000):
        assert limiter.try_acquire_fast(f"ip-{i}")
        assert len(limiter) <= 1000
    assert len(limiter) == 1000
    # least recently used went first: the last 1000 keys are the ones kept
    assert "ip-99999" in limiter and "ip-98999" not in limiter and "ip-99000" in limiter


def test_eviction_is_least_recently_used_not_oldest_inserted() -> None:
    limiter = MemoryLimiter(FixedWindow(limit=5, window=60), max_keys=3, clock=FakeClock())
    for key in ("a", "b", "c"):
        limiter.try_acquire(key)
    limiter.try_acquire("a")  # a is now the most recently used
    limiter.try_acquire("d")
    assert "a" in limiter and "b" not in limiter and len(limiter) == 3


def test_idle_keys_expire_as_new_keys_arrive_and_on_sweep() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(TokenBucket(rate=10, burst=10), clock=clock)
    for i in range(50):
        limiter.try_acquire(f"k{i}")
    assert len(limiter) == 50
    clock.advance(0.2)  # every bucket has refilled: all 50 are idle
    limiter.try_acquire("new")
    assert len(limiter) == 49  # two idle keys swept, one added
    assert limiter.sweep() == 48
    assert len(limiter) == 1
    limiter.clear()
    assert len(limiter) == 0


def test_overrides_exact_beats_longest_prefix_beats_default() -> None:
    limiter = MemoryLimiter(
        FixedWindow(limit=1, window=60),
        overrides={
            "tenant:*": FixedWindow(5, 60),
            "tenant:big:*": FixedWindow(50, 60),
            "tenant:big:x": FixedWindow(2, 60),
        },
        clock=FakeClock(),
    )
    assert limiter.try_acquire("other").limit == 1
    assert limiter.try_acquire("tenant:small").limit == 5
    assert limiter.try_acquire("tenant:big:y").limit == 50
    assert limiter.try_acquire("tenant:big:x").limit == 2


def test_invalid_configuration_lists_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        MemoryLimiter(FixedWindow(1, 1), max_keys=0, overrides={"x": TokenBucket(1, 1)})
    assert len(info.value.problems) == 2
    assert "max_keys" in info.value.problems[0] and "overrides['x']" in info.value.problems[1]


@pytest.mark.parametrize("cost", [0, -1, 1.0, True, "1"])
def test_cost_must_be_a_positive_integer(cost: object) -> None:
    limiter = MemoryLimiter(FixedWindow(1, 1), clock=FakeClock())
    with pytest.raises(ValueError, match="cost must be an integer >= 1"):
        limiter.try_acquire("k", cost)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost must be an integer >= 1"):
        limiter.try_acquire_fast("k", cost)  # type: ignore[arg-type]


def test_cost_above_capacity_is_refused_forever_without_raising() -> None:
    for rule in (
        TokenBucket(1, 3),
        GCRA(3, 1),
        FixedWindow(3, 1),
        SlidingWindowLog(3, 1),
        SlidingWindowCounter(3, 1),
    ):
        decision = MemoryLimiter(rule, clock=FakeClock()).try_acquire("k", 4)
        assert not decision.allowed and math.isinf(decision.retry_after), rule
        assert "Retry-After" not in decision.headers()


def test_concurrency_release_and_eviction_keeps_busy_keys() -> None:
    limiter = MemoryLimiter(Concurrency(limit=1), max_keys=2, clock=FakeClock())
    assert limiter.try_acquire("a").allowed and limiter.try_acquire("b").allowed
    refused = limiter.try_acquire("c")  # both held keys are busy: nothing may be evicted
    assert (refused.allowed, refused.retry_after, "c" in limiter) == (False, 0.0, False)
    assert limiter.try_acquire_fast("c") is False
    limiter.release("a")
    assert limiter.try_acquire("c").allowed  # "a" was idle and evicted
    assert "a" not in limiter and "b" in limiter
    limiter.release("b", 5)  # extra releases are harmless
    limiter.release("zzz")  # unknown keys too
    asyncio.run(limiter.arelease("c"))
    assert limiter.try_acquire("b").remaining == 0
    with pytest.raises(ValueError):
        limiter.release("b", 0)


def test_release_needs_a_concurrency_rule() -> None:
    with pytest.raises(TypeError, match="only a Concurrency rule"):
        MemoryLimiter(FixedWindow(1, 1)).release("k")


def test_non_concurrency_eviction_with_max_keys_one() -> None:
    limiter = MemoryLimiter(GCRA(limit=1, period=10), max_keys=1, clock=FakeClock())
    assert limiter.try_acquire("a").allowed and not limiter.try_acquire("a").allowed
    assert limiter.try_acquire("b").allowed  # "a" evicted...
    assert limiter.try_acquire("a").allowed  # ...and starts again with full capacity
    assert "MemoryLimiter(GCRA" in repr(limiter)


def test_rules_validate_everything_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenBucket(rate=0, burst=1.5, name="")  # type: ignore[arg-type]
    assert len(info.value.problems) == 3
    for bad in (
        lambda: GCRA(0, math.inf, burst=0),
        lambda: FixedWindow(1, 0),
        lambda: SlidingWindowLog(1, -1),
        lambda: SlidingWindowCounter(0, 1),
        lambda: Concurrency(0, lease=0),
        lambda: FixedWindow(1, 1, name='a"b'),
    ):
        with pytest.raises(ConfigurationError):
            bad()


def test_policy_headers_and_capacity() -> None:
    assert TokenBucket(rate=10, burst=20, name="api").policy_header() == '"api";q=20;w=2'
    assert GCRA(limit=100, period=60, burst=10).policy_header() == '"default";q=100;w=60'
    assert GCRA(limit=100, period=60, burst=10).capacity == 10
    assert FixedWindow(5, 0.5).policy_header() == '"default";q=5;w=1'
    assert SlidingWindowLog(5, 30).policy_header() == '"default";q=5;w=30'
    assert SlidingWindowCounter(5, 30).capacity == 5
    assert Concurrency(8).policy_header() == '"default";q=8'


def test_decision_headers() -> None:
    allowed = Decision(True, 100, 99, 0.0, 59.2, '"default";q=100;w=60')
    assert allowed.headers() == {
        "RateLimit-Policy": '"default";q=100;w=60',
        "RateLimit": '"default";r=99;t=60',
    }
    refused = Decision(False, 100, 0, 1.2, 0.0, '"api";q=100;w=60')
    assert refused.headers() == {
        "RateLimit-Policy": '"api";q=100;w=60',
        "RateLimit": '"api";r=0;t=0',
        "Retry-After": "2",
    }


def test_fast_builder_makes_a_real_frozen_decision() -> None:
    fast = make_decision(True, 3, 2, 0.0, 1.5, "p")
    assert type(fast) is Decision and fast == Decision(True, 3, 2, 0.0, 1.5, "p")
    assert hash(fast) == hash(Decision(True, 3, 2, 0.0, 1.5, "p"))
    with pytest.raises(AttributeError):
        fast.allowed = False  # type: ignore[misc]


def test_concurrency_evicts_the_first_idle_key_past_busy_ones() -> None:
    limiter = MemoryLimiter(Concurrency(limit=1), max_keys=2, clock=FakeClock())
    limiter.try_acquire("busy")
    limiter.try_acquire("idle")
    limiter.release("idle")
    assert limiter.try_acquire("new").allowed
    assert "busy" in limiter and "idle" not in limiter


def test_token_bucket_float_slack_never_leaves_negative_tokens() -> None:
    from buttress.resilience.ratelimit._algorithms import core_for

    core = core_for(TokenBucket(rate=1, burst=1))
    state = [core, 1 - 1e-12, 5.0]  # what refilling can leave after float rounding
    decision = core.decide(state, 5.0, 1)
    assert decision.allowed and state[1] == 0.0 and decision.remaining == 0


def test_package_surface_is_lazy_about_redis() -> None:
    import subprocess
    import sys

    import buttress.resilience.ratelimit as ratelimit

    code = "import sys, buttress, buttress.resilience.ratelimit; print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    pytest.importorskip("redis")
    from buttress.resilience.ratelimit import redis

    assert ratelimit.RedisLimiter is redis.RedisLimiter  # resolved lazily, on first use
    assert ratelimit.LimiterUnavailableError is redis.LimiterUnavailableError
    assert ratelimit.__all__ == sorted(ratelimit.__all__, key=lambda n: (not n.isupper(), n))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ratelimit.Nope  # noqa: B018
