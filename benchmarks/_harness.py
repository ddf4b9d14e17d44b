"""The measuring engine shared by every benchmark module (the page is drawn by ``_render``).

Each benchmark module describes *tables*: a bare baseline and a list of contenders that wrap the
same target function with the same semantics. The harness

1. builds every contender (a contender whose library is missing is reported, never skipped
   silently), runs its semantic *probe* (e.g. "trips after exactly 5 failures", "makes exactly 4
   attempts") and checks the result of one call, so a contender that does less work than the
   others cannot win by accident;
2. calibrates a loop count per contender so that one repeat lasts about ``target_seconds``;
3. runs the repeats round-robin (bare, a, b, ..., bare, a, b, ...) so that drift of the machine
   spreads over all contenders alike, with the garbage collector off inside a timed loop as
   :mod:`timeit` does;
4. reports the best (min) and the median time per operation, each contender's ratio to the bare
   operation measured in the same run, and headlines computed from the figures.

Async contenders are timed by awaiting the operation ``n`` times inside one coroutine per repeat,
on one event loop per table, so the event loop's own scheduling is not part of the figure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import importlib.metadata
import itertools
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]
"""Turns the target function into the guarded function, e.g. ``lambda fn: breaker(fn)``."""
Op = Callable[[], Any]
"""One timed operation: a no-argument callable (sync tables) or coroutine function (async tables)."""
Mode = Literal["sync", "async"]
Role = Literal["buttress", "peer", "reference", "part"]
TIMES = "\N{MULTIPLICATION SIGN}"

PEER_DISTRIBUTIONS = (
    "pybreaker",
    "circuitbreaker",
    "purgatory",
    "aiobreaker",
    "tenacity",
    "stamina",
    "backoff",
    "dishka",
    "dependency-injector",
    "svcs",
    "lagom",
    "wireup",
    "limits",
    "pyrate-limiter",
    "aiolimiter",
    "hyx",
    "redis",
)


class Unavailable(Exception):
    """A contender cannot be built here (its library is missing or does not import)."""


@dataclass(frozen=True, slots=True)
class Contender:
    """One library (or hand-written reference) measured in a table.

    Attributes:
        label: the name shown in the table.
        config: how it is configured, shown verbatim (Markdown allowed).
        role: ``"buttress"``, ``"peer"`` (counts for "fastest peer"), ``"reference"`` (hand-written
            code or a buttress variant shown for comparison) or ``"part"`` (a piece of a composite).
        wrap: builds the guarded function from a target; called once per build, so every build
            gets a fresh policy with fresh state.
        dist: the distribution whose version is reported, if any.
        probe: checks the semantics the table promises (called with ``wrap``); raises
            ``AssertionError`` when the contender behaves differently.
    """

    label: str
    config: str
    role: Role
    wrap: Wrap
    dist: str | None = None
    probe: Callable[[Wrap], None] | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A group of contenders measured against one bare baseline in the same run.

    Attributes:
        key: a short identifier, e.g. ``"breaker-sync"``.
        group: the ``--only`` group it belongs to (``breaker``, ``retry`` or ``pipeline``).
        title: the heading of the table.
        description: a Markdown paragraph saying what one operation does.
        mode: ``"sync"`` or ``"async"``.
        target: the function every contender wraps.
        make_op: turns a guarded function into the timed operation (bookkeeping goes here).
        bare: the baseline operation, built from ``target`` without any policy.
        bare_label: how the baseline is described in the table.
        verify: checks the return value of one operation (and any bookkeeping it left).
        contenders: the contenders, in display order.
        headline: computes the headline sentences from the measured rows.
        interleave: time the rows call by call in turn (bare, a, b, ..., bare, a, b, ...; the
            order rotates each round) instead of repeat by repeat: for operations that wait on a
            server, whose speed drifts faster than a repeat lasts, so that every row meets the
            same drift and :meth:`TableResult.paired_ratio` compares like with like.
    """

    key: str
    group: str
    title: str
    description: str
    mode: Mode
    target: Callable[..., Any]
    make_op: Callable[[Callable[..., Any]], Op]
    bare: Op
    bare_label: str
    verify: Callable[[Any], None]
    contenders: tuple[Contender, ...]
    headline: Callable[[TableResult], list[str]] = field(default=lambda result: fastest_peer_headline(result))
    interleave: bool = False


@dataclass(slots=True)
class Row:
    """The figures of one contender (or of the baseline) in one table."""

    label: str
    config: str
    role: Role | Literal["bare"]
    dist: str | None
    samples_ns: list[float] = field(default_factory=list)
    loops: int = 0
    error: str | None = None

    @property
    def best_ns(self) -> float:
        """The fastest repeat, in nanoseconds per operation (``nan`` if not measured)."""
        return min(self.samples_ns) if self.samples_ns else math.nan

    @property
    def median_ns(self) -> float:
        """The median repeat, in nanoseconds per operation (``nan`` if not measured)."""
        return statistics.median(self.samples_ns) if self.samples_ns else math.nan

    @property
    def ok(self) -> bool:
        """Measured, and every figure is a positive finite number."""
        return (
            self.error is None
            and bool(self.samples_ns)
            and all(math.isfinite(s) and s > 0 for s in self.samples_ns)
        )


