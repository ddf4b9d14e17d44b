"""The Redis limiters against a real server: the Lua arithmetic, keys, TTLs, scripts, cluster."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress.errors import ConfigurationError
from buttress.resilience.ratelimit import (
    GCRA,
    Concurrency,
    FixedWindow,
    Rule,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from buttress.resilience.ratelimit._algorithms import core_for
from buttress.resilience.ratelimit._redis_scripts import plan_for
from buttress.resilience.ratelimit.redis import AsyncRedisLimiter, RedisLimiter, bounded_client

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.redis

RULES: list[Rule] = [
    TokenBucket(rate=5, burst=3),
    GCRA(limit=3, period=0.6),
    GCRA(limit=4, period=1.0, burst=2),
    FixedWindow(limit=3, window=0.5),
    SlidingWindowLog(limit=3, window=0.5),
    SlidingWindowCounter(limit=4, window=0.5),
    Concurrency(limit=3, lease=60),
]
# The same kinds on the server's clock, slow enough that no window ends and no token or
# emission interval comes back while a test makes its few calls on a loaded machine.
SLOW_RULES: list[Rule] = [
    TokenBucket(rate=0.01, burst=3),
    GCRA(limit=3, period=600),
    GCRA(limit=4, period=600, burst=2),
    FixedWindow(limit=3, window=600),
    SlidingWindowLog(limit=3, window=600),
    SlidingWindowCounter(limit=4, window=600),
    Concurrency(limit=3, lease=60),
]


_lease_ids = itertools.count()


def _script_decision(
    client: Any, rule: Rule, prefix: str, key: str, now: float, cost: int
) -> tuple[Any, ...]:
    """One decision by the rule's Lua script at a pinned time (production calls leave it out)."""
    plan = plan_for(rule)
    keys = plan.keys(prefix, key)
    ids = (
        [f"lease-{next(_lease_ids)}" for _ in range(cost)] if plan.kind == "cc" and cost <= plan.limit else []
    )
    raw = client.eval(plan.script.source, len(keys), *keys, cost, repr(now), *ids)
    flag, remaining, retry_after, reset_after = raw.split()
    return (int(flag) == 1, int(remaining), float(retry_after), float(reset_after))


# -- the Lua arithmetic equals the in-memory cores', decision for decision ---------------------
steps = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.4), st.integers(min_value=1, max_value=5), st.sampled_from("ab")
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: type(r).__name__)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, start=st.floats(min_value=1e9, max_value=2e9))
def test_scripts_decide_exactly_like_the_memory_cores(
    redis_client: Any, redis_prefix: str, rule: Rule, steps: list[tuple[float, int, str]], start: float
) -> None:
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:8]}:"  # a fresh key space per example
    core = core_for(rule)
    states: dict[str, Any] = {}
    now = start
    for delta, cost, key in steps:
        now += delta
        state = states.setdefault(key, core.new(now))
        expected = core.decide(state, now, cost)
        got = _script_decision(redis_client, rule, prefix, key, now, cost)
        assert got == (expected.allowed, expected.remaining, expected.retry_after, expected.reset_after), (
            now,
            cost,
            key,
        )


def test_sliding_counter_retry_after_when_cost_equals_limit_and_current_window_is_empty(
    redis_client: Any, redis_prefix: str
) -> None:
    rule = SlidingWindowCounter(limit=2, window=1.0)
    assert _script_decision(redis_client, rule, redis_prefix, "k", 1000.0, 2)[0]
    refused = _script_decision(redis_client, rule, redis_prefix, "k", 1001.5, 2)
    # the previous window's 2 still weigh 1.0 here; the next window starts empty
    assert refused == (False, 1, 0.5, 1.5)


@pytest.mark.parametrize(
    ("rule", "kept"),
    [(FixedWindow(limit=5, window=10.0), 1), (SlidingWindowCounter(limit=5, window=10.0), 2)],
    ids=["FixedWindow", "SlidingWindowCounter"],
)
def test_window_hashes_keep_only_the_fields_they_read(
    redis_client: Any, redis_prefix: str, rule: Rule, kept: int
) -> None:
    # Counts live in one field per window index. A field can outlive its window by the
    # millisecond its expiry is rounded up to; the next window's first admission drops it.
    key = plan_for(rule).keys(redis_prefix, "k")[0]
    assert _script_decision(redis_client, rule, redis_prefix, "k", 1000.0, 2)[0]  # window 100
    redis_client.hset(key, mapping={"97": 4, "98": 3})  # stale windows, as the edge case leaves them
    assert _script_decision(redis_client, rule, redis_prefix, "k", 1015.0, 1)[0]  # window 101
    fields = {int(f): int(v) for f, v in redis_client.hgetall(key).items()}
    assert fields == ({101: 1} if kept == 1 else {100: 2, 101: 1})
    assert 0 < redis_client.pttl(key) <= (10_000 * kept - 5_000) + 1
    # a refusal leaves the count as it was
    assert _script_decision(redis_client, rule, redis_prefix, "k", 1016.0, 5) == (
        False,
        4 if kept == 1 else 3,  # sliding: 5 - (2 * 0.4 + 1) = 3.2
        4.0 if kept == 1 else 14.0,  # sliding: 1 + 5 > 5 in this window: wait for the next
        4.0 if kept == 1 else 14.0,
    )
    assert int(redis_client.hget(key, "101")) == 1


