"""Run the bare side and the pipeline side at the same time, and count what happens to each.

Both sides get the same number of callers, the same call cadence (each caller's pacing comes
from a random source seeded identically on both sides) and their own instance of the same
seeded dependency. The only difference is what stands between caller and dependency: nothing,
or a :class:`~buttress.resilience.Pipeline`.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from buttress._validation import Problems
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.demo._dependency import Behaviour, DependencyError, FlakyDependency, Phase, phases_between
from buttress.errors import BulkheadFullError, TimeoutError
from buttress.events import BreakerStateChanged, CallRejected, Event, RetryScheduled
from buttress.resilience import Bulkhead, CircuitBreaker, FullJitter, Pipeline, Retry, RetryBudget, Timeout

__all__ = ["DemoConfig", "DemoResult", "SecondRow", "SideResult", "Tally", "build_pipeline", "run_demo",
           "second_spans"]  # fmt: skip

OPEN_FRACTION = 1 / 15
"""The breaker stays open for this fraction of the run (1.33 s of a 20 s run)."""
WINDOW_FRACTION = 0.10
"""The breaker's failure-rate window covers this fraction of the run (2 s of 20 s)."""
BUDGET_FRACTION = 0.5
"""The retry budget remembers this fraction of the run (10 s of 20 s, its usual ttl)."""
_TICK = 0.05
RETRY_ATTEMPTS = 3
BUDGET_RATIO = 0.25
"""Retries may add at most this much load on top of the real calls."""
FAILURE_THRESHOLD = 10
"""Consecutive failures that trip the breaker (a hard outage trips it within milliseconds)."""
FAILURE_RATE = 0.5
"""Failure rate over the breaker's window that trips it (a partial outage)."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """What the demo runs: how long, how many callers, and the policies' time limits.

    Args:
        duration: seconds the demo runs; the outage and the breaker's timings scale with it.
        concurrency: concurrent callers (asyncio tasks) on *each* side.
        interval: mean seconds between the starts of one caller's calls (jittered +-50 %).
        attempt_timeout: the per-attempt :class:`~buttress.resilience.Timeout` of the pipeline.
        total_timeout: the pipeline's outer timeout, over all attempts.
        behaviour: how the dependency misbehaves.

    Raises:
        ConfigurationError: listing every invalid argument.
    """

    duration: float = 20.0
    concurrency: int = 50
    interval: float = 0.1
    attempt_timeout: float = 0.2
    total_timeout: float = 1.0
    behaviour: Behaviour = field(default_factory=Behaviour)

    def __post_init__(self) -> None:
        p = Problems("DemoConfig")
        p.positive("duration", self.duration, allow_inf=False)
        p.int_at_least("concurrency", self.concurrency, 1)
        p.positive("interval", self.interval, allow_inf=False)
        p.positive("attempt_timeout", self.attempt_timeout, allow_inf=False)
        p.positive("total_timeout", self.total_timeout, allow_inf=False)
        p.raise_if_any()

    @property
    def open_duration(self) -> float:
        """Seconds the breaker stays open before it lets a probe through."""
        return self.duration * OPEN_FRACTION

    @property
    def breaker_window(self) -> float:
        """Seconds covered by the breaker's failure-rate window."""
        return self.duration * WINDOW_FRACTION

    @property
    def budget_ttl(self) -> float:
        """Seconds over which the retry budget counts calls and retries."""
        return self.duration * BUDGET_FRACTION


@dataclass(slots=True)
class Tally:
    """Counts for one side over some span of time.

    ``calls`` are calls made by the callers that *finished* (a pipeline call with retries is
    one call); each ended as one success or one failure. ``retries`` and ``rejections`` count
    attempts: retries scheduled by the retry policy, attempts refused by the open breaker.
    """

    calls: int = 0
    successes: int = 0
    failures: int = 0
    retries: int = 0
    rejections: int = 0


@dataclass(frozen=True, slots=True)
class SecondRow:
    """One line of the live table: what happened during ``(t - 1, t]`` seconds of the run.

    Attributes:
        t: seconds since the start at the end of this row (the last row may be shorter).
        phases: the dependency's phases during the row, in order.
        bare: the bare side's counts.
        pipeline: the pipeline side's counts.
        breaker: the breaker states the row saw, in order (``"closed"``, ``"open"`` ...).
    """

    t: float
    phases: tuple[Phase, ...]
    bare: Tally
    pipeline: Tally
    breaker: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SideResult:
    """Everything one side did over the whole run.

    Attributes:
        name: ``"bare"`` or ``"pipeline"``.
        totals: the counts summed over the run.
        latencies: seconds each finished call took as its caller saw it, sorted.
        success_latencies: the same, for successful calls only.
        dependency_calls: requests that reached the dependency (attempts, retries included).
        dependency_calls_during_outage: the part of them that arrived during the outage.
        unfinished: calls still running when the time was up (abandoned, not counted).
    """

    name: str
    totals: Tally
    latencies: tuple[float, ...]
    success_latencies: tuple[float, ...]
    dependency_calls: int
    dependency_calls_during_outage: int
    unfinished: int

    @property
    def success_rate(self) -> float:
        """Successful calls as a fraction of finished calls (0.0 when none finished)."""
        return self.totals.successes / self.totals.calls if self.totals.calls else 0.0


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The outcome of a demo run: the live rows and each side's totals."""

    config: DemoConfig
    seed: int
    outage: tuple[float, float]
    rows: tuple[SecondRow, ...]
    bare: SideResult
    pipeline: SideResult
    elapsed: float


