"""2 processes x 4 threads on one Redis key: never more than the bound, and no spurious refusals."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from typing import Any

import pytest

from buttress.resilience.ratelimit import GCRA, FixedWindow, Rule, SlidingWindowLog, TokenBucket
from tests.integration.ratelimit._workers import hammer

pytest.importorskip("redis")
pytestmark = [pytest.mark.redis, pytest.mark.slow]

SECONDS = 2.0


def _run(url: str, rule: Rule, prefix: str) -> tuple[int, int, int]:
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 1.5  # both processes begin together, after their imports
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [pool.submit(hammer, url, rule, prefix, SECONDS, 4, start_at) for _ in range(2)]
        results = [f.result(timeout=60) for f in futures]
    return (sum(r[0] for r in results), sum(r[1] for r in results), sum(r[2] for r in results))


# A window far longer than the test: exactly `limit` units may ever be admitted.
@pytest.mark.parametrize(
    "rule",
    [FixedWindow(limit=1000, window=1e7), SlidingWindowLog(limit=1000, window=1e7),
     GCRA(limit=1000, period=1e7), TokenBucket(rate=1e-6, burst=1000)],
    ids=lambda r: type(r).__name__,
)  # fmt: skip
def test_exact_algorithms_admit_exactly_their_bound(redis_server: Any, redis_prefix: str, rule: Rule) -> None:
    admitted, refused, faults = _run(redis_server.url, rule, redis_prefix)
    assert faults == 0
    assert admitted == 1000, (admitted, refused)
    assert refused > 0


def test_a_refilling_bucket_admits_its_rate_and_no_more(
    redis_server: Any, redis_client: Any, redis_prefix: str
) -> None:
    rate, burst = 300.0, 50
    seconds, micros = redis_client.time()
    before = seconds + micros / 1e6
    admitted, refused, faults = _run(redis_server.url, TokenBucket(rate=rate, burst=burst), redis_prefix)
    seconds, micros = redis_client.time()
    elapsed = seconds + micros / 1e6 - before  # an upper bound of the hammering time, on the server's clock
    assert faults == 0
    assert admitted <= burst + rate * elapsed + 1
    # contention must not turn into refusals: at least the rate over the hammering time
    assert admitted >= rate * SECONDS * 0.95, (admitted, refused)
