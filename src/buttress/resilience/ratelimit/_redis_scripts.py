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
from typing import Any, Literal

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

__all__ = ["OnError", "Plan", "Script", "load_script", "plan_for", "rule_script", "validate_fault_options"]

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


# What every rule script starts with: the cost, the time (the server's unless a test pins it
# with a second argument) and the rule's constants, spliced in as Lua literals.
_PRELUDE = """local {names} = {values}
local cost = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = t[1] + t[2] / 1000000
end
"""


def rule_script(name: str, constants: tuple[tuple[str, float | int], ...]) -> Script:
    """The rule script ``lua/<name>.lua`` after a prelude that sets ``cost``, ``now`` and the
    rule's constants.

    ``rule_script("fixed_window", (("limit", 100), ("window", 60.0)))`` starts with
    ``local limit, window = 100, 60.0``: a literal costs the script nothing per call, where an
    ``ARGV`` entry costs a ``tonumber`` on the server and an argument to send and parse. Each
    distinct rule is one script in the server's cache (a service has a handful).
    """
    key = (name, repr(constants))
    found = _rule_cache.get(key)
    if found is None:
        body = load_script("buttress.resilience.ratelimit", name).source
        # repr() of an int or a finite float is a Lua literal that reads back exactly
        prelude = _PRELUDE.format(
            names=", ".join(n for n, _ in constants), values=", ".join(repr(v) for _, v in constants)
        )
        source = prelude + body
        found = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
        _rule_cache[key] = found
    return found


_rule_cache: dict[tuple[str, str], Script] = {}


@dataclass(frozen=True, slots=True)
class Plan:
    """How one rule becomes one ``EVALSHA``: the script (with the rule's constants in it) and
    the key names.

    The call is ``EVALSHA sha nkeys key... cost`` (the script reads the server's ``TIME``);
    the concurrency script takes ``cost "" lease_id...``. Tests pin the time by passing it as
    the second argument.
    """

    script: Script
    kind: str
    extra_keys: tuple[str, ...]
    limit: int
    policy: str
    name: str
    leases: bool
    """Whether an admission takes lease ids (the concurrency rule)."""
    head: tuple[str | int, ...]
    """``("EVALSHA", sha, nkeys)``."""

    def keys(self, prefix: str, key: str) -> tuple[str, ...]:
        """The Redis keys of one limited key; all share the hash tag ``{name:key}``.

        The tag keeps every key of one decision in one cluster slot, and is never empty (an
        empty tag would make Redis hash each full name separately).
        """
        base = f"{prefix}{{{self.name}:{key}}}:{self.kind}"
        if self.extra_keys:
            return (base, *(base + suffix for suffix in self.extra_keys))
        return (base,)

    def command(self, prefix: str, key: str, cost: int, ids: tuple[str, ...] = ()) -> tuple[Any, ...]:
        """The whole ``EVALSHA`` command of one decision on the server's clock."""
        base = f"{prefix}{{{self.name}:{key}}}:{self.kind}"
        if self.leases:
            return (*self.head, base, cost, "", *ids)
        if self.extra_keys:
            return (*self.head, base, *(base + s for s in self.extra_keys), cost)
        return (*self.head, base, cost)


def plan_for(rule: Rule) -> Plan:
    """The plan for ``rule``.

    Raises:
        TypeError: if ``rule`` is not a rate-limit rule.
    """
    constants: tuple[tuple[str, float | int], ...]
    if isinstance(rule, TokenBucket):
        script, kind = "token_bucket", "tb"
        constants = (("rate", float(rule.rate)), ("burst", float(rule.burst)))
    elif isinstance(rule, GCRA):
        interval = rule.emission_interval
        script, kind = "gcra", "gcra"
        constants = (("T", interval), ("tau", interval * rule.capacity), ("burst", rule.capacity))
    elif isinstance(rule, FixedWindow):
        script, kind = "fixed_window", "fw"
        constants = (("limit", rule.limit), ("window", float(rule.window)))
    elif isinstance(rule, SlidingWindowLog):
        script, kind = "sliding_log", "swl"
        constants = (("limit", rule.limit), ("window", float(rule.window)))
    elif isinstance(rule, SlidingWindowCounter):
        script, kind = "sliding_counter", "swc"
        constants = (("limit", rule.limit), ("window", float(rule.window)))
    elif isinstance(rule, Concurrency):
        script, kind = "concurrency_acquire", "cc"
        constants = (("limit", rule.limit), ("lease", float(rule.lease)))
    else:
        raise TypeError(f"not a rate-limit rule: {rule!r}")
    extra = (":seq",) if kind == "swl" else ()
    found = rule_script(script, constants)
    head = ("EVALSHA", found.sha, 1 + len(extra))
    return Plan(found, kind, extra, rule.capacity, rule.policy_header(), rule.name, kind == "cc", head)


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