@dataclass(slots=True)
class TableResult:
    """A table with its measured rows; ``bare`` is the baseline row."""

    table: Table
    bare: Row
    rows: list[Row]
    headlines: list[str] = field(default_factory=list)

    def ratio(self, row: Row) -> float:
        """``row``'s best time as a multiple of the bare operation's best time."""
        return row.best_ns / self.bare.best_ns

    def paired_ratio(self, row: Row) -> float:
        """The median over repeats of ``row``'s time / the bare time of the same round.

        The repeats run round-robin, so repeat *i* of every row was measured at about the same
        moment: where the machine's speed drifts between rounds (a network round trip on a
        busy host), this compares like with like, where the two bests may come from different
        rounds.
        """
        pairs = [ours / bare for ours, bare in zip(row.samples_ns, self.bare.samples_ns, strict=False)]
        return statistics.median(pairs) if pairs else math.nan

    def find(self, role: str) -> list[Row]:
        """The measured rows of one role, in display order."""
        return [r for r in self.rows if r.role == role and r.ok]


@dataclass(frozen=True, slots=True)
class Settings:
    """How long to measure.

    Attributes:
        repeats: timed repeats per contender (the report gives their min and median).
        target_seconds: the duration one repeat is calibrated to.
        calibrate_fraction: calibration stops once a trial loop lasts this fraction of a repeat.
    """

    repeats: int
    target_seconds: float
    calibrate_fraction: float = 0.2


FULL = Settings(repeats=9, target_seconds=0.2)
QUICK = Settings(repeats=3, target_seconds=0.002)


@dataclass(slots=True)
class Report:
    """Everything the Markdown page shows."""

    command: str
    settings: Settings
    started: dt.datetime
    environment: dict[str, str]
    versions: dict[str, str]
    results: list[TableResult]
    elapsed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every row of every table was measured and passed its checks."""
        return all(r.ok for res in self.results for r in [res.bare, *res.rows])


def format_ns(ns: float) -> str:
    """A per-operation time with a unit that keeps 3-4 significant digits."""
    if not math.isfinite(ns):
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:,.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:,.1f} µs"
    if ns >= 1e3:
        return f"{ns / 1e3:,.2f} µs"
    return f"{ns:,.0f} ns"


# -- timing -------------------------------------------------------------------------------


def _time_sync(op: Op, n: int) -> int:
    it = itertools.repeat(None, n)
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in it:
            op()
        stop = time.perf_counter_ns()
    finally:
        if enabled:
            gc.enable()
    return stop - start


async def _await_loop(op: Callable[[], Awaitable[Any]], n: int) -> int:
    it = itertools.repeat(None, n)
    start = time.perf_counter_ns()
    for _ in it:
        await op()
    return time.perf_counter_ns() - start


def _rotations(count: int) -> list[list[int]]:
    return [[(start + i) % count for i in range(count)] for start in range(count)]


def _interleave_sync(ops: Sequence[Op], n: int) -> list[int]:
    totals = [0] * len(ops)
    orders = _rotations(len(ops))
    clock = time.perf_counter_ns
    enabled = gc.isenabled()
    gc.disable()
    try:
        for k in range(n):
            for i in orders[k % len(orders)]:
                op = ops[i]
                start = clock()
                op()
                totals[i] += clock() - start
    finally:
        if enabled:
            gc.enable()
    return totals


async def _interleave_async(ops: Sequence[Callable[[], Awaitable[Any]]], n: int) -> list[int]:
    totals = [0] * len(ops)
    orders = _rotations(len(ops))
    clock = time.perf_counter_ns
    for k in range(n):
        for i in orders[k % len(orders)]:
            op = ops[i]
            start = clock()
            await op()
            totals[i] += clock() - start
    return totals


class _Timer:
    """Times ``n`` operations of one table's mode; async ones on one event loop per table."""

    def __init__(self, mode: Mode) -> None:
        self._runner = asyncio.Runner() if mode == "async" else None

    def __enter__(self) -> _Timer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._runner.close()

    def run_once(self, op: Op) -> Any:
        if self._runner is None:
            return op()
        return self._runner.run(op())

    def total_ns(self, op: Op, n: int) -> int:
        if self._runner is None:
            return _time_sync(op, n)
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._runner.run(_await_loop(op, n))
        finally:
            if enabled:
                gc.enable()

    def interleaved_ns(self, ops: Sequence[Op], n: int) -> list[int]:
        """Each op's total time over ``n`` rounds of calling every op once, in rotating order."""
        if self._runner is None:
            return _interleave_sync(ops, n)
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._runner.run(_interleave_async(ops, n))
        finally:
            if enabled:
                gc.enable()


