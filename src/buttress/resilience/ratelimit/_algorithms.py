"""Sans-IO cores of the limiting algorithms: arithmetic over one key's state and ``now``.

A core never reads a clock, sleeps or locks; its caller (the in-memory limiter, a test, a
simulation) owns the state and passes the present time. The arithmetic is the one pinned in
:mod:`buttress.resilience.ratelimit._rules`, which the Redis scripts repeat.

One key's state is a small ``list`` whose item 0 is the core that made it, so a limiter that
applies different rules to different keys (overrides) finds the rule with the state. Lists,
not objects, because indexing a list is the cheapest mutable storage Python has.

Each core offers:

* ``new(now)`` -- the state of a key never seen (full capacity);
* ``decide(state, now, cost)`` -- admit or refuse, update the state, return a ``Decision``;
* ``admit(state, now, cost)`` -- the same admission as ``decide``, returning only a ``bool``
  (the hot path when nobody reads the decision);
* ``idle(state, now)`` -- true when the state equals a fresh one, so dropping it changes
  nothing (idle keys expire without losing information).

Example:
    >>> from buttress.resilience.ratelimit import FixedWindow
    >>> core = core_for(FixedWindow(limit=2, window=1.0))
    >>> state = core.new(0.0)
    >>> [core.admit(state, 0.1, 1) for _ in range(3)]
    [True, True, False]
    >>> core.decide(state, 1.0, 1).remaining
    1
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from buttress.resilience.ratelimit._decision import Decision, make_decision
from buttress.resilience.ratelimit._rules import (
    GCRA,
    TOLERANCE,
    Concurrency,
    FixedWindow,
    Rule,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)

__all__ = [
    "ConcurrencyCore",
    "Core",
    "FixedWindowCore",
    "GCRACore",
    "SlidingWindowCounterCore",
    "SlidingWindowLogCore",
    "State",
    "TokenBucketCore",
    "core_for",
]

State = list[Any]
"""One key's state: ``[core, ...algorithm fields]``."""

_INF = math.inf
_floor = math.floor


class TokenBucketCore:
    """Token bucket: state ``[core, tokens, t_last]``."""

    __slots__ = ("burst", "limit", "policy", "rate", "rule")

    def __init__(self, rule: TokenBucket) -> None:
        self.rule = rule
        self.rate = float(rule.rate)
        self.burst = float(rule.burst)
        self.limit = rule.burst
        self.policy = rule.policy_header()

    def new(self, now: float) -> State:
        """A full bucket."""
        return [self, self.burst, now]

    def decide(self, state: State, now: float, cost: int) -> Decision:
        """Refill, then take ``cost`` tokens if there are enough."""
        rate = self.rate
        burst = self.burst
        if now < state[2]:  # a reading older than a lock-free update (see MemoryLimiter)
            now = state[2]
        tokens = state[1] + (now - state[2]) * rate
        if tokens > burst:
            tokens = burst
        state[2] = now
        if tokens + TOLERANCE >= cost:
            tokens -= cost
            if tokens < 0.0:
                tokens = 0.0
            state[1] = tokens
            return make_decision(
                True, self.limit, int(tokens + TOLERANCE), 0.0, (burst - tokens) / rate, self.policy
            )
        state[1] = tokens
        retry_after = (cost - tokens) / rate if cost <= burst else _INF
        return make_decision(
            False, self.limit, int(tokens + TOLERANCE), retry_after, (burst - tokens) / rate, self.policy
        )

    def admit(self, state: State, now: float, cost: int) -> bool:
        """:meth:`decide` without building the decision."""
        if now < state[2]:
            now = state[2]
        tokens = state[1] + (now - state[2]) * self.rate
        burst = self.burst
        if tokens > burst:
            tokens = burst
        state[2] = now
        if tokens + TOLERANCE >= cost:
            tokens -= cost
            state[1] = tokens if tokens > 0.0 else 0.0
            return True
        state[1] = tokens
        return False

    def idle(self, state: State, now: float) -> bool:
        """Whether the bucket has refilled completely."""
        return bool(state[1] + (now - state[2]) * self.rate + TOLERANCE >= self.burst)


