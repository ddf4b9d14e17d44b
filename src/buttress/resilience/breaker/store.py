"""Where a circuit breaker's state lives.

A :class:`BreakerStore` runs the breaker's state machine atomically: it admits or rejects
calls and records their outcomes, and returns the state changes it made so that the
breaker can announce them *after* the store's lock (or round trip) is done. The in-memory
store below serves one process; a Redis store (``buttress.resilience.breaker.redis``) shares
one state between processes by running the same machine in Lua.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from buttress.resilience.breaker._model import (
    TRANSITIONS,
    BreakerConfig,
    BreakerState,
    Counts,
    Outcome,
    Totals,
)

if TYPE_CHECKING:
    from buttress.resilience.backoff import Backoff

__all__ = ["BreakerStore", "MemoryBreakerStore", "Permit", "Rejection", "Snapshot", "Transition"]

_S = BreakerState


@dataclass(frozen=True, slots=True)
class Permit:
    """Admission of one call; hand it back to :meth:`BreakerStore.record` with the outcome."""

    generation: int
    probe: bool


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused call: the state that refused it and, when known, seconds until it may pass."""

    state: BreakerState
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change made by the store, for the breaker to announce."""

    old: BreakerState
    new: BreakerState
    reason: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent reading of the breaker: state, current counts, lifetime totals."""

    state: BreakerState
    counts: Counts
    totals: Totals
    retry_after: float


class _OutcomeWindow(Protocol):
    def record(self, failed: bool, slow: bool, now: float) -> None: ...
    def totals(self, now: float) -> tuple[int, int, int]: ...
    def reset(self) -> None: ...


class BreakerStore(abc.ABC):
    """The state machine of one breaker, run atomically wherever its state lives."""

    fast: Permit | None = None
    """Set only while a successful call may skip the store entirely (in-memory, closed,
    consecutive-failure rule): the permit of the current generation, which the breaker's fast
    path holds across the call and compares afterwards to detect a generation change."""

    @abc.abstractmethod
    def bind(self, config: BreakerConfig) -> None:
        """Receive the breaker's configuration; called once by the breaker's constructor."""

    @abc.abstractmethod
    def acquire(self, now: float) -> tuple[Permit | Rejection, Transition | None]:
        """Admit or reject one call at time ``now``."""

    @abc.abstractmethod
    def record(
        self, permit: Permit, outcome: Outcome, slow: bool, now: float
    ) -> tuple[Transition | None, Counts | None]:
        """Record the outcome of an admitted call.

        Returns:
            the transition it caused, if any, and — when a failure left the built-in rules
            unmet and the breaker has a ``ready_to_trip`` callback — the counts to show it.
        """

    @abc.abstractmethod
    def trip_if(self, generation: int, now: float, reason: str) -> Transition | None:
        """Open the breaker if it is still closed in ``generation`` (after ``ready_to_trip``)."""

    @abc.abstractmethod
    def snapshot(self, now: float) -> tuple[Snapshot, Transition | None]:
        """Read the state (advancing open → half-open when due)."""

    @abc.abstractmethod
    def force(self, state: BreakerState, now: float, reason: str) -> Transition | None:
        """Move to ``state`` by operator request (``CLOSED`` resets all counts)."""


