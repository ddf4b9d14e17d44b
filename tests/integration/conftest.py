"""Fixtures of the Redis integration tests: throwaway servers and a throwaway cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration._servers import Throwaway, cluster, throwaway


@pytest.fixture
def server() -> Iterator[Throwaway]:
    """A throwaway redis-server this test may pause, kill and restart."""
    with throwaway() as found:
        yield found


@pytest.fixture(scope="session")
def cluster_ports() -> Iterator[list[int]]:
    """A throwaway 3-node Redis Cluster for the session (skipped, or failed in CI, if it cannot be built)."""
    with cluster() as ports:
        yield ports


@pytest.fixture
def cluster_client(cluster_ports: list[int]) -> Iterator[Any]:
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry

    client = RedisCluster(
        host="127.0.0.1", port=cluster_ports[0], retry=Retry(NoBackoff(), 0), socket_timeout=2
    )
    yield client
    client.close()
