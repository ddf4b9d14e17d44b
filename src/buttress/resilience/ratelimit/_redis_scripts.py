"""The Redis side of the limiters: Lua scripts, key names, and the health of the connection.

Nothing here imports redis-py: the scripts are plain text shipped as package data, a *plan* turns
a rule into the arguments of one ``EVALSHA``, and :class:`Health` keeps the fault policy's
bookkeeping (when Redis failed, when to try it again) for the rate limiters and the breaker
store alike.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from buttress._validation import Problems
from buttress.resilience.ratelimit._rules import (
    GCRA,
    Concurrency,
    FixedWindow,
    Rule,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)

__all__ = ["OnError", "Plan", "Script", "load_script", "plan_for", "validate_fault_options"]

OnError = Literal["fail_open", "fail_closed", "local"]
"""What a Redis-backed policy does while Redis is unreachable or slower than its timeout."""

_ON_ERROR = ("fail_open", "fail_closed", "local")


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, run with ``EVALSHA`` and loaded on ``NOSCRIPT``."""

    name: str
    source: str
    sha: str


_cache: dict[tuple[str, str], Script] = {}


def load_script(package: str, name: str) -> Script:
    """The script ``lua/<name>.lua`` of ``package`` (read once per process)."""
    found = _cache.get((package, name))
    if found is None:
        source = resources.files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
        found = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
        _cache[(package, name)] = found
    return found


def _script(name: str) -> Script:
    return load_script("buttress.resilience.ratelimit", name)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one rule becomes one ``EVALSHA``: the script, the key names and the fixed arguments
    (``params``, already encoded).

    The call is ``EVALSHA sha nkeys key... now cost *params`` where ``now`` is ``""`` (the
    script reads the server's ``TIME``) except in tests that pin the time.
    """

    script: Script
    kind: str
    params: tuple[bytes, ...]
    extra_keys: tuple[str, ...]
    limit: int
    policy: str
    name: str

    def keys(self, prefix: str, key: str) -> tuple[str, ...]:
        """The Redis keys of one limited key; all share the hash tag ``{name:key}``.

        The tag keeps every key of one decision in one cluster slot, and is never empty (an
        empty tag would make Redis hash each full name separately).
        """
        base = f"{prefix}{{{self.name}:{key}}}:{self.kind}"
        if self.extra_keys:
            return (base, *(base + suffix for suffix in self.extra_keys))
        return (base,)


def plan_for(rule: Rule) -> Plan:
    """The plan for ``rule``.

    Raises:
        TypeError: if ``rule`` is not a rate-limit rule.
    """
    params: tuple[float | int, ...]
    if isinstance(rule, TokenBucket):
        script, kind, params = "token_bucket", "tb", (float(rule.rate), float(rule.burst))
    elif isinstance(rule, GCRA):
        interval = rule.emission_interval
        script, kind, params = "gcra", "gcra", (interval, interval * rule.capacity, rule.capacity)
    elif isinstance(rule, FixedWindow):
        script, kind, params = "fixed_window", "fw", (rule.limit, float(rule.window))
    elif isinstance(rule, SlidingWindowLog):
        script, kind, params = "sliding_log", "swl", (rule.limit, float(rule.window))
    elif isinstance(rule, SlidingWindowCounter):
        script, kind, params = "sliding_counter", "swc", (rule.limit, float(rule.window))
    elif isinstance(rule, Concurrency):
        script, kind, params = "concurrency_acquire", "cc", (rule.limit, float(rule.lease))
    else:
        raise TypeError(f"not a rate-limit rule: {rule!r}")
    extra = (":seq",) if kind == "swl" else ()
    # encoded once: redis-py passes bytes through, where it would format numbers on every call
    encoded = tuple(repr(v).encode() for v in params)
    return Plan(_script(script), kind, encoded, extra, rule.capacity, rule.policy_header(), rule.name)


def validate_fault_options(owner: str, on_error: object, timeout: object, retry_interval: object) -> None:
    """Check the fault-policy arguments shared by every Redis-backed policy (all problems at once)."""
    p = Problems(owner)
    if on_error not in _ON_ERROR:
        p.add(f"on_error must be one of {', '.join(map(repr, _ON_ERROR))} (got {on_error!r})")
    p.positive("timeout", timeout, allow_inf=False)
    p.non_negative("retry_interval", retry_interval, allow_inf=False)
    p.raise_if_any()


class Health:
    """Whether Redis answered lately, and when to try it again after it did not.

    After a fault, Redis is left alone for ``retry_interval`` seconds (callers get the fault
    policy at once instead of each waiting out the timeout); the first call after that tries
    Redis again, and its success is the recovery. Updates are single attribute stores, safe
    under the GIL from many threads; a race can at worst send one extra call to Redis.
    """

    __slots__ = ("down_since", "last_error", "retry_at", "retry_interval")

    def __init__(self, retry_interval: float) -> None:
        self.retry_interval = retry_interval
        self.down_since: float | None = None
        self.retry_at = -math.inf
        self.last_error: BaseException | None = None

    def fail(self, error: BaseException, now: float) -> bool:
        """Record a fault at ``now``; true when Redis was considered up until now."""
        self.last_error = error
        self.retry_at = now + self.retry_interval
        if self.down_since is None:
            self.down_since = now
            return True
        return False

    def recover(self, now: float) -> float | None:
        """Record a success; the downtime in seconds when Redis was considered down."""
        since = self.down_since
        if since is None:
            return None
        self.down_since = None
        self.retry_at = -math.inf
        self.last_error = None
        return max(0.0, now - since)
