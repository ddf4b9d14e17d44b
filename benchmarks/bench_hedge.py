"""Hedging overhead when the first attempt wins: buttress's ``Hedge`` against the task a hedge
cannot do without, and against a minimal hand-written hedge built on ``asyncio.wait``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from benchmarks._common import async_target, expect_result, identity_op
from benchmarks._harness import TIMES, Contender, Table, TableResult, Wrap, compare

DELAY = 1.0


def _buttress(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import Hedge

    return Hedge(DELAY, max_hedges=1)(fn)


def _task(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def guarded() -> Any:
        return await asyncio.get_running_loop().create_task(fn())

    return guarded


def _hand_hedge(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def guarded() -> Any:
        first = asyncio.ensure_future(fn())
        done, _ = await asyncio.wait({first}, timeout=DELAY)
        if done:
            return first.result()
        second = asyncio.ensure_future(fn())  # pragma: no cover - the first attempt always wins here
        done, pending = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return done.pop().result()

    return guarded


def _probe(wrap: Wrap) -> None:
    """A first attempt that answers at once is the only attempt."""
    calls = [0]

    async def target() -> int:
        calls[0] += 1
        return 42

    assert asyncio.run(wrap(target)()) == 42
    assert calls[0] == 1, f"expected one attempt, saw {calls[0]}"


def _headline(result: TableResult) -> list[str]:
    ours, task, hand = result.find("buttress"), result.find("part"), result.find("reference")
    if not ours or not task or not hand:
        return ["hedging figures: n/a (a contender was not measured)"]
    return [
        compare("buttress", ours[0].best_ns, "the hand-written hedge (asyncio.wait)", hand[0].best_ns),
        f"buttress / one bare task = {ours[0].best_ns / task[0].best_ns:.2f}{TIMES} "
        f"({ours[0].best_ns - task[0].best_ns:,.0f} ns per call on top of the task every hedge needs)",
    ]


def tables() -> list[Table]:
    """The async hedging table."""
    return [
        Table(
            key="hedge-async",
            group="hedge",
            title="Hedging, async, the first attempt wins",
            description=(
                f"One operation awaits `async def f(): return 42` through a hedge with a {DELAY:g} s delay, "
                "so the first attempt always wins and no hedge starts: the cost of being ready to hedge. "
                "Racing attempts needs each in a task, so \"one bare task\" (`await create_task(f())`) is "
                "the floor; \"hand-written hedge\" is the shortest correct version with `asyncio.wait`. A "
                "probe checks that exactly one attempt runs. Baseline: a bare `await f()`."
            ),
            mode="async",
            target=async_target,
            make_op=identity_op,
            bare=async_target,
            bare_label="bare await",
            verify=expect_result,
            contenders=(
                Contender("one bare task", "`await loop.create_task(f())`", "part", _task, None, _probe),
                Contender("hand-written hedge", f"`asyncio.wait({{task}}, timeout={DELAY:g})`", "reference",
                          _hand_hedge, None, _probe),
                Contender("buttress", f"`@Hedge({DELAY:g}, max_hedges=1)`", "buttress", _buttress, "buttress",
                          _probe),
            ),
            headline=_headline,
        )
    ]  # fmt: skip
