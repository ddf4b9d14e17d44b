"""Concurrency tests: real threads, and a thousand asyncio tasks, through one circuit breaker.

The dependency alternates between healthy and failing phases, so the breaker trips and recovers
several times while calls are in flight across every transition. Two properties are checked:

- each half-open period admits exactly ``half_open_max_calls`` probes, however many callers race
  for them (probes meet at a barrier inside the dependency, so every slot is taken before any
  probe decides the period; without it a fast failure would legitimately end a period early);
- nothing is lost: the breaker's lifetime totals equal what the callers saw, so
  successes + failures + ignored + rejected == calls attempted, even though closed-state
  successes are counted without a lock.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import random
import threading
import time

from buttress.errors import OpenCircuitError
from buttress.events import BreakerStateChanged
from buttress.resilience.breaker._model import TRANSITIONS, BreakerState
from buttress.resilience.breaker.classic import CircuitBreaker
from buttress.resilience.breaker.store import MemoryBreakerStore, Permit, Rejection, Transition
from buttress.testing import FakeClock

MAX_PROBES = 3

PROBE: contextvars.ContextVar[Permit | None] = contextvars.ContextVar("probe", default=None)
"""The probe permit of the call about to run in this thread or task (set by the store)."""


class Failure(Exception):
    """The dependency is down."""


class Ignored(Exception):
    """An error that says nothing about the dependency (ignore_on)."""


class ProbeHandingStore(MemoryBreakerStore):
    """The in-memory store, telling the guarded function whether it runs as a probe.

    A subclass keeps the breaker on its real code paths (the lock-free closed fast path
    included); it only adds a context variable, read by the dependency right after admission.
    """

    def acquire(self, now: float) -> tuple[Permit | Rejection, Transition | None]:
        permit, transition = super().acquire(now)
        PROBE.set(permit if isinstance(permit, Permit) and permit.probe else None)
        return permit, transition


class Outcomes:
    """What the callers of one thread or task saw."""

    __slots__ = ("failures", "ignored", "rejected", "successes")

    def __init__(self) -> None:
        self.successes = self.failures = self.ignored = self.rejected = 0

    def add(self, other: Outcomes) -> None:
        self.successes += other.successes
        self.failures += other.failures
        self.ignored += other.ignored
        self.rejected += other.rejected

    @property
    def attempts(self) -> int:
        return self.successes + self.failures + self.ignored + self.rejected


def check_transitions(events: list[BreakerStateChanged], breaker: CircuitBreaker) -> collections.Counter[str]:
    """Every announced transition is legal; returns how often each state was entered."""
    entered: collections.Counter[str] = collections.Counter()
    for event in events:
        assert BreakerState(event.new) in TRANSITIONS[BreakerState(event.old)]
        entered[event.new] += 1
    assert breaker.totals.trips == entered["open"]
    return entered


def check_probes(probes: collections.Counter[int]) -> None:
    """Every half-open period but the last (cut short by the end of the test) had exactly MAX_PROBES."""
    assert len(probes) >= 4, f"too few half-open periods to say anything: {probes}"
    *finished, last = sorted(probes)
    assert {generation: probes[generation] for generation in finished} == dict.fromkeys(finished, MAX_PROBES)
    assert 1 <= probes[last] <= MAX_PROBES


def test_threads_trip_and_recover_with_exact_probes_and_totals() -> None:
    phase_seconds, run_seconds, threads = 0.25, 2.0, 8
    store = ProbeHandingStore()
    events: list[BreakerStateChanged] = []
    # Real time on purpose: threads need real concurrency, so the breaker reads the system clock
    # and stays open for 20 ms before probing.
    breaker = CircuitBreaker(
        "threads",
        failure_threshold=5,
        open_duration=0.02,
        half_open_max_calls=MAX_PROBES,
        ignore_on=Ignored,
        store=store,
        on_state_change=events.append,
    )
    probes: collections.Counter[int] = collections.Counter()
    barriers: dict[int, threading.Barrier] = {}
    guard = threading.Lock()
    stopping = threading.Event()
    broken_early: list[int] = []
    started = time.monotonic()

    def barrier_for(generation: int) -> threading.Barrier | None:
        with guard:
            if stopping.is_set():
                return None
            probes[generation] += 1
            if generation not in barriers:
                barriers[generation] = threading.Barrier(MAX_PROBES, timeout=1.0)
            return barriers[generation]

    @breaker
    def dependency(rng: random.Random) -> str:
        permit = PROBE.get()
        PROBE.set(None)  # the fast path does not go through acquire(): never reuse a stale value
        if permit is not None:
            barrier = barrier_for(permit.generation)
            if barrier is not None:
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    if not stopping.is_set():
                        broken_early.append(permit.generation)
        time.sleep(0.0002)  # an I/O wait: other threads run while this call is in flight
        if int((time.monotonic() - started) / phase_seconds) % 2 == 1:
            raise Failure("down")
        if permit is None and rng.random() < 0.05:
            raise Ignored("client-side trouble")
        return "ok"

    totals = Outcomes()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        seen = Outcomes()
        try:
            while not stopping.is_set():
                try:
                    dependency(rng)
                    seen.successes += 1
                except Failure:
                    seen.failures += 1
                except Ignored:
                    seen.ignored += 1
                except OpenCircuitError:
                    seen.rejected += 1
                    time.sleep(0.0005)  # a rejected caller backs off instead of spinning on the GIL
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        with guard:
            totals.add(seen)

    pool = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
    for thread in pool:
        thread.start()
    time.sleep(run_seconds)  # the only way to let real threads race for a while
    with guard:
        stopping.set()
        for barrier in barriers.values():
            barrier.abort()
    for thread in pool:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in pool)
    assert errors == []
    assert broken_early == []

    lifetime = breaker.totals
    assert lifetime.successes == totals.successes
    assert lifetime.failures == totals.failures
    assert lifetime.ignored == totals.ignored
    assert lifetime.rejected == totals.rejected
    assert lifetime.successes + lifetime.failures + lifetime.ignored + lifetime.rejected == totals.attempts
    entered = check_transitions(events, breaker)
    assert entered["open"] >= 4 and entered["closed"] >= 3, entered
    check_probes(probes)


def test_a_thousand_tasks_trip_and_recover_with_exact_probes_and_totals() -> None:
    clock = FakeClock()
    store = ProbeHandingStore()
    events: list[BreakerStateChanged] = []
    breaker = CircuitBreaker(
        "tasks",
        failure_threshold=5,
        open_duration=0.05,
        half_open_max_calls=MAX_PROBES,
        ignore_on=Ignored,
        store=store,
        clock=clock,
        on_state_change=events.append,
    )
    probes: collections.Counter[int] = collections.Counter()
    state = {"healthy": True, "stopping": False}

    async def scenario() -> Outcomes:
        barriers: dict[int, asyncio.Barrier] = {}

        @breaker
        async def dependency(rng: random.Random) -> str:
            permit = PROBE.get()
            PROBE.set(None)
            if permit is not None and not state["stopping"]:
                probes[permit.generation] += 1
                barrier = barriers.setdefault(permit.generation, asyncio.Barrier(MAX_PROBES))
                try:
                    await barrier.wait()
                except asyncio.BrokenBarrierError:
                    assert state["stopping"]
            await asyncio.sleep(0)  # in flight while the breaker may change state
            if not state["healthy"]:
                raise Failure("down")
            if permit is None and rng.random() < 0.05:
                raise Ignored("client-side trouble")
            return "ok"

        async def worker(seed: int) -> Outcomes:
            rng = random.Random(seed)
            seen = Outcomes()
            while not state["stopping"]:
                try:
                    await dependency(rng)
                    seen.successes += 1
                except Failure:
                    seen.failures += 1
                except Ignored:
                    seen.ignored += 1
                except OpenCircuitError:
                    seen.rejected += 1
                    await asyncio.sleep(0)
            return seen

        tasks = [asyncio.ensure_future(worker(seed)) for seed in range(1000)]
        for phase in range(8):
            state["healthy"] = phase % 2 == 0
            for _ in range(8):
                clock.advance(0.02)
                await asyncio.sleep(0)
        state["stopping"] = True
        for barrier in barriers.values():
            await barrier.abort()
        total = Outcomes()
        for seen in await asyncio.gather(*tasks):
            total.add(seen)
        return total

    totals = asyncio.run(scenario())
    lifetime = breaker.totals
    assert (lifetime.successes, lifetime.failures, lifetime.ignored, lifetime.rejected) == (
        totals.successes,
        totals.failures,
        totals.ignored,
        totals.rejected,
    )
    assert totals.attempts >= 1000
    entered = check_transitions(events, breaker)
    assert entered["open"] >= 4 and entered["closed"] >= 3, entered
    check_probes(probes)
