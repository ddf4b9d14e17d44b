"""A breaker store in Redis, so that many processes share one circuit breaker's state.

The whole state machine of :class:`~buttress.resilience.breaker.store.MemoryBreakerStore` runs in
one Lua script, atomically, on the server's clock: every admission, outcome and transition is
one ``EVALSHA``, so exactly ``half_open_max_calls`` probes pass across all processes, a trip
seen by one process is seen by all, and a process that joins later reads the shared state
instead of resetting it (pybreaker's Redis storage resets it on construction).

Supported: the consecutive-failure rule, the failure-rate and slow-call-rate rules over a
*count* window, ``ready_to_trip``, ``reset_interval``, a fixed ``open_duration``, half-open
probes and ``half_open_max_duration``, and the manual states. Not supported (a
``ConfigurationError`` at construction): time windows (``window_type="time"``) and an
``open_duration`` given as a Backoff.

This module imports redis-py (``pip install "buttress[redis]"``).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigurationError, OpenCircuitError
from buttress.events import EventPublisher
from buttress.resilience.breaker._model import BreakerConfig, BreakerState, Counts, Outcome, Totals
from buttress.resilience.breaker.store import (
    BreakerStore,
    MemoryBreakerStore,
    Permit,
    Rejection,
    Snapshot,
    Transition,
)
from buttress.resilience.ratelimit._events import RedisRecovered, RedisUnavailable
from buttress.resilience.ratelimit._redis_scripts import Health, OnError, load_script, validate_fault_options
from buttress.resilience.ratelimit.redis import bounded_client

__all__ = ["BreakerStoreUnavailableError", "RedisBreakerStore"]

_log = logging.getLogger("buttress.breaker")
_SCRIPT = load_script("buttress.resilience.breaker", "breaker")
_FAULTS = (RedisError, OSError)  # nothing from redis-py may escape as it is
_FAIL_OPEN = -(2**62)  # the generation of permits granted while Redis is down and failing open
_ZERO_COUNTS = Counts(0, 0, 0, 0, 0)
_ZERO_TOTALS = Totals(0, 0, 0, 0, 0)
_OUTCOME = {"success": "s", "failure": "f", "ignored": "i"}


class BreakerStoreUnavailableError(OpenCircuitError):
    """Redis could not be reached and the store's policy is ``"fail_closed"`` (or an operator
    action could not be stored). It is an :class:`~buttress.errors.OpenCircuitError`, so code
    that handles a rejected call handles it too; ``__cause__`` is the redis-py error."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _opt(value: float | int | None) -> float | int | str:
    return "" if value is None else value


