"""Stateful property tests: the circuit breaker against a small reference model, on a fake clock.

Hypothesis drives random sequences of calls (successes, failures, ignored errors), permits held
across other operations and released later (so results can arrive from earlier generations),
clock advances and operator actions. After every step the breaker's state, counts, totals and
``retry_after`` must equal the model's, probes in flight must never exceed
``half_open_max_calls``, and every announced transition must be legal in ``TRANSITIONS``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from buttress.errors import OpenCircuitError
from buttress.events import BreakerStateChanged, Event
from buttress.resilience.breaker._model import TRANSITIONS, BreakerState, Counts, Totals
from buttress.resilience.breaker.classic import CircuitBreaker
from buttress.resilience.breaker.store import MemoryBreakerStore, Permit
from buttress.testing import FakeClock

S = BreakerState
OUTCOMES = st.sampled_from(["success", "failure", "ignored"])


class Failure(Exception):
    """What the dependency raises when it fails."""


class Ignored(Exception):
    """An error the breaker is configured to ignore."""


@dataclass
class ModelPermit:
    generation: int
    probe: bool


class Model:
    """The breaker's rules written as plainly as possible, from the documentation."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.threshold: int | None = config.get("failure_threshold")
        self.rate: float | None = config.get("failure_rate_threshold")
        self.minimum: int = config.get("minimum_calls", 1)
        self.max_calls: int = config["half_open_max_calls"]
        self.success_threshold: int = config.get("half_open_success_threshold", self.max_calls)
        self.open_duration: float = config["open_duration"]
        self.ring: deque[bool] = deque(maxlen=config.get("window_size", 1))
        self.now = 0.0
        self.state = S.CLOSED
        self.generation = 0
        self.open_until = 0.0
        self.successes = self.failures = self.consecutive_failures = self.successes_at_failure = 0
        self.probes = self.probe_successes = self.probe_failures = 0
        self.totals = {"successes": 0, "failures": 0, "ignored": 0, "rejected": 0, "trips": 0}

    # -- helpers ------------------------------------------------------------------------
    def new_generation(self) -> None:
        self.generation += 1
        self.successes = self.failures = self.consecutive_failures = self.successes_at_failure = 0
        self.probes = self.probe_successes = self.probe_failures = 0
        self.ring.clear()

    def move(self, new: BreakerState) -> None:
        assert new in TRANSITIONS[self.state]
        self.state = new
        self.new_generation()
        if new is S.OPEN:
            self.totals["trips"] += 1
            self.open_until = self.now + self.open_duration

    def advance_state(self) -> None:
        if self.state is S.OPEN and self.now >= self.open_until:
            self.move(S.HALF_OPEN)

    # -- operations ---------------------------------------------------------------------
    def acquire(self) -> ModelPermit | None:
        self.advance_state()
        if self.state in (S.CLOSED, S.FORCED_CLOSED):
            return ModelPermit(self.generation, False)
        if self.state is S.HALF_OPEN and self.probes < self.max_calls:
            self.probes += 1
            return ModelPermit(self.generation, True)
        self.totals["rejected"] += 1
        return None

    def record(self, permit: ModelPermit, outcome: str) -> None:
        if outcome == "ignored":
            self.totals["ignored"] += 1
            if permit.probe and permit.generation == self.generation:
                self.probes -= 1
            return
        failed = outcome == "failure"
        self.totals["failures" if failed else "successes"] += 1
        if permit.generation != self.generation:
            return  # a stale result: totalled, never counted
        if failed:
            self.failures += 1
            self.consecutive_failures += 1
            self.successes_at_failure = self.successes
        else:
            self.successes += 1
            self.consecutive_failures = 0
        if permit.probe:
            if failed:
                self.probe_failures += 1
                if self.probe_failures > self.max_calls - self.success_threshold:
                    self.move(S.OPEN)
            else:
                self.probe_successes += 1
                if self.probe_successes >= self.success_threshold:
                    self.move(S.CLOSED)
            return
        if self.state is S.FORCED_CLOSED:
            return
        if self.rate is not None:
            self.ring.append(failed)
        if not failed:
            return
        consecutive = self.threshold is not None and self.consecutive_failures >= self.threshold
        rate = (
            self.rate is not None
            and len(self.ring) >= self.minimum
            and sum(self.ring) >= self.rate * len(self.ring)
        )
        if consecutive or rate:
            self.move(S.OPEN)

    def force(self, target: BreakerState) -> None:
        if target is self.state:
            if target is S.CLOSED:
                self.new_generation()
            return
        self.move(target)

    def read(self) -> tuple[BreakerState, Counts, Totals, float]:
        self.advance_state()
        counts = Counts(
            requests=self.successes + self.failures,
            total_successes=self.successes,
            total_failures=self.failures,
            consecutive_successes=self.successes - self.successes_at_failure,
            consecutive_failures=self.consecutive_failures,
        )
        retry_after = max(0.0, self.open_until - self.now) if self.state is S.OPEN else 0.0
        return self.state, counts, Totals(**self.totals), retry_after


