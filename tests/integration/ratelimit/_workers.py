"""Worker processes for the contention tests (importable, so ``spawn`` can start them)."""

from __future__ import annotations

import threading
import time
from typing import Any


def hammer(
    url: str, rule: Any, prefix: str, seconds: float, threads: int, start_at: float
) -> tuple[int, int, int]:
    """``threads`` threads acquiring one key as fast as they can; returns (admitted, refused, faults)."""
    import redis

    from buttress.resilience.ratelimit.redis import RedisLimiter

    limiter = RedisLimiter(
        rule, redis.Redis.from_url(url), prefix=prefix, on_error="fail_closed", timeout=2.0
    )
    counts = [0, 0, 0]
    lock = threading.Lock()

    def run() -> None:
        admitted = refused = faults = 0
        deadline = start_at + seconds
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < deadline:
            try:
                if limiter.try_acquire("shared").allowed:
                    admitted += 1
                else:
                    refused += 1
            except Exception:
                faults += 1
        with lock:
            counts[0] += admitted
            counts[1] += refused
            counts[2] += faults

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    limiter.close()
    return counts[0], counts[1], counts[2]