# -- the limiter on the server's clock ------------------------------------------------------------
@pytest.mark.parametrize("rule", SLOW_RULES, ids=lambda r: type(r).__name__)
def test_each_rule_admits_its_capacity_then_refuses_and_every_key_has_a_ttl(
    redis_client: Any, redis_server: Any, redis_prefix: str, rule: Rule
) -> None:
    limiter = RedisLimiter(rule, redis.Redis.from_url(redis_server.url), prefix=redis_prefix)
    capacity = rule.capacity
    decisions = [limiter.try_acquire("user:1") for _ in range(capacity)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions][-1] == 0
    refused = limiter.try_acquire("user:1")
    assert not refused.allowed
    assert refused.limit == capacity and refused.policy == rule.policy_header()
    never = limiter.try_acquire("user:1", capacity + 1)
    assert not never.allowed and never.retry_after == math.inf
    assert limiter.try_acquire("user:2").allowed  # keys are independent
    keys = list(redis_client.scan_iter(match=f"{redis_prefix}*"))
    assert keys
    for key in keys:
        assert redis_client.pttl(key) > 0, key
        assert b"{default:user:" in key  # the hash tag: rule name and limited key
    limiter.close()


def test_cost_must_be_a_positive_integer(redis_client: Any, redis_prefix: str) -> None:
    limiter = RedisLimiter(FixedWindow(10, 60), redis_client, prefix=redis_prefix)
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="cost must be an integer >= 1"):
            limiter.try_acquire("k", bad)  # type: ignore[arg-type]
    assert limiter.try_acquire("k", 10).allowed


def test_overrides_pick_the_exact_key_then_the_longest_prefix(redis_client: Any, redis_prefix: str) -> None:
    limiter = RedisLimiter(
        FixedWindow(1, 60),
        redis_client,
        prefix=redis_prefix,
        overrides={
            "vip": FixedWindow(5, 60),
            "tenant:*": FixedWindow(3, 60),
            "tenant:big:*": FixedWindow(9, 60),
        },
    )
    assert limiter.try_acquire("vip").remaining == 4
    assert limiter.try_acquire("tenant:small").remaining == 2
    assert limiter.try_acquire("tenant:big:1").remaining == 8
    assert limiter.try_acquire("anyone").remaining == 0
    with pytest.raises(ConfigurationError, match="overrides"):
        RedisLimiter(FixedWindow(1, 60), redis_client, overrides={"x": TokenBucket(1, 1)})