class BreakerMachine(RuleBasedStateMachine):
    """Drives one breaker and one model with the same operations."""

    CONFIG: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = MemoryBreakerStore()
        self.breaker = CircuitBreaker(
            "model", clock=self.clock, store=self.store, ignore_on=Ignored, **self.CONFIG
        )
        self.model = Model(self.CONFIG)
        self.events: list[Event] = []
        self.breaker.events.subscribe(self.events.append)
        self.last_state = S.CLOSED
        self.held: list[tuple[Permit, ModelPermit]] = []

        @self.breaker
        def decorated(outcome: str) -> str:
            return self.dependency(outcome)

        self.decorated = decorated

    @staticmethod
    def dependency(outcome: str) -> str:
        if outcome == "failure":
            raise Failure("down")
        if outcome == "ignored":
            raise Ignored("not the dependency's fault")
        return "ok"

    # -- rules ----------------------------------------------------------------------------
    @rule(outcome=OUTCOMES, through_decorator=st.booleans())
    def call(self, outcome: str, through_decorator: bool) -> None:
        def run() -> str:
            if through_decorator:
                return self.decorated(outcome)  # the specialised fast path while closed
            return self.breaker.call(self.dependency, outcome)

        permit = self.model.acquire()
        if permit is None:
            state = self.model.state
            with pytest.raises(OpenCircuitError) as info:
                run()
            assert info.value.state == state.value
            if state is S.OPEN:
                assert info.value.retry_after is not None
                assert math.isclose(info.value.retry_after, self.model.open_until - self.model.now)
            else:
                assert info.value.retry_after is None
            return
        expected = {"failure": Failure, "ignored": Ignored}.get(outcome)
        if expected is None:
            assert run() == "ok"
        else:
            with pytest.raises(expected):
                run()
        self.model.record(permit, outcome)

    @precondition(lambda self: len(self.held) < 4)
    @rule()
    def hold(self) -> None:
        permit = self.model.acquire()
        if permit is None:
            with pytest.raises(OpenCircuitError):
                self.breaker.acquire()
            return
        real = self.breaker.acquire()
        assert (real.generation, real.probe) == (permit.generation, permit.probe)
        self.held.append((real, permit))

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), outcome=OUTCOMES)
    def release(self, data: st.DataObject, outcome: str) -> None:
        real, permit = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        error = {"failure": Failure("down"), "ignored": Ignored("meh")}.get(outcome)
        self.breaker.record(real, error)
        self.model.record(permit, outcome)

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 2.5, 5.0, 7.5]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.now += seconds

    @rule(goal=st.sampled_from([S.FORCED_OPEN, S.FORCED_CLOSED, S.CLOSED]))
    def force(self, goal: BreakerState) -> None:
        {S.FORCED_OPEN: self.breaker.force_open, S.FORCED_CLOSED: self.breaker.force_closed}.get(
            goal, self.breaker.reset
        )()
        self.model.force(goal)

    # -- invariants -----------------------------------------------------------------------
    @invariant()
    def matches_the_model(self) -> None:
        snapshot = self.breaker.snapshot()
        state, counts, totals, retry_after = self.model.read()
        assert snapshot.state is state
        assert snapshot.counts == counts
        assert snapshot.totals == totals
        assert math.isclose(snapshot.retry_after, retry_after)
        assert snapshot.retry_after >= 0.0

    @invariant()
    def probes_in_flight_never_exceed_the_limit(self) -> None:
        assert 0 <= self.store._probes <= self.CONFIG["half_open_max_calls"]
        in_flight = sum(1 for real, _ in self.held if real.probe and real.generation == self.store.generation)
        assert in_flight <= self.CONFIG["half_open_max_calls"]

    @invariant()
    def only_legal_transitions_are_announced(self) -> None:
        for event in self.events:
            if isinstance(event, BreakerStateChanged):
                old, new = BreakerState(event.old), BreakerState(event.new)
                assert old is self.last_state
                assert new in TRANSITIONS[old]
                self.last_state = new
        self.events.clear()


class ConsecutiveFailures(BreakerMachine):
    CONFIG: ClassVar[dict[str, Any]] = {
        "failure_threshold": 3,
        "half_open_max_calls": 2,
        "open_duration": 5.0,
    }


class CountWindow(BreakerMachine):
    CONFIG: ClassVar[dict[str, Any]] = {
        "failure_rate_threshold": 0.5,
        "window_size": 4,
        "minimum_calls": 2,
        "half_open_max_calls": 3,
        "half_open_success_threshold": 2,
        "open_duration": 2.5,
    }


SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestConsecutiveFailures = ConsecutiveFailures.TestCase
TestConsecutiveFailures.settings = SETTINGS
TestCountWindow = CountWindow.TestCase
TestCountWindow.settings = SETTINGS
