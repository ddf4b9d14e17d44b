"""Rate limiters on Redis, allowed path: sync sequential and 64 concurrent asyncio tasks, against
limits' Redis storage, pyrate-limiter's Redis bucket and a bare ``EVALSHA`` of a trivial script.

The server is ``REDIS_URL`` when set, else a throwaway ``redis-server`` started for the run (and
stopped at exit); every contender gets its own client and its own keys under a fresh prefix.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks._common import RESULT, async_target, expect_result, identity_op, sync_target
from benchmarks._harness import TIMES, Contender, Op, Table, TableResult, Unavailable, fastest_peer_headline

TASKS = 64
HUGE = 10**12  # a limit never reached: every contender measures its allowed path
_PREFIX = f"buttress-bench:{uuid.uuid4().hex[:8]}:"
_TRIVIAL = "return 1"
_url: list[str] = []


def redis_url() -> str:
    """``REDIS_URL``, or a throwaway server started once per process."""
    if _url:
        return _url[0]
    url = os.environ.get("REDIS_URL")
    if not url:
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("REDIS_URL is not set and redis-server is not installed")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        directory = tempfile.mkdtemp(prefix="buttress-bench-")
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        atexit.register(_stop, process, directory)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Unavailable("the throwaway redis-server did not start") from None
                time.sleep(0.02)
        url = f"redis://127.0.0.1:{port}/0"
    _url.append(url)
    return url


def _stop(process: subprocess.Popen[bytes], directory: str) -> None:
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(directory, ignore_errors=True)


def _key() -> str:
    return f"{_PREFIX}{uuid.uuid4().hex[:8]}"


async def _closer(close: Callable[[], Any]) -> Any:
    try:
        yield
    finally:
        await close()


_held: list[Any] = []


async def close_with_loop(close: Callable[[], Any]) -> None:
    """Run ``close()`` when the running loop shuts down (``asyncio.Runner.close`` finalises the
    async generators it started), so no connection outlives the table's event loop."""
    generator = _closer(close)
    await generator.__anext__()
    _held.append(generator)


def _sync_client() -> Any:
    import redis

    return redis.Redis.from_url(redis_url())


def _async_client() -> Any:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(redis_url())


# -- baselines: EVALSHA of `return 1` ------------------------------------------------------------
def _bare_sync() -> Op:
    client = _sync_client()
    sha = client.script_load(_TRIVIAL)

    def op() -> int:
        client.evalsha(sha, 0)
        return RESULT

    return op


def _bare_async() -> Op:
    client = _async_client()
    sha: list[str] = []

    async def one() -> int:
        if not sha:
            sha.append(await client.script_load(_TRIVIAL))
            await close_with_loop(client.connection_pool.disconnect)
        await client.evalsha(sha[0], 0)
        return RESULT

    async def op() -> int:
        return (await asyncio.gather(*[one() for _ in range(TASKS)]))[0]

    return op


# The least any limiter on the server's clock does: read TIME, count one unit, answer.
_FLOOR = "local t = redis.call('TIME') return redis.call('HINCRBY', KEYS[1], t[1], ARGV[1])"