class GCRACore:
    """GCRA: state ``[core, tat]`` (theoretical arrival time)."""

    __slots__ = ("burst", "interval", "limit", "policy", "rule", "tau")

    def __init__(self, rule: GCRA) -> None:
        self.rule = rule
        self.limit = rule.capacity
        self.burst = rule.capacity
        self.interval = rule.emission_interval
        self.tau = self.interval * self.burst
        self.policy = rule.policy_header()

    def new(self, now: float) -> State:
        """A key with no debt: ``TAT = now``."""
        return [self, now]

    def decide(self, state: State, now: float, cost: int) -> Decision:
        """Admit when the new theoretical arrival time stays within ``tau`` of ``now``."""
        tat = state[1]
        if tat < now:
            tat = now
        interval = self.interval
        tau = self.tau
        new_tat = tat + interval * cost
        if new_tat - now <= tau + TOLERANCE:
            state[1] = new_tat
            remaining = int((tau - (new_tat - now)) / interval + TOLERANCE)
            return make_decision(True, self.limit, max(remaining, 0), 0.0, new_tat - now, self.policy)
        remaining = int((tau - (tat - now)) / interval + TOLERANCE)
        retry_after = new_tat - tau - now if cost <= self.burst else _INF
        return make_decision(False, self.limit, max(remaining, 0), retry_after, tat - now, self.policy)

    def admit(self, state: State, now: float, cost: int) -> bool:
        """:meth:`decide` without building the decision."""
        tat = state[1]
        if tat < now:
            tat = now
        new_tat = tat + self.interval * cost
        if new_tat - now <= self.tau + TOLERANCE:
            state[1] = new_tat
            return True
        return False

    def idle(self, state: State, now: float) -> bool:
        """Whether the key carries no debt any more."""
        return bool(state[1] <= now)


class FixedWindowCore:
    """Fixed window: state ``[core, window_index, count]``."""

    __slots__ = ("limit", "policy", "rule", "window")

    def __init__(self, rule: FixedWindow) -> None:
        self.rule = rule
        self.limit = rule.limit
        self.window = float(rule.window)
        self.policy = rule.policy_header()

    def new(self, now: float) -> State:
        """An empty current window."""
        return [self, _floor(now / self.window), 0]

    def decide(self, state: State, now: float, cost: int) -> Decision:
        """Count ``cost`` against the current window if it fits."""
        window = self.window
        index = _floor(now / window)
        if state[1] != index:
            if index > state[1]:
                state[1] = index
                state[2] = 0
            else:  # a reading older than a lock-free update: count in the newer window
                index = state[1]
        reset_after = (index + 1) * window - now
        count = state[2] + cost
        limit = self.limit
        if count <= limit:
            state[2] = count
            return make_decision(True, limit, limit - count, 0.0, reset_after, self.policy)
        retry_after = reset_after if cost <= limit else _INF
        return make_decision(False, limit, limit - state[2], retry_after, reset_after, self.policy)

    def admit(self, state: State, now: float, cost: int) -> bool:
        """:meth:`decide` without building the decision."""
        index = _floor(now / self.window)
        if index > state[1]:
            state[1] = index
            state[2] = 0
        count = state[2] + cost
        if count <= self.limit:
            state[2] = count
            return True
        return False

    def idle(self, state: State, now: float) -> bool:
        """Whether the key's window is over (or nothing was counted in it)."""
        return bool(state[2] == 0 or state[1] != _floor(now / self.window))


class SlidingWindowLogCore:
    """Sliding window log: state ``[core, deque of admitted-unit timestamps]``."""

    __slots__ = ("limit", "policy", "rule", "window")

    def __init__(self, rule: SlidingWindowLog) -> None:
        self.rule = rule
        self.limit = rule.limit
        self.window = float(rule.window)
        self.policy = rule.policy_header()

    def new(self, now: float) -> State:
        """An empty log."""
        return [self, deque()]

    def decide(self, state: State, now: float, cost: int) -> Decision:
        """Drop timestamps older than the window; admit if ``cost`` more units fit."""
        log: deque[float] = state[1]
        window = self.window
        horizon = now - window
        while log and log[0] <= horizon:
            log.popleft()
        limit = self.limit
        size = len(log)
        if size + cost <= limit:
            if cost == 1:
                log.append(now)
            else:
                log.extend([now] * cost)
            return make_decision(True, limit, limit - size - cost, 0.0, window, self.policy)
        retry_after = log[size - limit + cost - 1] + window - now if cost <= limit else _INF
        reset_after = log[-1] + window - now if log else 0.0
        return make_decision(False, limit, limit - size, retry_after, reset_after, self.policy)

    def admit(self, state: State, now: float, cost: int) -> bool:
        """:meth:`decide` without building the decision."""
        log: deque[float] = state[1]
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) + cost <= self.limit:
            if cost == 1:
                log.append(now)
            else:
                log.extend([now] * cost)
            return True
        return False

    def idle(self, state: State, now: float) -> bool:
        """Whether every logged unit has left the window."""
        log: deque[float] = state[1]
        return not log or log[-1] <= now - self.window