def _calibrate(timer: _Timer, op: Op, settings: Settings) -> int:
    """The loop count that makes one repeat last about ``settings.target_seconds``."""
    target_ns = settings.target_seconds * 1e9
    enough_ns = target_ns * settings.calibrate_fraction
    n = 1
    while True:
        elapsed = max(timer.total_ns(op, n), 1)
        if elapsed >= enough_ns or n >= 10**9:
            return max(1, round(n * target_ns / elapsed))
        n = max(n * 2, min(n * 100, math.ceil(n * enough_ns / elapsed)))


# -- running ------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_table(table: Table, settings: Settings, log: Callable[[str], None] = lambda s: None) -> TableResult:
    """Build, check, calibrate and measure every contender of ``table``."""
    bare = Row(table.bare_label, "", "bare", None)
    rows = [Row(c.label, c.config, c.role, c.dist) for c in table.contenders]
    ops: list[tuple[Row, Op]] = []
    with _Timer(table.mode) as timer:
        try:
            table.verify(timer.run_once(table.bare))
            ops.append((bare, table.bare))
        except Exception as exc:
            bare.error = f"baseline failed its check: {_describe(exc)}"
        for contender, row in zip(table.contenders, rows, strict=True):
            try:
                if contender.probe is not None:
                    contender.probe(contender.wrap)
                op = table.make_op(contender.wrap(table.target))
                table.verify(timer.run_once(op))
            except (Unavailable, ImportError) as exc:
                row.error = f"unavailable: {_describe(exc)}"
                continue
            except Exception as exc:
                row.error = f"failed its check: {_describe(exc)}"
                continue
            ops.append((row, op))
        for row, op in ops:
            row.loops = _calibrate(timer, op, settings)
        if table.interleave and ops:
            # one repeat: every row called n times in turn, n from the slowest row's calibration
            n = min(row.loops for row, _ in ops)
            for row, _ in ops:
                row.loops = n
            for _ in range(settings.repeats):
                totals = timer.interleaved_ns([op for _, op in ops], n)
                for (row, _), total in zip(ops, totals, strict=True):
                    row.samples_ns.append(total / n)
            ops = []
        for _ in range(settings.repeats):
            for row, op in ops:
                row.samples_ns.append(timer.total_ns(op, row.loops) / row.loops)
    result = TableResult(table, bare, rows)
    result.headlines = table.headline(result) if bare.ok else ["n/a: the baseline was not measured"]
    for row in [bare, *rows]:
        log(f"  {row.label:<40} {format_ns(row.best_ns):>10}  {row.error or ''}")
    return result


def environment() -> dict[str, str]:
    """The machine the figures come from."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine() or "unknown",
        "processor": platform.processor() or "unknown",
        "cpus": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join(platform.python_build()),
    }


def versions(dists: Sequence[str] = ("buttress", *PEER_DISTRIBUTIONS)) -> dict[str, str]:
    """The installed version of buttress and of each peer (``not installed`` when missing)."""
    found: dict[str, str] = {}
    for name in dists:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def run(
    tables: Sequence[Table],
    settings: Settings,
    *,
    argv: Sequence[str] = (),
    log: Callable[[str], None] = lambda s: None,
) -> Report:
    """Measure ``tables`` in this process and return the report."""
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    results = []
    for table in tables:
        log(f"{table.key}: {table.title}")
        results.append(run_table(table, settings, log))
    return Report(
        command=shlex.join(["python", "-m", "benchmarks", *argv]),
        settings=settings,
        started=started,
        environment=environment(),
        versions=versions(),
        results=results,
        elapsed_seconds=time.perf_counter() - clock,
    )


# -- headlines ----------------------------------------------------------------------------


def compare(subject: str, subject_ns: float, other: str, other_ns: float) -> str:
    """``"<subject> is X.Y times faster than <other>"`` (or slower), from two per-op times."""
    if not (math.isfinite(subject_ns) and math.isfinite(other_ns)) or subject_ns <= 0 or other_ns <= 0:
        return f"{subject} vs {other}: n/a"
    factor = other_ns / subject_ns
    word = "faster" if factor >= 1 else "slower"
    factor = max(factor, 1 / factor)
    # one decimal hides the difference between "equal" and "5 % apart"
    digits = 2 if factor < 1.1 else 1
    return f"{subject} is {factor:.{digits}f}{TIMES} {word} than {other}"


def fastest_peer_headline(result: TableResult) -> list[str]:
    """The default headline: buttress against the fastest peer of the table (best times)."""
    ours = result.find("buttress")
    peers = result.find("peer")
    if not ours or not peers:
        return ["buttress vs the fastest peer: n/a (a contender was not measured)"]
    fastest = min(peers, key=lambda r: r.best_ns)
    return [compare("buttress", ours[0].best_ns, f"the fastest peer ({fastest.label})", fastest.best_ns)]


def default_log(message: str) -> None:
    """Progress lines go to stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)
