"""The registry of named policies."""

from __future__ import annotations

import threading

import pytest

from buttress.resilience import AdaptiveThrottle, CircuitBreaker, Registry, Retry, default_registry


def test_same_name_same_instance() -> None:
    registry = Registry()
    breaker = registry.breaker("payments", failure_threshold=3)
    assert registry.breaker("payments") is breaker
    assert registry.breaker("payments", failure_threshold=3) is breaker
    assert breaker.name == "payments" and breaker.config.failure_threshold == 3
    assert "payments" in registry and len(registry) == 1
    assert list(registry) == [breaker] and registry.get("payments") is breaker


def test_conflicting_settings_are_an_error() -> None:
    registry = Registry()
    registry.retry("db", attempts=5)
    with pytest.raises(ValueError, match="attempts=5, not 2"):
        registry.retry("db", attempts=2)
    with pytest.raises(ValueError, match="timeout=<default>, not 3"):
        registry.retry("db", attempts=5, timeout=3)
    with pytest.raises(ValueError, match="is a Retry, not a CircuitBreaker"):
        registry.breaker("db")


def test_kinds_and_registration() -> None:
    registry = Registry()
    assert isinstance(registry.throttle("search"), AdaptiveThrottle)
    assert isinstance(registry.retry("r"), Retry)
    mine = CircuitBreaker("manual")
    assert registry.register(mine) is mine
    assert registry.register(mine) is mine
    with pytest.raises(ValueError, match="already registered"):
        registry.register(CircuitBreaker("manual"))
    with pytest.raises(ValueError, match="needs a name"):
        registry.register(CircuitBreaker())
    with pytest.raises(ValueError, match="non-empty name"):
        registry.breaker("")
    registry.remove("manual")
    registry.remove("never-there")
    assert registry.get("manual") is None


def test_concurrent_first_use_makes_one_instance() -> None:
    registry = Registry()
    seen: list[CircuitBreaker] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        seen.append(registry.breaker("shared", failure_threshold=4))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in seen}) == 1


def test_default_registry_exists() -> None:
    assert isinstance(default_registry, Registry)
