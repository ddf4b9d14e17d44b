"""Worker processes of the shared-breaker tests (importable, so ``spawn`` can start them)."""

from __future__ import annotations

import threading
import time


def grab_probes(url: str, prefix: str, threads: int, start_at: float, attempts: int) -> int:
    """Threads asking a half-open shared breaker for permits; returns how many probes they got."""
    import redis

    from buttress.errors import OpenCircuitError
    from buttress.resilience import CircuitBreaker
    from buttress.resilience.breaker.redis import RedisBreakerStore

    store = RedisBreakerStore(redis.Redis.from_url(url), prefix=prefix, timeout=2.0)
    breaker = CircuitBreaker(
        "shared", failure_threshold=3, open_duration=0.5, half_open_max_calls=3, store=store
    )
    got = [0]
    lock = threading.Lock()

    def run() -> None:
        while time.time() < start_at:
            time.sleep(0.001)
        mine = 0
        for _ in range(attempts):
            try:
                permit = breaker.acquire()
            except OpenCircuitError:
                continue
            assert permit.probe
            mine += 1  # held, never recorded: the probe stays in flight
        with lock:
            got[0] += mine

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    return got[0]


def count_failures(url: str, prefix: str, threads: int, start_at: float, calls: int) -> int:
    """Threads recording failures through a shared breaker; returns how many calls it let through."""
    import redis

    from buttress.errors import OpenCircuitError
    from buttress.resilience import CircuitBreaker
    from buttress.resilience.breaker.redis import RedisBreakerStore

    store = RedisBreakerStore(redis.Redis.from_url(url), prefix=prefix, timeout=2.0)
    breaker = CircuitBreaker("shared", failure_threshold=50, open_duration=60, store=store)
    ran = [0]
    lock = threading.Lock()

    def fail() -> None:
        with lock:
            ran[0] += 1
        raise ValueError("down")

    def run() -> None:
        while time.time() < start_at:
            time.sleep(0.001)
        for _ in range(calls):
            try:
                breaker.call(fail)
            except (ValueError, OpenCircuitError):
                pass

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    return ran[0]