def test_configuration_problems_are_reported_together(redis_client: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisLimiter(FixedWindow(1, 60), redis_client, on_error="panic", timeout=0, retry_interval=-1)  # type: ignore[arg-type]
    message = str(info.value)
    assert "on_error" in message and "timeout" in message and "retry_interval" in message
    with pytest.raises(TypeError, match="not a rate-limit rule"):
        plan_for("nope")  # type: ignore[arg-type]


def test_concurrency_release_frees_only_held_units_and_expired_leases_are_reclaimed(
    redis_client: Any, redis_prefix: str
) -> None:
    limiter = RedisLimiter(Concurrency(limit=2, lease=60), redis_client, prefix=redis_prefix)
    assert limiter.try_acquire("k", 2).allowed
    assert not limiter.try_acquire("k").allowed
    limiter.release("k")
    assert limiter.try_acquire("k").remaining == 0
    limiter.release("k", 5)  # more than held: the extra is ignored
    limiter.release("other")
    assert limiter.try_acquire("k", 2).allowed
    with pytest.raises(ValueError, match="cost"):
        limiter.release("k", 0)
    short = RedisLimiter(Concurrency(limit=1, lease=0.02), redis_client, prefix=redis_prefix + "short:")
    assert short.try_acquire("crashed").allowed
    assert not short.try_acquire("crashed").allowed
    seconds, micros = redis_client.time()
    deadline = seconds + micros / 1e6 + 0.03
    while True:  # wait (on the server's clock) until the lease has expired
        seconds, micros = redis_client.time()
        if seconds + micros / 1e6 > deadline:
            break
    assert short.try_acquire("crashed").allowed


def test_async_limiter_decides_releases_and_refuses_sync_use(redis_server: Any, redis_prefix: str) -> None:
    async def main() -> list[Any]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        limiter = AsyncRedisLimiter(Concurrency(limit=2), client, prefix=redis_prefix)
        got = [await limiter.atry_acquire("k", 2), await limiter.atry_acquire("k")]
        await limiter.arelease("k", 2)
        got.append(await limiter.atry_acquire("k", 2))
        await limiter.arelease("nothing")
        bucket = AsyncRedisLimiter(TokenBucket(rate=1, burst=3), client, prefix=redis_prefix)
        got += await asyncio.gather(*(bucket.atry_acquire("t") for _ in range(5)))
        with pytest.raises(TypeError, match="atry_acquire"):
            bucket.try_acquire("t")
        with pytest.raises(TypeError, match="arelease"):
            bucket.release("t")
        with pytest.raises(ValueError, match="cost"):
            await bucket.atry_acquire("t", 0)
        await limiter.aclose()
        await bucket.aclose()
        await client.aclose()
        return got

    got = asyncio.run(main())
    assert [d.allowed for d in got[:3]] == [True, False, True]
    assert sorted(d.allowed for d in got[3:]) == [False, False, True, True, True]


def test_sync_limiter_serves_asyncio_code_through_a_thread(redis_client: Any, redis_prefix: str) -> None:
    limiter = RedisLimiter(Concurrency(limit=1), redis_client, prefix=redis_prefix)

    async def main() -> tuple[bool, bool, bool]:
        first = await limiter.atry_acquire("k")
        second = await limiter.atry_acquire("k")
        await limiter.arelease("k")
        third = await limiter.atry_acquire("k")
        return first.allowed, second.allowed, third.allowed

    assert asyncio.run(main()) == (True, False, True)


def test_scripts_are_reloaded_after_a_script_flush(server: Any) -> None:
    client = redis.Redis.from_url(server.url)
    limiter = RedisLimiter(SlidingWindowLog(5, 60), client, prefix="p:")
    assert limiter.try_acquire("k").allowed
    client.script_flush()
    assert limiter.try_acquire("k").remaining == 3
    assert limiter.available

    async def main() -> int:
        aclient = redis.asyncio.Redis.from_url(server.url)
        alimiter = AsyncRedisLimiter(SlidingWindowLog(5, 60), aclient, prefix="p:")
        await alimiter.atry_acquire("k")
        await aclient.script_flush()
        remaining = (await alimiter.atry_acquire("k")).remaining
        await alimiter.aclose()
        await aclient.aclose()
        return remaining

    assert asyncio.run(main()) == 1
    limiter.close()
    client.close()


def _our_connections(redis_client: Any, name: str) -> list[dict[str, Any]]:
    return [c for c in redis_client.client_list() if c.get("name") == name]


def _until_closed(redis_client: Any, name: str) -> list[dict[str, Any]]:
    # the server notices a closed socket on its next event-loop turn, not at once
    deadline = time.monotonic() + 2.0
    while (left := _our_connections(redis_client, name)) and time.monotonic() < deadline:
        time.sleep(0.005)
    return left


def test_sync_limiter_reuses_its_connections_and_replaces_killed_ones_without_a_fault(
    redis_client: Any, redis_prefix: str
) -> None:
    name = f"bt-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(_url(redis_client), client_name=name)
    limiter = RedisLimiter(FixedWindow(100, 600), client, prefix=redis_prefix)
    seen: list[object] = []
    limiter.events.subscribe(seen.append)
    for _ in range(20):
        assert limiter.try_acquire("k").allowed
    (conn,) = _our_connections(redis_client, name)  # one connection, reused by every call
    redis_client.client_kill_filter(_id=conn["id"])  # the server drops it (a restart, `timeout`)
    decision = limiter.try_acquire("k")
    assert decision.allowed and decision.remaining == 100 - 21
    assert limiter.available and seen == []
    (fresh,) = _our_connections(redis_client, name)
    assert fresh["id"] != conn["id"]
    limiter.close()
    assert _until_closed(redis_client, name) == []
    client.close()


def test_async_limiter_reuses_its_connections_and_replaces_killed_ones_without_a_fault(
    redis_client: Any, redis_prefix: str
) -> None:
    name = f"bt-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(_url(redis_client), client_name=name)
        limiter = AsyncRedisLimiter(FixedWindow(100, 600), client, prefix=redis_prefix)
        seen: list[object] = []
        limiter.events.subscribe(seen.append)
        assert all(d.allowed for d in await asyncio.gather(*[limiter.atry_acquire("k") for _ in range(8)]))
        opened = _our_connections(redis_client, name)
        assert 1 <= len(opened) <= 8  # one per decision in flight at most
        for _ in range(10):
            assert (await limiter.atry_acquire("k")).allowed
        assert len(_our_connections(redis_client, name)) == len(opened)  # reused, none added
        for conn in opened:
            redis_client.client_kill_filter(_id=conn["id"])
        decision = await limiter.atry_acquire("k")
        assert decision.allowed and decision.remaining == 100 - 19
        assert limiter.available and seen == []
        await limiter.aclose()
        await client.aclose()

    asyncio.run(main())
    assert _until_closed(redis_client, name) == []


def test_a_client_on_a_pool_of_its_own_kind_is_used_as_given_scripts_reloaded(server: Any) -> None:
    # subclasses, not the plain pools: the limiter uses such a client as given
    SyncPool: Any = type("SyncPool", (redis.ConnectionPool,), {})
    AsyncPool: Any = type("AsyncPool", (redis.asyncio.ConnectionPool,), {})

    client = redis.Redis(connection_pool=SyncPool.from_url(server.url))
    limiter = RedisLimiter(FixedWindow(5, 600), client, prefix="given:")
    assert limiter.try_acquire("k").allowed
    client.script_flush()
    assert limiter.try_acquire("k").remaining == 3 and limiter.available
    limiter.close()
    assert client.ping()  # still open: the limiter closes only what it opened

    async def main() -> int:
        aclient = redis.asyncio.Redis(connection_pool=AsyncPool.from_url(server.url))
        alimiter = AsyncRedisLimiter(FixedWindow(5, 600), aclient, prefix="given:")
        await alimiter.atry_acquire("a")
        await aclient.script_flush()
        remaining = (await alimiter.atry_acquire("a")).remaining
        await alimiter.aclose()
        assert await aclient.ping()
        await aclient.connection_pool.disconnect()  # a pool passed in is the caller's to close
        return remaining

    assert asyncio.run(main()) == 3
    client.connection_pool.disconnect()


def _url(client: Any) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_the_limiter_bounds_its_own_connections_and_keeps_other_clients_as_given(redis_client: Any) -> None:
    own, owned = bounded_client(redis_client, 0.1)
    assert owned and own is not redis_client
    kwargs = own.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.1 and kwargs["socket_connect_timeout"] == 0.1
    assert kwargs["retry"].get_retries() == 0
    other = object()
    assert bounded_client(other, 0.1) == (other, False)
    own.close()


def test_repr_names_the_rule_and_the_policy(redis_client: Any) -> None:
    limiter = RedisLimiter(GCRA(10, 1.0), redis_client, on_error="local", timeout=0.1)
    assert repr(limiter).startswith("RedisLimiter(GCRA(")
    assert "on_error='local'" in repr(limiter) and "timeout=0.1" in repr(limiter)


# -- Redis Cluster --------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", SLOW_RULES, ids=lambda r: type(r).__name__)
def test_every_rule_runs_on_a_three_node_cluster(cluster_client: Any, redis_prefix: str, rule: Rule) -> None:
    limiter = RedisLimiter(rule, cluster_client, prefix=redis_prefix)
    slots = set()
    for i in range(30):  # enough keys to land on every node
        key = f"user:{i}"
        slots.add(cluster_client.keyslot(plan_for(rule).keys(limiter.prefix, key)[0]))
        allowed = [limiter.try_acquire(key).allowed for _ in range(rule.capacity + 1)]
        assert allowed == [True] * rule.capacity + [False], (key, limiter._health.last_error)
    assert limiter.available
    assert len(slots) > 10
    if isinstance(rule, SlidingWindowLog):  # two keys per decision, one slot thanks to the hash tag
        names = plan_for(rule).keys(limiter.prefix, "user:1")
        assert len(names) == 2 and len({cluster_client.keyslot(n) for n in names}) == 1


_FORK_SCRIPT = """
import os, sys
import redis
from buttress.resilience.ratelimit import FixedWindow
from buttress.resilience.ratelimit.redis import RedisLimiter

limiter = RedisLimiter(FixedWindow(10, 600), redis.Redis.from_url(sys.argv[1]), prefix=sys.argv[2])
assert limiter.try_acquire("k").remaining == 9
pid = os.fork()
if pid == 0:  # the child: the parent's connection is forgotten, not shared or closed
    ok = limiter.try_acquire("k").allowed and limiter.try_acquire("k").allowed and limiter.available
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, status
decision = limiter.try_acquire("k")  # the parent's own connection still works
assert decision.remaining == 6 and limiter.available, decision
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_opens_its_own_connections_and_the_parent_keeps_its(
    redis_client: Any, redis_prefix: str
) -> None:
    # in a fresh single-threaded interpreter: forking this test process would copy its threads
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT, _url(redis_client), redis_prefix],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