class SlidingWindowCounterCore:
    """Sliding window counter: state ``[core, window_index, previous_count, current_count]``."""

    __slots__ = ("limit", "policy", "rule", "window")

    def __init__(self, rule: SlidingWindowCounter) -> None:
        self.rule = rule
        self.limit = rule.limit
        self.window = float(rule.window)
        self.policy = rule.policy_header()

    def new(self, now: float) -> State:
        """Both windows empty."""
        return [self, _floor(now / self.window), 0, 0]

    @staticmethod
    def _roll(state: State, index: int) -> None:
        if state[1] != index:
            state[2] = state[3] if index == state[1] + 1 else 0
            state[3] = 0
            state[1] = index

    def decide(self, state: State, now: float, cost: int) -> Decision:
        """Admit if the weighted estimate plus ``cost`` stays within the limit."""
        window = self.window
        index = _floor(now / window)
        self._roll(state, index)
        previous = state[2]
        current = state[3]
        limit = self.limit
        estimate = previous * (1.0 - (now - index * window) / window) + current
        reset_at = (index + 2) * window
        if estimate + cost <= limit + TOLERANCE:
            state[3] = current + cost
            remaining = max(0, _floor(limit - estimate - cost + TOLERANCE))
            return make_decision(True, limit, remaining, 0.0, reset_at - now, self.policy)
        remaining = max(0, _floor(limit - estimate + TOLERANCE))
        reset_after = reset_at - now if previous or current else 0.0
        return make_decision(
            False, limit, remaining, self._retry_after(state, now, cost), reset_after, self.policy
        )

    def _retry_after(self, state: State, now: float, cost: int) -> float:
        limit = self.limit
        if cost > limit:
            return _INF
        window = self.window
        index: int = state[1]
        previous: int = state[2]
        current: int = state[3]
        if current + cost <= limit and previous > 0:
            # Within this window the estimate falls linearly as the previous window slides out.
            fraction = 1.0 - (limit - cost - current) / previous
            if fraction < 1.0:
                return max(0.0, (index + fraction) * window - now)
        # Next window: previous' = current, current' = 0, estimate = current * (1 - f').
        fraction = max(0.0, 1.0 - (limit - cost) / current) if current else 0.0
        return (index + 1) * window - now + fraction * window

    def admit(self, state: State, now: float, cost: int) -> bool:
        """:meth:`decide` without building the decision."""
        window = self.window
        index = _floor(now / window)
        if state[1] != index:
            self._roll(state, index)
        current = state[3]
        if state[2] * (1.0 - (now - index * window) / window) + current + cost <= self.limit + TOLERANCE:
            state[3] = current + cost
            return True
        return False

    def idle(self, state: State, now: float) -> bool:
        """Whether both counted windows have slid out."""
        return (not state[2] and not state[3]) or _floor(now / self.window) >= state[1] + 2


class ConcurrencyCore:
    """Concurrency: state ``[core, in_flight]``; :meth:`release` gives units back."""

    __slots__ = ("limit", "policy", "rule")

    def __init__(self, rule: Concurrency) -> None:
        self.rule = rule
        self.limit = rule.limit
        self.policy = rule.policy_header()

    def new(self, now: float) -> State:
        """Nothing in flight."""
        return [self, 0]

    def decide(self, state: State, now: float, cost: int) -> Decision:
        """Admit if ``cost`` more calls fit; when a slot frees is unknown, so ``retry_after`` is 0."""
        limit = self.limit
        in_flight = state[1] + cost
        if in_flight <= limit:
            state[1] = in_flight
            return make_decision(True, limit, limit - in_flight, 0.0, 0.0, self.policy)
        retry_after = 0.0 if cost <= limit else _INF
        return make_decision(False, limit, limit - state[1], retry_after, 0.0, self.policy)

    def admit(self, state: State, now: float, cost: int) -> bool:
        """:meth:`decide` without building the decision."""
        in_flight = state[1] + cost
        if in_flight <= self.limit:
            state[1] = in_flight
            return True
        return False

    def release(self, state: State, cost: int) -> None:
        """Give back ``cost`` units (never below zero: a double release is harmless)."""
        state[1] = max(0, state[1] - cost)

    def idle(self, state: State, now: float) -> bool:
        """Whether nothing is in flight."""
        return bool(state[1] == 0)


Core = (
    TokenBucketCore
    | GCRACore
    | FixedWindowCore
    | SlidingWindowLogCore
    | SlidingWindowCounterCore
    | ConcurrencyCore
)
"""Any algorithm core."""


def core_for(rule: Rule) -> Core:
    """The core that applies ``rule``.

    Raises:
        TypeError: if ``rule`` is not one of the rule classes.
    """
    if isinstance(rule, TokenBucket):
        return TokenBucketCore(rule)
    if isinstance(rule, GCRA):
        return GCRACore(rule)
    if isinstance(rule, FixedWindow):
        return FixedWindowCore(rule)
    if isinstance(rule, SlidingWindowLog):
        return SlidingWindowLogCore(rule)
    if isinstance(rule, SlidingWindowCounter):
        return SlidingWindowCounterCore(rule)
    if isinstance(rule, Concurrency):
        return ConcurrencyCore(rule)
    raise TypeError(f"not a rate-limit rule: {rule!r}")
