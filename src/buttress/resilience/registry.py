"""Named policies, so that telemetry, health checks and operators can find them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from buttress.resilience._policy import Policy
from buttress.resilience.breaker.adaptive import AdaptiveThrottle
from buttress.resilience.breaker.classic import CircuitBreaker
from buttress.resilience.retry import Retry

__all__ = ["Registry", "default_registry"]

P = TypeVar("P", bound=Policy)


class Registry:
    """A thread-safe map of names to policies (resilience4j's registries, one for all kinds).

    ``registry.breaker("payments", ...)`` makes the breaker on first use and returns the same
    instance afterwards. Asking again with *different* settings is an error rather than a
    silent return of the old instance; asking with no settings, or the same ones, is fine.

    Example:
        >>> registry = Registry()
        >>> a = registry.breaker("payments", failure_threshold=3)
        >>> a is registry.breaker("payments")
        True
        >>> a is registry.breaker("payments", failure_threshold=3)
        True
        >>> try:
        ...     registry.breaker("payments", failure_threshold=10)
        ... except ValueError as e:
        ...     print(e)
        policy 'payments' already exists with different settings: failure_threshold=3, not 10
    """

    __slots__ = ("_lock", "_policies")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, tuple[Policy, dict[str, Any]]] = {}

    def _get_or_create(
        self, kind: type[P], factory: Callable[..., P], name: str, settings: dict[str, Any]
    ) -> P:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a registered policy needs a non-empty name (got {name!r})")
        with self._lock:
            existing = self._policies.get(name)
            if existing is None:
                created = factory(name, **settings)
                self._policies[name] = (created, dict(settings))
                return created
        policy, original = existing
        if not isinstance(policy, kind):
            raise ValueError(f"policy {name!r} is a {type(policy).__name__}, not a {kind.__name__}")
        if settings:
            diffs = [
                f"{key}={original[key]!r}, not {value!r}"
                if key in original
                else f"{key}=<default>, not {value!r}"
                for key, value in settings.items()
                if key not in original or original[key] != value
            ]
            diffs += [f"{key}={original[key]!r}, not <default>" for key in original if key not in settings]
            if diffs:
                raise ValueError(
                    f"policy {name!r} already exists with different settings: {'; '.join(diffs)}"
                )
        return policy

    def breaker(self, name: str, **settings: Any) -> CircuitBreaker:
        """The :class:`CircuitBreaker` called ``name``, made with ``settings`` on first use."""
        return self._get_or_create(CircuitBreaker, CircuitBreaker, name, settings)

    def retry(self, name: str, **settings: Any) -> Retry:
        """The :class:`Retry` called ``name``, made with ``settings`` on first use."""
        return self._get_or_create(Retry, Retry, name, settings)

    def throttle(self, name: str, **settings: Any) -> AdaptiveThrottle:
        """The :class:`AdaptiveThrottle` called ``name``, made with ``settings`` on first use."""
        return self._get_or_create(AdaptiveThrottle, AdaptiveThrottle, name, settings)

    def register(self, policy: Policy) -> Policy:
        """Add an already built, named policy; a different policy under the same name is an error."""
        if not policy.name:
            raise ValueError(f"a registered policy needs a name ({policy!r} has none)")
        with self._lock:
            existing = self._policies.get(policy.name)
            if existing is not None and existing[0] is not policy:
                raise ValueError(f"another policy is already registered as {policy.name!r}")
            self._policies[policy.name] = (policy, {})
        return policy

    def get(self, name: str) -> Policy | None:
        """The policy called ``name``, or ``None``."""
        entry = self._policies.get(name)
        return entry[0] if entry is not None else None

    def remove(self, name: str) -> None:
        """Forget the policy called ``name`` (no error if absent)."""
        with self._lock:
            self._policies.pop(name, None)

    def __iter__(self) -> Iterator[Policy]:
        return iter([entry[0] for entry in list(self._policies.values())])

    def __len__(self) -> int:
        return len(self._policies)

    def __contains__(self, name: object) -> bool:
        return name in self._policies


default_registry = Registry()
"""A process-wide registry for applications that want one."""