class MemoryBreakerStore(BreakerStore):
    """In-process state, guarded by a lock on every path except the closed success path.

    The closed-state success path of a breaker using only the consecutive-failure rule adds one
    to ``successes`` without a lock (atomic under the GIL); a success racing a trip can at
    worst be counted in the new generation, never admitted as a probe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = _S.CLOSED
        self.generation = 0
        self.successes = 0
        self.failures = 0
        self._streak = 0  # failures since the success count was last seen to move
        self._successes_at_failure = 0
        self._retired = [0, 0]  # successes, failures of earlier generations and stale results
        self._ignored = 0
        self._rejected = 0
        self._trips = 0
        self._open_until = 0.0
        self._half_open_since = 0.0
        self._interval_end = float("inf")
        self._probes = 0
        self._probe_successes = 0
        self._probe_failures = 0
        self._last_open = 0.0
        self._open_backoff: Backoff | None = None
        self._window: _OutcomeWindow | None = None
        self._permit = Permit(0, False)
        self._probe_permit = Permit(0, True)
        self.fast: Permit | None = None

    # -- set-up -------------------------------------------------------------------------
    def bind(self, config: BreakerConfig) -> None:
        """Take the configuration and start closed."""
        self._config = config
        if config.open_backoff is not None:
            self._open_backoff = config.open_backoff.clone()
        if config.uses_window:
            from buttress.resilience.window import OutcomeRing, TimeOutcomeWindow

            if config.window_type == "count":
                self._window = OutcomeRing(int(config.window_size))
            else:
                self._window = TimeOutcomeWindow(config.window_size)
        self._refresh_fast()
        # The store has no clock: the first reading (first call or snapshot) starts the first
        # interval, by finding it already over.
        self._interval_end = float("-inf") if config.reset_interval is not None else float("inf")

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success.

        A success only adds to ``successes`` (that keeps the lock-free path to one integer
        update); a streak of failures is over as soon as the success count has moved since the
        last failure.
        """
        return self._streak if self.successes == self._successes_at_failure else 0

    # -- helpers (lock held) ------------------------------------------------------------
    def _counts(self) -> Counts:
        return Counts(
            requests=self.successes + self.failures,
            total_successes=self.successes,
            total_failures=self.failures,
            consecutive_successes=self.successes - self._successes_at_failure,
            consecutive_failures=self.consecutive_failures,
        )

    def _new_generation(self, now: float) -> None:
        self._retired[0] += self.successes
        self._retired[1] += self.failures
        self.generation += 1
        self.successes = self.failures = self._streak = 0
        self._successes_at_failure = 0
        self._probes = self._probe_successes = self._probe_failures = 0
        if self._window is not None:
            self._window.reset()
        self._permit = Permit(self.generation, False)
        self._probe_permit = Permit(self.generation, True)
        interval = self._config.reset_interval
        self._interval_end = now + interval if interval is not None else float("inf")
        self._refresh_fast()

    def _refresh_fast(self) -> None:
        self.fast = self._permit if self.state is _S.CLOSED and self._config.fast_closed else None

    def _next_open_duration(self, from_closed: bool) -> float:
        backoff = self._open_backoff
        if backoff is None:
            return self._config.open_duration
        if from_closed:
            backoff.reset()
        delay = backoff.next_backoff()
        if isinstance(delay, float | int):
            self._last_open = float(delay)
        return self._last_open

    def _move(self, new: BreakerState, now: float, reason: str) -> Transition:
        old = self.state
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"illegal breaker transition {old} -> {new}")  # pragma: no cover
        self.state = new
        self._new_generation(now)
        if new is _S.OPEN:
            self._trips += 1
            self._open_until = now + self._next_open_duration(from_closed=old is _S.CLOSED)
        elif new is _S.HALF_OPEN:
            self._half_open_since = now
        elif new is _S.CLOSED and self._open_backoff is not None:
            self._open_backoff.reset()
        self._refresh_fast()
        return Transition(old, new, reason)

    def _advance(self, now: float) -> Transition | None:
        state = self.state
        if state is _S.OPEN:
            if now >= self._open_until:
                return self._move(_S.HALF_OPEN, now, "open duration elapsed")
        elif state is _S.HALF_OPEN:
            limit = self._config.half_open_max_duration
            if limit is not None and now >= self._half_open_since + limit:
                return self._move(_S.OPEN, now, f"half-open probes did not finish within {limit:g}s")
        elif state is _S.CLOSED and now >= self._interval_end:
            self._new_generation(now)
        return None

    def _trip_reason(self, now: float) -> str | None:
        config = self._config
        threshold = config.failure_threshold
        if threshold is not None and self.consecutive_failures >= threshold:
            return f"{self.consecutive_failures} consecutive failures"
        window = self._window
        if window is not None:
            calls, failures, slow = window.totals(now)
            if calls >= config.minimum_calls:
                rate = config.failure_rate_threshold
                if rate is not None and failures >= rate * calls:
                    return f"failure rate {failures / calls:.0%} over the last {calls} calls"
                slow_rate = config.slow_call_rate_threshold
                if slow_rate is not None and slow >= slow_rate * calls:
                    return f"slow-call rate {slow / calls:.0%} over the last {calls} calls"
        return None

    # -- the machine --------------------------------------------------------------------
    def acquire(self, now: float) -> tuple[Permit | Rejection, Transition | None]:
        """Admit a call in closed states, a probe while half-open slots remain, else reject."""
        with self._lock:
            transition = self._advance(now)
            state = self.state
            if state is _S.CLOSED or state is _S.FORCED_CLOSED:
                return self._permit, transition
            if state is _S.HALF_OPEN:
                if self._probes < self._config.half_open_max_calls:
                    self._probes += 1
                    return self._probe_permit, transition
                self._rejected += 1
                return Rejection(state, None), transition
            self._rejected += 1
            retry_after = max(0.0, self._open_until - now) if state is _S.OPEN else None
            return Rejection(state, retry_after), transition

    def record(
        self, permit: Permit, outcome: Outcome, slow: bool, now: float
    ) -> tuple[Transition | None, Counts | None]:
        """Count the outcome in its generation; results of an earlier generation are only totalled."""
        config = self._config
        with self._lock:
            if outcome == "ignored":
                self._ignored += 1
                if permit.probe and permit.generation == self.generation:
                    self._probes -= 1
                return None, None
            failed = outcome == "failure"
            if permit.generation != self.generation:
                self._retired[1 if failed else 0] += 1
                return None, None
            if failed:
                self.failures += 1
                successes = self.successes  # read once: the fast path may add to it meanwhile
                self._streak = self._streak + 1 if successes == self._successes_at_failure else 1
                self._successes_at_failure = successes
            else:
                self.successes += 1
            if permit.probe:
                slow_failure = slow and config.slow_call_rate_threshold is not None
                return self._record_probe(failed or slow_failure, now)
            if self.state is _S.FORCED_CLOSED:
                return None, None
            if self._window is not None:
                self._window.record(failed, slow, now)
            if not failed and not slow:
                return None, None
            reason = self._trip_reason(now)
            if reason is not None:
                return self._move(_S.OPEN, now, reason), None
            if failed and config.ready_to_trip is not None:
                return None, self._counts()
            return None, None

    def _record_probe(self, failed: bool, now: float) -> tuple[Transition | None, Counts | None]:
        config = self._config
        if failed:
            self._probe_failures += 1
            allowed = config.half_open_max_calls - config.half_open_success_threshold
            if self._probe_failures > allowed:
                return self._move(_S.OPEN, now, f"{self._probe_failures} half-open probe(s) failed"), None
        else:
            self._probe_successes += 1
            if self._probe_successes >= config.half_open_success_threshold:
                return self._move(
                    _S.CLOSED, now, f"{self._probe_successes} half-open probe(s) succeeded"
                ), None
        return None, None

    def fast_failure(self, generation: int, now: float) -> tuple[Transition | None, Counts | None]:
        """The failure of a call admitted on the fast path (no permit object was made)."""
        return self.record(self._permit if generation == self.generation else Permit(generation, False),
                           "failure", False, now)  # fmt: skip

    def trip_if(self, generation: int, now: float, reason: str) -> Transition | None:
        """Open after ``ready_to_trip`` said so, unless the state moved on meanwhile."""
        with self._lock:
            if generation != self.generation or self.state is not _S.CLOSED:
                return None
            return self._move(_S.OPEN, now, reason)

    def snapshot(self, now: float) -> tuple[Snapshot, Transition | None]:
        """A consistent reading; advances open → half-open when the open duration has passed."""
        with self._lock:
            transition = self._advance(now)
            successes = self._retired[0] + self.successes
            failures = self._retired[1] + self.failures
            totals = Totals(successes, failures, self._ignored, self._rejected, self._trips)
            retry_after = max(0.0, self._open_until - now) if self.state is _S.OPEN else 0.0
            return Snapshot(self.state, self._counts(), totals, retry_after), transition

    def force(self, state: BreakerState, now: float, reason: str) -> Transition | None:
        """Operator transition; ``CLOSED`` starts a fresh generation even when already closed."""
        with self._lock:
            if state is self.state:
                if state is _S.CLOSED:
                    self._new_generation(now)
                return None
            if state not in TRANSITIONS[self.state]:
                raise ValueError(f"cannot move a breaker from {self.state} to {state} by hand")
            return self._move(state, now, reason)