def second_spans(duration: float) -> list[tuple[float, float]]:
    """The ``(start, end)`` of each row of the live table: whole seconds, the last one cut short.

    Example:
        >>> second_spans(2.5)
        [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    """
    count = max(1, math.ceil(duration))
    return [(float(i), min(float(i + 1), duration)) for i in range(count)]


def build_pipeline(
    config: DemoConfig, *, clock: Clock = SYSTEM_CLOCK, random: Callable[[], float] = _random.random
) -> tuple[Pipeline, Retry, CircuitBreaker]:
    """The demo's pipeline, and its retry and breaker policies (to listen to their events).

    Outermost first: a total :class:`~buttress.resilience.Timeout`; a
    :class:`~buttress.resilience.Retry` of 3 attempts with full-jitter backoff, a shared
    :class:`~buttress.resilience.RetryBudget`, and no retry of calls the breaker refused; a
    :class:`~buttress.resilience.CircuitBreaker` that trips on 10 consecutive failures or a
    50 % failure rate over a time window and sends 3 probes when half-open (one success
    closes it), ignoring bulkhead refusals; a :class:`~buttress.resilience.Bulkhead` that lets
    at most half as many attempts as there are callers reach the dependency at once (the rest
    queue, within the total timeout); a per-attempt timeout.

    Example:
        >>> pipeline, retry, breaker = build_pipeline(DemoConfig(duration=20))
        >>> round(breaker.config.open_duration, 2), breaker.config.window_size
        (1.33, 2.0)
    """
    retry = Retry(
        "demo-retry",
        attempts=RETRY_ATTEMPTS,
        backoff=FullJitter(base=0.02, cap=0.2, random=random),
        # Refused calls (OpenCircuitError) are not in this tuple: they fail fast, not retried.
        on=(DependencyError, TimeoutError),
        budget=RetryBudget(ratio=BUDGET_RATIO, min_per_second=5.0, ttl=config.budget_ttl, clock=clock),
        clock=clock,
    )
    breaker = CircuitBreaker(
        "demo-breaker",
        failure_threshold=FAILURE_THRESHOLD,
        failure_rate_threshold=FAILURE_RATE,
        window_type="time",
        window_size=config.breaker_window,
        minimum_calls=20,
        open_duration=config.open_duration,
        half_open_max_calls=3,
        half_open_success_threshold=1,
        ignore_on=BulkheadFullError,  # a full bulkhead says nothing about the dependency
        clock=clock,
    )
    pipeline = Pipeline(
        Timeout(config.total_timeout, name="demo-total"),
        retry,
        breaker,
        Bulkhead(max(1, config.concurrency // 2), config.concurrency, name="demo-bulkhead"),
        Timeout(config.attempt_timeout, name="demo-attempt"),
        name="demo",
    )
    return pipeline, retry, breaker


class _Side:
    """The mutable bookkeeping of one side while the demo runs."""

    __slots__ = ("dependency", "in_flight", "invoke", "latencies", "name", "second", "states",
                 "success_latencies", "total")  # fmt: skip

    def __init__(
        self, name: str, dependency: FlakyDependency, invoke: Callable[[], Awaitable[object]]
    ) -> None:
        self.name = name
        self.dependency = dependency
        self.invoke = invoke
        self.second = Tally()
        self.total = Tally()
        self.latencies: list[float] = []
        self.success_latencies: list[float] = []
        self.states: list[str] = []
        self.in_flight = 0

    def finished(self, latency: float, ok: bool) -> None:
        self.latencies.append(latency)
        for tally in (self.second, self.total):
            tally.calls += 1
            if ok:
                tally.successes += 1
            else:
                tally.failures += 1
        if ok:
            self.success_latencies.append(latency)

    def on_event(self, event: Event) -> None:
        if isinstance(event, RetryScheduled):
            self.second.retries += 1
            self.total.retries += 1
        elif isinstance(event, CallRejected):
            self.second.rejections += 1
            self.total.rejections += 1
        elif isinstance(event, BreakerStateChanged):
            self.states.append(event.new)

    def take_second(self) -> Tally:
        tally, self.second = self.second, Tally()
        return tally

    def take_states(self) -> tuple[str, ...]:
        # Each event is a real change, so the list never holds the same state twice in a row.
        path = tuple(self.states)
        self.states = self.states[-1:]
        return path

    def result(self, unfinished: int) -> SideResult:
        return SideResult(
            self.name, self.total, tuple(sorted(self.latencies)), tuple(sorted(self.success_latencies)),
            self.dependency.calls, self.dependency.calls_during_outage, unfinished,
        )  # fmt: skip


async def _caller(side: _Side, rng: _random.Random, clock: Clock, end: float, interval: float) -> None:
    """One caller: call, wait out the rest of a jittered interval, repeat until the end."""
    next_start = clock.monotonic() + rng.uniform(0.0, interval)
    while True:
        now = clock.monotonic()
        if next_start > now:
            await clock.asleep(next_start - now)
        started = clock.monotonic()
        if started >= end:
            return
        next_start = started + interval * rng.uniform(0.5, 1.5)
        side.in_flight += 1
        try:
            await side.invoke()
        except Exception:
            ok = False
        else:
            ok = True
        side.in_flight -= 1
        side.finished(clock.monotonic() - started, ok)


async def run_demo(
    config: DemoConfig,
    *,
    seed: int,
    clock: Clock = SYSTEM_CLOCK,
    on_row: Callable[[SecondRow], object] | None = None,
) -> DemoResult:
    """Run both sides for ``config.duration`` seconds and return what happened.

    ``config.concurrency`` callers per side start at once and call their dependency until the
    time is up; calls still running then are abandoned (and reported as unfinished). At the
    end of every second ``on_row`` receives that second's :class:`SecondRow`.

    Args:
        config: durations and sizes.
        seed: seeds every random source (dependency, callers' pacing, backoff jitter).
        clock: the time source of the dependency, the callers and the policies (the asyncio
            timeouts use the event loop's own clock).
        on_row: called with each row as soon as its second is over.

    Returns:
        the rows and both sides' totals.

    Example:
        >>> import asyncio
        >>> from buttress.testing import FakeClock
        >>> result = asyncio.run(run_demo(DemoConfig(duration=2, concurrency=1), seed=1, clock=FakeClock()))
        >>> [row.t for row in result.rows]
        [1.0, 2.0]
    """
    start = clock.monotonic()
    end = start + config.duration

    def dependency() -> FlakyDependency:
        rng = _random.Random(f"{seed}/dependency")
        return FlakyDependency(
            rng, duration=config.duration, behaviour=config.behaviour, clock=clock, start=start
        )

    bare_dependency, piped_dependency = dependency(), dependency()
    pipeline, retry, breaker = build_pipeline(
        config, clock=clock, random=_random.Random(f"{seed}/backoff").random
    )

    def through_pipeline() -> Awaitable[object]:
        return pipeline.acall(piped_dependency.call)

    bare = _Side("bare", bare_dependency, bare_dependency.call)
    piped = _Side("pipeline", piped_dependency, through_pipeline)
    piped.states.append(breaker.state.value)
    subscriptions = [retry.events.subscribe(piped.on_event), breaker.events.subscribe(piped.on_event)]
    # Interleaved creation, so that neither side's callers are always scheduled first.
    tasks = [
        asyncio.create_task(
            _caller(side, _random.Random(f"{seed}/caller/{index}"), clock, end, config.interval)
        )
        for index in range(config.concurrency)
        for side in (bare, piped)
    ]
    rows: list[SecondRow] = []
    try:
        for span_start, span_end in second_spans(config.duration):
            boundary = start + span_end
            while (now := clock.monotonic()) < boundary:
                # Short naps, not one long sleep: on a fake clock every sleep moves time for
                # everyone, and one long jump would leave the callers no time to call.
                await clock.asleep(min(boundary - now, _TICK))
            breaker.snapshot()  # an open breaker whose time is up turns half-open when read
            row = SecondRow(
                span_end, phases_between(span_start, span_end, bare_dependency.outage),
                bare.take_second(), piped.take_second(), piped.take_states(),
            )  # fmt: skip
            rows.append(row)
            if on_row is not None:
                on_row(row)
    finally:
        bare_unfinished, piped_unfinished = bare.in_flight, piped.in_flight
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for subscription in subscriptions:
            subscription.cancel()
    return DemoResult(
        config, seed, bare_dependency.outage, tuple(rows),
        bare.result(bare_unfinished), piped.result(piped_unfinished), clock.monotonic() - start,
    )  # fmt: skip
