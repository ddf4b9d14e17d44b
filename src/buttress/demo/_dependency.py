"""The flaky dependency the demo calls: random errors, latency spikes and a full outage.

Its behaviour is a pure function of the time since the run started (the *phase*) and of three
draws from its own seeded :class:`random.Random` per call. Every call makes the same three
draws whatever happens to it, so two instances built with the same seed hand their n-th call
the same fate when it arrives in the same phase: the demo's two sides face the same
dependency, not merely a similar one.
"""

from __future__ import annotations

import enum
import math
import random as _random
from dataclasses import dataclass
from statistics import NormalDist

from buttress._validation import Problems
from buttress.clock import SYSTEM_CLOCK, Clock

__all__ = ["Behaviour", "DependencyError", "FlakyDependency", "Outcome", "Phase", "phases_between"]


class Phase(enum.Enum):
    """What the dependency is going through at a given moment."""

    HEALTHY = "healthy"
    OUTAGE = "outage"

    def __str__(self) -> str:
        return self.value


class DependencyError(Exception):
    """The dependency answered with an error (think HTTP 500 or 503)."""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the flaky dependency behaves; the defaults are the demo's.

    Phases are fractions of the run, so a 2 s run is a miniature of a 20 s one; latencies are
    absolute seconds, because a dependency does not answer faster in a shorter demo.

    Attributes:
        error_rate: chance that a healthy call fails (after its normal latency).
        spike_rate: chance that a healthy call takes ``spike_latency`` instead (and succeeds).
        latency_median: median of the normal latency, which is log-normal.
        latency_sigma: spread of the log-normal latency (sigma of its logarithm).
        spike_latency: (min, max) seconds of a latency spike, drawn uniformly.
        outage_start: fraction of the run at which the full outage begins.
        outage_end: fraction of the run at which it ends.
        outage_latency: (min, max) seconds an outage call takes to fail.

    Raises:
        ConfigurationError: listing every invalid field.
    """

    error_rate: float = 0.15
    spike_rate: float = 0.03
    latency_median: float = 0.025
    latency_sigma: float = 0.5
    spike_latency: tuple[float, float] = (0.5, 1.5)
    outage_start: float = 0.35
    outage_end: float = 0.65
    outage_latency: tuple[float, float] = (0.001, 0.005)

    def __post_init__(self) -> None:
        p = Problems("Behaviour")
        p.ratio("error_rate", self.error_rate)
        p.ratio("spike_rate", self.spike_rate)
        p.positive("latency_median", self.latency_median, allow_inf=False)
        p.non_negative("latency_sigma", self.latency_sigma, allow_inf=False)
        for name in ("spike_latency", "outage_latency"):
            low, high = getattr(self, name)
            p.non_negative(f"{name}[0]", low, allow_inf=False)
            p.non_negative(f"{name}[1]", high, allow_inf=False)
            if not p.items and low > high:
                p.add(f"{name} must be (min, max) with min <= max (got {(low, high)!r})")
        p.ratio("outage_start", self.outage_start)
        p.ratio("outage_end", self.outage_end)
        if not p.items and self.outage_start > self.outage_end:
            p.add(f"outage_start must be <= outage_end (got {self.outage_start!r} > {self.outage_end!r})")
        p.raise_if_any()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The fate of one call: how long it takes, and the error it ends with (``None``: success)."""

    latency: float
    error: str | None
    spike: bool = False


def phases_between(start: float, end: float, outage: tuple[float, float]) -> tuple[Phase, ...]:
    """The phases met, in order, during the interval ``[start, end)`` of seconds since the start.

    Example:
        >>> [str(p) for p in phases_between(6.0, 8.0, (7.0, 13.0))]
        ['healthy', 'outage']
    """
    down, up = outage
    seen: list[Phase] = []
    if start < down:
        seen.append(Phase.HEALTHY)
    if start < up and end > down:
        seen.append(Phase.OUTAGE)
    if end > up and (not seen or seen[-1] is Phase.OUTAGE):
        seen.append(Phase.HEALTHY)
    return tuple(seen)


