"""Bulkhead enter/leave around a successful call, sync and async: buttress against a bare
``threading.Semaphore`` / ``asyncio.Semaphore`` and against hyx's bulkhead (async only)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import async_target, expect_result, identity_op, sync_target
from benchmarks._harness import Contender, Table, TableResult, Wrap, compare, fastest_peer_headline

LIMIT = 10
QUEUE = 100


def _buttress(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import Bulkhead

    return Bulkhead(LIMIT, QUEUE)(fn)


def _semaphore(fn: Callable[..., Any]) -> Callable[..., Any]:
    semaphore = threading.Semaphore(LIMIT)

    def guarded() -> Any:
        with semaphore:
            return fn()

    return guarded


def _asemaphore(fn: Callable[..., Any]) -> Callable[..., Any]:
    semaphore: asyncio.Semaphore | None = None

    async def guarded() -> Any:
        nonlocal semaphore
        if semaphore is None:  # made inside the loop that uses it
            semaphore = asyncio.Semaphore(LIMIT)
        async with semaphore:
            return await fn()

    return guarded


def _hyx(fn: Callable[..., Any]) -> Callable[..., Any]:
    from hyx.bulkhead import bulkhead

    return bulkhead(max_concurrency=LIMIT, max_capacity=LIMIT + QUEUE)(fn)


def _probe_sync(wrap: Wrap) -> None:
    """12 threads through a limit of 10: never more than 10 inside at once, every call returns."""
    lock = threading.Lock()
    running = [0, 0]

    def target() -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.002)
        with lock:
            running[0] -= 1
        return 42

    guarded = wrap(target)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(guarded())) for _ in range(LIMIT + 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == [42] * (LIMIT + 2), f"expected every call to return, got {results}"
    assert running[1] <= LIMIT, f"saw {running[1]} calls inside a bulkhead of {LIMIT}"


def _probe_async(wrap: Wrap) -> None:
    """30 tasks through a limit of 10: never more than 10 inside at once, every call returns."""
    running = [0, 0]

    async def target() -> int:
        running[0] += 1
        running[1] = max(running[1], running[0])
        for _ in range(3):
            await asyncio.sleep(0)
        running[0] -= 1
        return 42

    async def main() -> list[int]:
        guarded = wrap(target)
        return list(await asyncio.gather(*(guarded() for _ in range(3 * LIMIT))))

    results = asyncio.run(main())
    assert results == [42] * (3 * LIMIT), "expected every call to return"
    assert running[1] == LIMIT, f"saw at most {running[1]} calls inside a bulkhead of {LIMIT}"


def _semaphore_headline(result: TableResult) -> list[str]:
    ours, references = result.find("buttress"), result.find("reference")
    lines = fastest_peer_headline(result) if result.find("peer") else []
    if ours and references:
        reference = references[0]
        lines.append(compare("buttress", ours[0].best_ns, f"a bare {reference.label}", reference.best_ns))
    if not lines:
        lines.append("buttress vs the semaphore: n/a (a contender was not measured)")
    return lines


def tables() -> list[Table]:
    """The sync and the async bulkhead tables."""
    config = f"`Bulkhead({LIMIT}, {QUEUE})`, `@bulkhead`"
    sync_table = Table(
        key="bulkhead-sync",
        group="bulkhead",
        title="Bulkhead, sync, enter and leave around a successful call",
        description=(
            f"One operation calls `def f(): return 42` through a bulkhead of {LIMIT} slots that is never "
            "full: the cost of taking and giving back a slot. A probe first runs 12 threads through each "
            f"contender and checks that no more than {LIMIT} are inside at once. There is no sync peer "
            "(hyx is asyncio only); the reference is a bare `threading.Semaphore` used as `with sem: f()`. "
            "Baseline: the bare call `f()`."
        ),
        mode="sync",
        target=sync_target,
        make_op=identity_op,
        bare=sync_target,
        bare_label="bare call",
        verify=expect_result,
        contenders=(
            Contender("threading.Semaphore", f"`with Semaphore({LIMIT}): f()`", "reference", _semaphore, None,
                      _probe_sync),
            Contender("buttress", config, "buttress", _buttress, "buttress", _probe_sync),
        ),
        headline=_semaphore_headline,
    )  # fmt: skip
    async_table = Table(
        key="bulkhead-async",
        group="bulkhead",
        title="Bulkhead, async, enter and leave around a successful call",
        description=(
            f"One operation awaits `async def f(): return 42` through a bulkhead of {LIMIT} slots that is "
            f"never full. A probe first runs 30 concurrent tasks through each contender and checks that "
            f"exactly {LIMIT} are inside at the peak and every call returns. hyx is configured with the "
            f"same {LIMIT} slots and room for {QUEUE} more; the reference is a bare `asyncio.Semaphore`. "
            "Baseline: a bare `await f()`."
        ),
        mode="async",
        target=async_target,
        make_op=identity_op,
        bare=async_target,
        bare_label="bare await",
        verify=expect_result,
        contenders=(
            Contender("hyx", f"`@bulkhead(max_concurrency={LIMIT}, max_capacity={LIMIT + QUEUE})`", "peer",
                      _hyx, "hyx", _probe_async),
            Contender("asyncio.Semaphore", f"`async with Semaphore({LIMIT}): await f()`", "reference",
                      _asemaphore, None, _probe_async),
            Contender("buttress", config, "buttress", _buttress, "buttress", _probe_async),
        ),
        headline=_semaphore_headline,
    )  # fmt: skip
    return [sync_table, async_table]
