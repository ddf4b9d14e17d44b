"""The in-memory limiter: per-key state in this process, with bounded memory."""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

from buttress._validation import Problems
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.resilience.ratelimit._algorithms import (
    ConcurrencyCore,
    Core,
    FixedWindowCore,
    GCRACore,
    State,
    TokenBucketCore,
    core_for,
)
from buttress.resilience.ratelimit._decision import Decision, make_decision
from buttress.resilience.ratelimit._rules import TOLERANCE, Concurrency, Rule

__all__ = ["MemoryLimiter"]

# Idle keys removed from the least-recently-used end per new key: enough to keep pace with
# any flood of new keys, few enough that inserting stays O(1).
_SWEEP_PER_INSERT = 2
# How far a Concurrency limiter looks past busy keys (calls in flight) for one to evict.
_EVICT_SCAN = 16

Admit = Callable[[str, int], bool]
# Whether a thread switch can only happen at a call or a backward jump (see _admitter).
_GIL: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
_floor = math.floor


def _retire(state: State) -> None:
    """Make a state removed from the map refuse every lock-free admission.

    A lock-free caller may hold the state it fetched just before the removal; what it admitted
    there would be lost (the key starts again from a fresh state). Poisoned, the state refuses,
    and the refusal decides again under the lock on the key's current state.
    """
    core = state[0]
    if isinstance(core, TokenBucketCore):
        state[1] = math.nan  # no refill brings NaN tokens up to any cost
    elif isinstance(core, GCRACore):
        state[1] = math.inf  # a theoretical arrival time never reached
    elif isinstance(core, FixedWindowCore):
        state[1] = state[2] = math.inf  # a window never left, counted full


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
        "_admit",
        "_core",
        "_exact",
        "_last",
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
        # The most recently used key, always the last of ``_states`` while it is present:
        # touching it again would not change the order, so the hot path skips ``move_to_end``.
        self._last: str | None = None
        self._admit: Admit = self._admitter()

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
            elif key != self._last:
                self._last = key
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

    def _admitter(self) -> Admit:
        """The admission of :meth:`try_acquire_fast` for callers that validated ``cost`` once.

        Built once. Without overrides every key has the default core, and the admission of
        token bucket, GCRA and fixed window is inlined here without the lock: after the last
        call (the clock reading) their read-modify-write has no call and no backward jump, so
        under the GIL no other thread runs in between and it is atomic. A reading taken before
        a switch is older than another thread's update; the bucket and the window never move
        back for it (GCRA's arithmetic is already safe: it only makes the check stricter). A
        state removed from the map is retired (made to refuse everything, see :func:`_retire`), so
        a call that took it just before the removal is refused, and every refusal decides again
        under the lock on the current state. Every other case (overrides, the other algorithms,
        a new key, a build without the GIL) takes the lock, clock reading included.
        """
        acquire = self._lock.acquire
        release = self._lock.release
        now_fn = self._now
        get = self._states.get
        touch = self._touch
        insert = self._insert
        limiter = self

        def locked(key: str, cost: int) -> bool:
            acquire()
            try:
                now = now_fn()
                state = get(key)
                if state is None:
                    state = insert(key, now)
                    if state is None:
                        return False
                elif key != limiter._last:
                    limiter._last = key
                    touch(key)
                return state[0].admit(state, now, cost)  # type: ignore[no-any-return]
            finally:
                release()

        core = self._core
        if self._exact or self._prefixes or not _GIL:
            return locked
        if isinstance(core, TokenBucketCore):
            rate = core.rate
            burst = core.burst

            def token_bucket(key: str, cost: int) -> bool:
                state = get(key)
                if state is None:
                    return locked(key, cost)
                if key != limiter._last:
                    limiter._last = key
                    touch(key)
                now = now_fn()
                # atomic from here under the GIL: no call until the check below
                last = state[2]
                if now < last:
                    now = last
                tokens = state[1] + (now - last) * rate
                if tokens > burst:
                    tokens = burst
                state[2] = now
                if tokens + TOLERANCE >= cost:
                    tokens -= cost
                    state[1] = tokens if tokens > 0.0 else 0.0
                    admitted = True
                else:
                    state[1] = tokens
                    admitted = False
                # a refusal decides again under the lock: it may come from a retired state
                return admitted or locked(key, cost)

            return token_bucket
        if isinstance(core, GCRACore):
            interval = core.interval
            tau = core.tau + TOLERANCE

            def gcra(key: str, cost: int) -> bool:
                state = get(key)
                if state is None:
                    return locked(key, cost)
                if key != limiter._last:
                    limiter._last = key
                    touch(key)
                now = now_fn()
                # atomic from here under the GIL: no call until the check below
                tat = state[1]
                if tat < now:
                    tat = now
                new_tat = tat + interval * cost
                admitted: bool = new_tat - now <= tau
                if admitted:
                    state[1] = new_tat
                # a refusal decides again under the lock: it may come from a retired state
                return admitted or locked(key, cost)

            return gcra
        if isinstance(core, FixedWindowCore):
            window = core.window
            limit = core.limit

            def fixed_window(key: str, cost: int) -> bool:
                state = get(key)
                if state is None:
                    return locked(key, cost)
                if key != limiter._last:
                    limiter._last = key
                    touch(key)
                index = _floor(now_fn() / window)
                # atomic from here under the GIL: no call until the check below
                if index > state[1]:
                    state[1] = index
                    state[2] = 0
                count = state[2] + cost
                admitted: bool = count <= limit
                if admitted:
                    state[2] = count
                # a refusal decides again under the lock: it may come from a retired state
                return admitted or locked(key, cost)

            return fixed_window
        return locked

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
            if not state[0].idle(state, now):
                # a lock-free admission landed between the check and the removal: keep it
                states[oldest] = state
                break
            _retire(state)
        if len(states) >= self.max_keys and not self._evict(now):
            return None
        state = self._core_for(key).new(now)
        states[key] = state
        self._last = key
        return state

    def _evict(self, now: float) -> bool:
        states = self._states
        if not isinstance(self._core, ConcurrencyCore):
            _retire(states.popitem(last=False)[1])
            return True
        for _ in range(min(_EVICT_SCAN, len(states))):
            oldest, state = next(iter(states.items()))
            if state[0].idle(state, now):
                del states[oldest]
                return True
            self._last = oldest
            self._touch(oldest)
        return False

    def sweep(self) -> int:
        """Remove every idle key now (one at full capacity); returns how many were removed."""
        with self._lock:
            now = self._now()
            states = self._states
            idle = [(key, state) for key, state in states.items() if state[0].idle(state, now)]
            removed = 0
            for key, state in idle:
                if states.get(key) is state:
                    del states[key]
                    if state[0].idle(state, now):
                        _retire(state)
                        removed += 1
                    else:  # a lock-free admission landed since the check: keep it
                        states[key] = state
            return removed

    def clear(self) -> None:
        """Forget every key: each starts again with full capacity."""
        with self._lock:
            for state in self._states.values():
                _retire(state)
            self._states.clear()

    def __len__(self) -> int:
        """How many keys hold state right now."""
        return len(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def __repr__(self) -> str:
        return f"MemoryLimiter({self.rule!r}, max_keys={self.max_keys}, keys={len(self._states)})"