class FlakyDependency:
    """An in-process stand-in for a remote service that misbehaves on a schedule.

    Healthy, a call takes a log-normal latency and fails with ``error_rate``; with
    ``spike_rate`` it takes a long ``spike_latency`` instead. Between ``outage_start`` and
    ``outage_end`` (fractions of ``duration``) every call fails fast. The phase is fixed when
    a call *arrives*; :attr:`calls` and :attr:`calls_during_outage` count arrivals, so they
    measure the load that reached the dependency.

    Args:
        rng: the dependency's own random source (seed it for a repeatable run).
        duration: the length of the run in seconds; the phases are fractions of it.
        behaviour: error rates, latencies and the outage window.
        clock: the time source; latency is waited for with ``clock.asleep``.
        start: the ``clock.monotonic()`` reading at which the run starts (default: now).

    Attributes:
        outage: the ``(start, end)`` of the outage, in seconds since the start of the run.
        calls: requests that arrived so far.
        calls_during_outage: the part of them that arrived during the outage.

    Example:
        >>> import asyncio, random
        >>> from buttress.testing import FakeClock
        >>> clock = FakeClock()
        >>> dependency = FlakyDependency(random.Random(1), duration=20, clock=clock)
        >>> dependency.outage
        (7.0, 13.0)
        >>> clock.advance(8)
        >>> try:
        ...     asyncio.run(dependency.call())
        ... except DependencyError as e:
        ...     print(e)
        503 Service Unavailable: no healthy upstream
        >>> dependency.calls, dependency.calls_during_outage
        (1, 1)
    """

    __slots__ = (
        "_clock",
        "_origin",
        "_rng",
        "behaviour",
        "calls",
        "calls_during_outage",
        "duration",
        "outage",
    )

    def __init__(
        self,
        rng: _random.Random,
        *,
        duration: float,
        behaviour: Behaviour | None = None,
        clock: Clock = SYSTEM_CLOCK,
        start: float | None = None,
    ) -> None:
        p = Problems("FlakyDependency")
        p.positive("duration", duration, allow_inf=False)
        p.raise_if_any()
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self.duration = float(duration)
        self.outage = (self.behaviour.outage_start * self.duration, self.behaviour.outage_end * self.duration)
        self._rng = rng
        self._clock = clock
        self._origin = clock.monotonic() if start is None else start
        self.calls = 0
        self.calls_during_outage = 0

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self._clock.monotonic() - self._origin

    def phase_at(self, elapsed: float) -> Phase:
        """The phase ``elapsed`` seconds after the start (the outage window is half-open)."""
        down, up = self.outage
        return Phase.OUTAGE if down <= elapsed < up else Phase.HEALTHY

    def plan(self, phase: Phase) -> Outcome:
        """Draw the fate of one call arriving in ``phase`` (three draws, whatever the phase)."""
        b = self.behaviour
        fail_draw = self._rng.random()
        spike_draw = self._rng.random()
        shape_draw = self._rng.random()
        if phase is Phase.OUTAGE:
            low, high = b.outage_latency
            return Outcome(low + (high - low) * shape_draw, "503 Service Unavailable: no healthy upstream")
        if spike_draw < b.spike_rate:
            low, high = b.spike_latency
            return Outcome(low + (high - low) * shape_draw, None, spike=True)
        # A log-normal through the inverse CDF, from one uniform draw, keeps the draw count fixed.
        latency = b.latency_median * math.exp(b.latency_sigma * _inverse_normal(shape_draw))
        error = "500 Internal Server Error" if fail_draw < b.error_rate else None
        return Outcome(latency, error)

    async def call(self) -> str:
        """One request: wait the drawn latency, then return ``"ok"`` or raise.

        Raises:
            DependencyError: a random failure, or any call during the outage.
        """
        phase = self.phase_at(self.elapsed())
        self.calls += 1
        if phase is Phase.OUTAGE:
            self.calls_during_outage += 1
        outcome = self.plan(phase)
        await self._clock.asleep(outcome.latency)
        if outcome.error is not None:
            raise DependencyError(outcome.error)
        return "ok"

    def __repr__(self) -> str:
        down, up = self.outage
        return f"FlakyDependency(duration={self.duration:g}, outage={down:g}-{up:g}s, calls={self.calls})"


_STANDARD_NORMAL = NormalDist()


def _inverse_normal(u: float) -> float:
    """The standard normal quantile of ``u`` in [0, 1), clamped to +-4 sigma at the ends."""
    return _STANDARD_NORMAL.inv_cdf(min(max(u, 3.2e-5), 1 - 3.2e-5))
