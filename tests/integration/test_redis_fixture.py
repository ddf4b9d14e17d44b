"""The Redis test infrastructure itself: a real server, isolated by key prefix."""

from __future__ import annotations

from typing import Any


def test_redis_is_real_and_prefixed(redis_client: Any, redis_prefix: str) -> None:
    key = f"{redis_prefix}greeting"
    assert redis_client.set(key, "hello", ex=60)
    assert redis_client.get(key) == b"hello"
    assert redis_client.ttl(key) > 0
    # The server keeps time; later Lua-based limiters rely on TIME.
    seconds, micros = redis_client.time()
    assert seconds > 1_600_000_000 and 0 <= micros < 1_000_000


def test_each_test_gets_its_own_prefix(redis_prefix: str) -> None:
    assert redis_prefix.startswith("buttress-test:") and redis_prefix.endswith(":")