class RedisBreakerStore(BreakerStore):
    """Shared state for a :class:`~buttress.resilience.CircuitBreaker`, kept in Redis.

    Give every process a breaker with the same name and configuration and a store on the same
    server and prefix; they then act as one breaker. Times (open duration, intervals) are the
    Redis server's, so the processes' clocks need not agree. The state hash and the count
    window carry a TTL (``ttl``, refreshed by every outcome): a breaker unused for that long
    starts closed again.

    When Redis fails, ``on_error`` decides within ``timeout``: ``"fail_open"`` admits calls
    (their outcomes are not counted), ``"fail_closed"`` rejects them with
    :class:`BreakerStoreUnavailableError`, ``"local"`` runs the same breaker in this process's
    memory until Redis answers again (its state is then dropped: Redis is the truth). One
    :class:`~buttress.resilience.ratelimit.redis.RedisUnavailable` event per outage and one
    ``RedisRecovered`` are emitted on :attr:`events`; Redis is tried again every
    ``retry_interval`` seconds. Each call of a breaker on this store makes two round trips
    (admission, outcome); with an asyncio breaker they block the loop for that long.

    Args:
        client: a sync ``redis.Redis`` (the store opens its own bounded pool to the same
            server, see :func:`~buttress.resilience.ratelimit.redis.bounded_client`) or a
            ``RedisCluster`` built with ``retry=Retry(NoBackoff(), 0)`` and socket timeouts.
        name: the shared breaker's key name; defaults to the breaker's name.
        prefix: the start of the key names (``{prefix}{name}`` and ``{prefix}{name}:ring``).
        on_error: ``"fail_open"``, ``"fail_closed"`` or ``"local"``.
        timeout: seconds one store operation may wait for Redis.
        retry_interval: seconds to leave Redis alone after a fault.
        ttl: seconds an unused breaker's keys live (longer than ``open_duration``).
        clock: the time source of the fault policy and of the ``"local"`` breaker.

    Raises:
        ConfigurationError: listing every invalid argument; at the breaker's construction, for
            a configuration the Lua machine does not support, or a breaker without a name.

    Example (not run here: it needs a server)::

        store = RedisBreakerStore(redis.Redis(), on_error="local")
        breaker = CircuitBreaker("payments", failure_threshold=5, store=store)
    """

    def __init__(
        self,
        client: Any,
        *,
        name: str | None = None,
        prefix: str = "buttress:cb:",
        on_error: OnError = "fail_open",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        ttl: float = 86_400.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        validate_fault_options("RedisBreakerStore", on_error, timeout, retry_interval)
        self.name = name
        self.prefix = prefix
        self.on_error = on_error
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.ttl = ttl
        self.events = EventPublisher()
        self._now = clock.monotonic
        self._health = Health(self.retry_interval)
        self._client, self._owns_client = bounded_client(client, self.timeout)
        self._local = MemoryBreakerStore()
        self.fast = None

    # -- set-up -------------------------------------------------------------------------
    def bind(self, config: BreakerConfig) -> None:
        """Check that the Lua machine supports ``config``; nothing is written (joining keeps state)."""
        name = self.name if self.name is not None else config.name
        problems = []
        if not name:
            problems.append("a shared breaker needs a name: name the CircuitBreaker or pass name=")
        if config.uses_window and config.window_type != "count":
            problems.append("window_type='time' is not supported on Redis; use a count window")
        if config.open_backoff is not None:
            problems.append("open_duration as a Backoff is not supported on Redis; give seconds")
        longest = max(
            config.open_duration, config.half_open_max_duration or 0.0, config.reset_interval or 0.0
        )
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int | float) or not self.ttl > longest:
            problems.append(f"ttl must be a number of seconds > {longest:g} (got {self.ttl!r})")
        if problems:
            raise ConfigurationError("RedisBreakerStore", problems)
        self.name = name
        self._config = config
        base = f"{self.prefix}{{{name}}}"
        self._keys = (base, base + ":ring")
        self._argv = (
            _opt(config.failure_threshold),
            _opt(config.failure_rate_threshold),
            _opt(config.slow_call_rate_threshold),
            _opt(int(config.window_size) if config.uses_window else None),
            config.minimum_calls,
            _opt(config.reset_interval),
            config.open_duration,
            config.half_open_max_calls,
            config.half_open_success_threshold,
            _opt(config.half_open_max_duration),
            max(1, round(self.ttl * 1000)),
        )
        self._local.bind(config)

    # -- Redis ----------------------------------------------------------------------------
    def _run(self, op: str, *args: Any) -> list[Any] | None:
        """One ``EVALSHA`` of the machine; ``None`` after a fault (recorded, event emitted)."""
        health = self._health
        if health.down_since is not None and self._now() < health.retry_at:
            return None
        client = self._client
        keys = self._keys
        try:
            try:
                raw = client.execute_command("EVALSHA", _SCRIPT.sha, 2, *keys, op, "", *self._argv, *args)
            except NoScriptError:
                client.script_load(_SCRIPT.source)
                raw = client.execute_command("EVALSHA", _SCRIPT.sha, 2, *keys, op, "", *self._argv, *args)
        except _FAULTS as exc:
            if health.fail(exc, self._now()):
                _log.warning(
                    "breaker store %r: Redis unavailable (%r); applying %s", self.name, exc, self.on_error
                )
                if self.events.listeners:
                    self.events.emit(RedisUnavailable(self.name or "", exc, self.on_error))
            return None
        if health.down_since is not None:
            downtime = health.recover(self._now())
            if downtime is not None:
                _log.info("breaker store %r: Redis answers again after %.3gs", self.name, downtime)
                if self.events.listeners:
                    self.events.emit(RedisRecovered(self.name or "", downtime))
        return list(raw)

    def _transition(self, raw: list[Any], reason: str = "") -> Transition | None:
        old = _text(raw[4])
        if not old:
            return None
        code = _text(raw[6])
        number = _text(raw[7])
        config = self._config
        if code == "elapsed":
            text = "open duration elapsed"
        elif code == "half_open_timeout":
            text = f"half-open probes did not finish within {config.half_open_max_duration:g}s"
        elif code == "consecutive":
            text = f"{number} consecutive failures"
        elif code in ("rate", "slow"):
            count, calls = (int(part) for part in number.split(":"))
            kind = "failure" if code == "rate" else "slow-call"
            text = f"{kind} rate {count / calls:.0%} over the last {calls} calls"
        elif code == "probe_failed":
            text = f"{number} half-open probe(s) failed"
        elif code == "probe_ok":
            text = f"{number} half-open probe(s) succeeded"
        else:
            text = reason
        return Transition(BreakerState(old), BreakerState(_text(raw[5])), text)

    def _unavailable(self, action: str) -> BreakerStoreUnavailableError:
        health = self._health
        retry_after = max(0.0, health.retry_at - self._now())
        error = BreakerStoreUnavailableError(
            f"circuit breaker {self.name!r}: Redis is unavailable, cannot {action}",
            policy=self.name,
            retry_after=retry_after,
            state="unavailable",
        )
        error.__cause__ = health.last_error
        return error

    # -- the machine --------------------------------------------------------------------
    def acquire(self, now: float) -> tuple[Permit | Rejection, Transition | None]:
        """Admit a call, a probe while half-open slots remain across all processes, or reject."""
        raw = self._run("acquire")
        if raw is None:
            if self.on_error == "local":
                permit, transition = self._local.acquire(now)
                if isinstance(permit, Permit):
                    permit = Permit(-1 - permit.generation, permit.probe)
                return permit, transition
            if self.on_error == "fail_closed":
                raise self._unavailable("admit the call")
            return Permit(_FAIL_OPEN, False), None
        transition = self._transition(raw)
        kind = int(raw[2])
        if kind:
            return Permit(int(raw[1]), kind == 2), transition
        retry = _text(raw[3])
        return Rejection(BreakerState(_text(raw[0])), float(retry) if retry else None), transition

    def record(
        self, permit: Permit, outcome: Outcome, slow: bool, now: float
    ) -> tuple[Transition | None, Counts | None]:
        """Count the outcome in the shared state (an outcome Redis cannot take is dropped)."""
        generation = permit.generation
        if generation < 0:
            if generation == _FAIL_OPEN:
                return None, None
            local = Permit(-1 - generation, permit.probe)
            return self._local.record(local, outcome, slow, now)
        raw = self._run("record", generation, int(permit.probe), _OUTCOME[outcome], int(slow))
        if raw is None:
            return None, None
        counts = None
        if len(raw) > 8 and self._config.ready_to_trip is not None:
            counts = Counts(*(int(v) for v in raw[8:13]))
        return self._transition(raw), counts

    def trip_if(self, generation: int, now: float, reason: str) -> Transition | None:
        """Open if still closed in ``generation`` (after ``ready_to_trip`` said so)."""
        if generation < 0:
            return None if generation == _FAIL_OPEN else self._local.trip_if(-1 - generation, now, reason)
        raw = self._run("trip_if", generation)
        return None if raw is None else self._transition(raw, reason)

    def snapshot(self, now: float) -> tuple[Snapshot, Transition | None]:
        """The shared state; while Redis is down: the local breaker's (``"local"``), or closed
        (``"fail_open"``) / open (``"fail_closed"``) with zero counts."""
        raw = self._run("snapshot")
        if raw is None:
            if self.on_error == "local":
                return self._local.snapshot(now)
            state = BreakerState.CLOSED if self.on_error == "fail_open" else BreakerState.OPEN
            retry_after = (
                0.0 if state is BreakerState.CLOSED else max(0.0, self._health.retry_at - self._now())
            )
            return Snapshot(state, _ZERO_COUNTS, _ZERO_TOTALS, retry_after), None
        values = [int(v) for v in raw[8:18]]
        retry = _text(raw[3])
        snapshot = Snapshot(
            BreakerState(_text(raw[0])),
            Counts(*values[:5]),
            Totals(*values[5:]),
            float(retry) if retry else 0.0,
        )
        return snapshot, self._transition(raw)

    def force(self, state: BreakerState, now: float, reason: str) -> Transition | None:
        """Operator transition, stored for every process.

        Raises:
            ValueError: for a transition the table does not allow.
            BreakerStoreUnavailableError: when Redis cannot store it.
        """
        raw = self._run("force", state.value)
        if raw is None:
            if self.on_error == "local":
                self._local.force(state, now, reason)
            raise self._unavailable(f"force it {state.value.replace('_', ' ')}")
        if int(raw[2]) == -1:
            raise ValueError(f"cannot move a breaker from {_text(raw[0])} to {state} by hand")
        return self._transition(raw, reason)

    def close(self) -> None:
        """Close the connections the store opened (a client passed as it is stays open)."""
        if self._owns_client:
            self._client.connection_pool.disconnect()
