"""The in-memory limiter: per-key state in this process, with bounded memory."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from buttress._validation import Problems
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.resilience.ratelimit._algorithms import ConcurrencyCore, Core, State, core_for
from buttress.resilience.ratelimit._decision import Decision, make_decision
from buttress.resilience.ratelimit._rules import Concurrency, Rule

__all__ = ["MemoryLimiter"]

# Idle keys removed from the least-recently-used end per new key: enough to keep pace with
# any flood of new keys, few enough that inserting stays O(1).
_SWEEP_PER_INSERT = 2
# How far a Concurrency limiter looks past busy keys (calls in flight) for one to evict.
_EVICT_SCAN = 16


def _bad_cost(cost: object) -> ValueError:
    return ValueError(f"cost must be an integer >= 1 (got {cost!r})")


class MemoryLimiter:
    """A limiter whose per-key state lives in this process.

    Thread-safe and asyncio-safe. Each key gets its own state the first time it is seen, with
    the rule of the most specific override (an exact key beats the longest matching prefix,
    which beats the default rule). Memory stays bounded two ways:

    * a key whose state has returned to full capacity is *idle*: dropping it changes no
      future decision, so idle keys at the least-recently-used end are removed as new keys
      arrive (and all at once by :meth:`sweep`);
    * at most ``max_keys`` keys are kept; beyond that the least recently used key is evicted
      and, if it comes back, starts with full capacity. A :class:`Concurrency` limiter never
      evicts a key with calls in flight: it looks a few keys further, and refuses the new key
      (``retry_after = 0``) when all of them are busy.

    Args:
        rule: the default rule for every key.
        max_keys: the most keys held at once (integer >= 1).
        overrides: other rules for some keys: ``{"user:42": rule}`` applies to that key only,
            ``{"tenant:big:*": rule}`` (a trailing ``*``) to every key with that prefix. An
            override must be of the same kind as ``rule``.
        clock: the time source (monotonic).

    Raises:
        ConfigurationError: for an invalid ``max_keys`` or override.

    Example:
        >>> from buttress.resilience.ratelimit import FixedWindow, MemoryLimiter
        >>> limiter = MemoryLimiter(FixedWindow(limit=2, window=60), overrides={"vip:*": FixedWindow(10, 60)})
        >>> [limiter.try_acquire("ann").allowed for _ in range(3)]
        [True, True, False]
        >>> limiter.try_acquire("vip:bob").remaining
        9
    """

    __slots__ = (
        "_core",
        "_exact",
        "_lock",
        "_now",
        "_prefixes",
        "_states",
        "_touch",
        "clock",
        "max_keys",
        "rule",
    )

    rule: Rule
    max_keys: int
    clock: Clock

    def __init__(
        self,
        rule: Rule,
        *,
        max_keys: int = 100_000,
        overrides: Mapping[str, Rule] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        core = core_for(rule)
        p = Problems("MemoryLimiter")
        p.int_at_least("max_keys", max_keys, 1)
        exact: dict[str, Core] = {}
        prefixes: list[tuple[str, Core]] = []
        for pattern, override in (overrides or {}).items():
            if type(override) is not type(rule):
                kind = type(rule).__name__
                p.add(f"overrides[{pattern!r}] must be a {kind} like the default rule (got {override!r})")
            elif pattern.endswith("*"):
                prefixes.append((pattern[:-1], core_for(override)))
            else:
                exact[pattern] = core_for(override)
        p.raise_if_any()
        self.rule = rule
        self.max_keys = max_keys
        self.clock = clock
        self._core = core
        self._exact = exact
        self._prefixes = tuple(sorted(prefixes, key=lambda item: len(item[0]), reverse=True))
        self._states: OrderedDict[str, State] = OrderedDict()
        self._touch = self._states.move_to_end
        self._now = clock.monotonic
        self._lock = threading.Lock()

    # -- the hot paths: one clock read, one dict lookup, one LRU touch, one uncontended lock --
    def try_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """Admit (and consume) ``cost`` units for ``key`` now, or refuse without consuming.

        Args:
            key: whose units; ``""`` is one global key.
            cost: units this call takes (integer >= 1).

        Returns:
            the :class:`Decision`; a ``cost`` above the capacity is refused with
            ``retry_after = math.inf``.

        Raises:
            ValueError: if ``cost`` is not an integer >= 1.
        """
        if type(cost) is not int or cost < 1:
            raise _bad_cost(cost)
        lock = self._lock
        # The read-modify-write spans many bytecodes, so the GIL alone does not make it atomic.
        lock.acquire()
        try:
            # Read inside the lock: states must see time in the order they are updated, or a
            # late-running thread with an older reading rolls a window back and re-opens it.
            now = self._now()
            state = self._states.get(key)
            if state is None:
                state = self._insert(key, now)
                if state is None:
                    core = self._core_for(key)
                    return make_decision(False, core.limit, 0, 0.0, 0.0, core.policy)
            else:
                self._touch(key)
            return state[0].decide(state, now, cost)  # type: ignore[no-any-return]
        finally:
            lock.release()

    def try_acquire_fast(self, key: str = "", cost: int = 1) -> bool:
        """:meth:`try_acquire` returning only whether the units were admitted.

        The same admission, the same state change; it skips building the :class:`Decision`,
        which is most of the cost of an admitted call. :class:`RateLimiter` uses it when nobody
        needs the decision, and falls back to :meth:`try_acquire` on a refusal.

        Raises:
            ValueError: if ``cost`` is not an integer >= 1.
        """
        if type(cost) is not int or cost < 1:
            raise _bad_cost(cost)
        return self._admit(key, cost)

    def _admit(self, key: str, cost: int) -> bool:
        # try_acquire_fast for callers that validated ``cost`` once, at construction.
        lock = self._lock
        lock.acquire()
        try:
            now = self._now()
            state = self._states.get(key)
            if state is None:
                state = self._insert(key, now)
                if state is None:
                    return False
            else:
                self._touch(key)
            return state[0].admit(state, now, cost)  # type: ignore[no-any-return]
        finally:
            lock.release()

    async def atry_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """:meth:`try_acquire` for asyncio code (it never waits: the state is local)."""
        return self.try_acquire(key, cost)

    def release(self, key: str = "", cost: int = 1) -> None:
        """Give back ``cost`` units of a :class:`Concurrency` rule (extra releases are ignored).

        Raises:
            TypeError: if the rule is not a :class:`Concurrency` rule.
            ValueError: if ``cost`` is not an integer >= 1.
        """
        if not isinstance(self.rule, Concurrency):
            raise TypeError(f"only a Concurrency rule has calls to release, not {self.rule!r}")
        if type(cost) is not int or cost < 1:
            raise _bad_cost(cost)
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                ConcurrencyCore.release(state[0], state, cost)

    async def arelease(self, key: str = "", cost: int = 1) -> None:
        """:meth:`release` for asyncio code."""
        self.release(key, cost)

    # -- keys and memory ------------------------------------------------------------------
    def _core_for(self, key: str) -> Core:
        core = self._exact.get(key)
        if core is not None:
            return core
        for prefix, prefixed in self._prefixes:
            if key.startswith(prefix):
                return prefixed
        return self._core

    def _insert(self, key: str, now: float) -> State | None:
        states = self._states
        for _ in range(_SWEEP_PER_INSERT):
            if not states:
                break
            oldest = next(iter(states))
            state = states[oldest]
            if not state[0].idle(state, now):
                break
            del states[oldest]
        if len(states) >= self.max_keys and not self._evict(now):
            return None
        state = self._core_for(key).new(now)
        states[key] = state
        return state

    def _evict(self, now: float) -> bool:
        states = self._states
        if not isinstance(self._core, ConcurrencyCore):
            states.popitem(last=False)
            return True
        for _ in range(min(_EVICT_SCAN, len(states))):
            oldest, state = next(iter(states.items()))
            if state[0].idle(state, now):
                del states[oldest]
                return True
            self._touch(oldest)
        return False

    def sweep(self) -> int:
        """Remove every idle key now (one at full capacity); returns how many were removed."""
        with self._lock:
            now = self._now()
            idle = [key for key, state in self._states.items() if state[0].idle(state, now)]
            for key in idle:
                del self._states[key]
            return len(idle)

    def clear(self) -> None:
        """Forget every key: each starts again with full capacity."""
        with self._lock:
            self._states.clear()

    def __len__(self) -> int:
        """How many keys hold state right now."""
        return len(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def __repr__(self) -> str:
        return f"MemoryLimiter({self.rule!r}, max_keys={self.max_keys}, keys={len(self._states)})"