def _raw(source: str, nkeys: int, is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``EVALSHA`` of ``source`` sent on connections of our own, as the Redis limiters do (a free
    connection popped from a list, the packed command sent, the reply read, the connection pushed
    back), without redis-py's per-command machinery (pool lock, socket poll, metrics, retry)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        args = (_key(), 1) if nkeys else ()
        if is_async:
            import redis.asyncio

            pool = redis.asyncio.ConnectionPool.from_url(redis_url())
            aidle: list[Any] = []
            sha: list[str] = []

            async def aguarded() -> Any:
                if not sha:
                    client = redis.asyncio.Redis(connection_pool=pool)
                    sha.append(await client.script_load(source))
                    await close_with_loop(_aclose_all(aidle, pool))
                conn = aidle.pop() if aidle else pool.make_connection()  # type: ignore[no-untyped-call]
                await conn.send_command("EVALSHA", sha[0], nkeys, *args, check_health=False)
                await conn.read_response()
                aidle.append(conn)
                return await fn()

            return aguarded
        import redis

        sync_pool = redis.ConnectionPool.from_url(redis_url())
        sync_sha = redis.Redis(connection_pool=sync_pool).script_load(source)
        idle: list[Any] = []

        def guarded() -> Any:
            conn = idle.pop() if idle else sync_pool.make_connection()
            conn.send_command("EVALSHA", sync_sha, nkeys, *args, check_health=False)
            conn.read_response()
            idle.append(conn)
            return fn()

        return guarded

    return wrap


def _aclose_all(idle: list[Any], pool: Any) -> Callable[[], Any]:
    async def close() -> None:
        for conn in idle:
            await conn.disconnect()
        await pool.disconnect()

    return close


def _batch(guarded: Callable[..., Any]) -> Op:
    async def op() -> Any:
        return (await asyncio.gather(*[guarded() for _ in range(TASKS)]))[0]

    return op


def _refused() -> RuntimeError:
    return RuntimeError("the limiter refused a call on its allowed path")


# -- contenders ------------------------------------------------------------------------------------
def _buttress(rule_name: str, is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        from buttress.resilience.ratelimit import GCRA, FixedWindow
        from buttress.resilience.ratelimit.redis import AsyncRedisLimiter, RedisLimiter

        rule = FixedWindow(limit=HUGE, window=3600) if rule_name == "fixed" else GCRA(limit=HUGE, period=3600)
        key = _key()
        if is_async:
            alimiter = AsyncRedisLimiter(rule, _async_client(), prefix=_PREFIX)
            started: list[bool] = []

            async def aguarded() -> Any:
                if not started:
                    started.append(True)
                    await close_with_loop(alimiter.aclose)
                if (await alimiter.atry_acquire(key)).allowed:
                    return await fn()
                raise _refused()

            return aguarded
        limiter = RedisLimiter(rule, _sync_client(), prefix=_PREFIX)

        def guarded() -> Any:
            if limiter.try_acquire(key).allowed:
                return fn()
            raise _refused()

        return guarded

    return wrap


def _limits(fn: Callable[..., Any]) -> Callable[..., Any]:
    from limits import RateLimitItemPerHour
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter

    limiter = FixedWindowRateLimiter(RedisStorage(redis_url(), key_prefix=_PREFIX + "limits"))
    item = RateLimitItemPerHour(HUGE)
    key = _key()

    def guarded() -> Any:
        if limiter.hit(item, key):
            return fn()
        raise _refused()

    return guarded


def _limits_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    from limits import RateLimitItemPerHour
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import FixedWindowRateLimiter

    url = redis_url().replace("redis://", "async+redis://", 1)
    limiter = FixedWindowRateLimiter(
        RedisStorage(url, implementation="redispy", key_prefix=_PREFIX + "limits")
    )
    item = RateLimitItemPerHour(HUGE)
    key = _key()
    started: list[bool] = []

    async def guarded() -> Any:
        if not started:
            started.append(True)
            await close_with_loop(limiter.storage.bridge.storage.connection_pool.disconnect)  # type: ignore[attr-defined]
        if await limiter.hit(item, key):
            return await fn()
        raise _refused()

    return guarded


def _pyrate(fn: Callable[..., Any]) -> Callable[..., Any]:
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    bucket = RedisBucket.init([Rate(HUGE, Duration.HOUR)], _sync_client(), _key())
    limiter = Limiter(bucket)

    def guarded() -> Any:
        if limiter.try_acquire("bench", blocking=False):
            return fn()
        raise _refused()

    return guarded


def _pyrate_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    state: dict[str, Any] = {}

    async def guarded() -> Any:
        limiter = state.get("limiter")
        if limiter is None:  # the bucket is built on the loop that runs it
            client = _async_client()
            await close_with_loop(client.connection_pool.disconnect)
            bucket = await RedisBucket.init([Rate(HUGE, Duration.HOUR)], client, _key())
            limiter = state.setdefault("limiter", Limiter(bucket))
        if await limiter.try_acquire_async("bench", blocking=False):
            return await fn()
        raise _refused()

    return guarded


_RAW_LABEL = "raw connection: EVALSHA of `return 1`"
_FLOOR_LABEL = "raw connection: the floor, TIME + HINCRBY"


def _headline(result: TableResult) -> list[str]:
    lines = fastest_peer_headline(result)
    ours = result.find("buttress")
    if ours and result.bare.ok:
        # A round trip drifts more between repeats than a limiter costs, so the target is judged
        # on the repeats' paired ratios (the best-vs-best figure is shown too)
        paired = 1 / result.paired_ratio(ours[0])
        best = result.bare.best_ns / ours[0].best_ns
        lines.append(
            f"buttress rate / bare EVALSHA rate = {paired:.2f}{TIMES}, median of the rounds "
            f"(target >= 0.9{TIMES}); best / best = {best:.2f}{TIMES}"
        )
        by_label = {r.label: r for r in result.rows if r.ok}
        raw, floor = by_label.get(_RAW_LABEL), by_label.get(_FLOOR_LABEL)
        if raw and floor:
            # the same connection handling as buttress: these isolate what the limiter adds
            ours_vs_raw = result.paired_ratio(raw) / result.paired_ratio(ours[0])
            floor_vs_raw = result.paired_ratio(raw) / result.paired_ratio(floor)
            lines.append(
                f"on raw connections like buttress's: buttress runs at {ours_vs_raw:.2f}{TIMES} the rate "
                f"of a bare EVALSHA, the floor (TIME + HINCRBY) at {floor_vs_raw:.2f}{TIMES}"
            )
    return lines


def tables() -> list[Table]:
    """The sync and the asyncio Redis limiter tables."""
    fixed = "FixedWindow(limit=10**12, window=3600)"
    sync_table = Table(
        key="ratelimit-redis-sync",
        group="ratelimit-redis",
        title="Redis rate limiter, sync, sequential, allowed path",
        description=(
            "One operation asks the limiter for one unit of one key (never refused) and then calls "
            "`def f(): return 42`, one call after the other over one connection. Baseline: a bare "
            "`EVALSHA` of `return 1` on the same server, then the call."
        ),
        mode="sync",
        target=sync_target,
        make_op=identity_op,
        bare=_LazyBare(_bare_sync),
        bare_label="bare EVALSHA of `return 1`",
        verify=expect_result,
        contenders=(
            Contender("limits", "`FixedWindowRateLimiter(RedisStorage(url))`, `hit(item, key)`", "peer",
                      _limits, "limits"),
            Contender("pyrate-limiter", "`Limiter(RedisBucket.init([Rate(n, Duration.HOUR)], redis, key))`",
                      "peer", _pyrate, "pyrate-limiter"),
            Contender("buttress", f"`RedisLimiter({fixed}, redis)`", "buttress", _buttress("fixed", False),
                      "buttress"),
            Contender("buttress GCRA", "`RedisLimiter(GCRA(limit=10**12, period=3600), redis)`", "reference",
                      _buttress("gcra", False), "buttress"),
            Contender(_RAW_LABEL, "`conn.send_command('EVALSHA', ...)`, `conn.read_response()`",
                      "reference", _raw("return 1", 0, False)),
            Contender(_FLOOR_LABEL, f"the same, `EVALSHA` of `{_FLOOR}`", "reference",
                      _raw(_FLOOR, 1, False)),
        ),
        headline=_headline,
        interleave=True,
    )  # fmt: skip
    async_table = Table(
        key="ratelimit-redis-async",
        group="ratelimit-redis",
        title=f"Redis rate limiter, asyncio, {TASKS} concurrent tasks, allowed path",
        description=(
            f"One operation runs {TASKS} tasks at once with `asyncio.gather`, each asking the limiter "
            "for one unit of one key (never refused) and then awaiting `async def f(): return 42`. "
            f"Baseline: {TASKS} concurrent bare `EVALSHA` of `return 1` on the same server."
        ),
        mode="async",
        target=async_target,
        make_op=_batch,
        bare=_LazyBare(_bare_async),
        bare_label=f"{TASKS}{TIMES} bare EVALSHA of `return 1`",
        verify=expect_result,
        contenders=(
            Contender("limits", "`aio FixedWindowRateLimiter(RedisStorage(url, implementation='redispy'))`",
                      "peer", _limits_async, "limits"),
            Contender("pyrate-limiter", "`Limiter(await RedisBucket.init([...], redis.asyncio, key))`",
                      "peer", _pyrate_async, "pyrate-limiter"),
            Contender("buttress", f"`AsyncRedisLimiter({fixed}, redis.asyncio)`", "buttress",
                      _buttress("fixed", True), "buttress"),
            Contender("buttress GCRA", "`AsyncRedisLimiter(GCRA(limit=10**12, period=3600), ...)`",
                      "reference", _buttress("gcra", True), "buttress"),
            Contender(_RAW_LABEL, "`await conn.send_command('EVALSHA', ...)`, `await conn.read_response()`",
                      "reference", _raw("return 1", 0, True)),
            Contender(_FLOOR_LABEL, f"the same, `EVALSHA` of `{_FLOOR}`", "reference",
                      _raw(_FLOOR, 1, True)),
        ),
        headline=_headline,
        interleave=True,
    )  # fmt: skip
    return [sync_table, async_table]


class _LazyBare:
    """The baseline op, built on its first call (so listing the tables needs no server)."""

    def __init__(self, build: Callable[[], Op]) -> None:
        self._build = build
        self._op: Op | None = None

    def __call__(self) -> Any:
        if self._op is None:
            self._op = self._build()
        return self._op()
