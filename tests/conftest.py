"""Shared fixtures: a fake clock, and real services (Redis) found or started for the test run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from buttress.testing import FakeClock

# Our own pytest plugin is disabled as an entry point in pyproject (it would import buttress
# before coverage starts) and loaded here instead.
pytest_plugins = ["buttress.testing.pytest_plugin"]

REQUIRE_SERVICES = os.environ.get("BUTTRESS_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when CI demands that every service-backed test runs."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable (BUTTRESS_REQUIRE_SERVICES is set): {reason}")
    pytest.skip(reason)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock at monotonic time 0."""
    return FakeClock()


@dataclass
class RedisServer:
    """Where the test Redis is, and whether this test run started it."""

    url: str
    host: str
    port: int
    process: subprocess.Popen[bytes] | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)  # polling a starting server; bounded by the deadline
    return False


def start_redis_server(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start a throwaway ``redis-server`` on a free loopback port (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not _wait_for_port("127.0.0.1", port, 10.0):
        process.kill()
        raise RuntimeError(f"redis-server did not listen on port {port} within 10 s")
    return process, port


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis: ``REDIS_URL`` if set, else a throwaway ``redis-server``, else skip (or fail in CI)."""
    url = os.environ.get("REDIS_URL")
    if url:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        yield RedisServer(url, parsed.hostname or "127.0.0.1", parsed.port or 6379, None)
        return
    try:
        with tempfile.TemporaryDirectory(prefix="buttress-redis-") as directory:
            process, port = start_redis_server(directory)
            try:
                yield RedisServer(f"redis://127.0.0.1:{port}/0", "127.0.0.1", port, process)
            finally:
                process.terminate()
                process.wait(timeout=10)
    except FileNotFoundError as exc:
        unavailable(f"no Redis: REDIS_URL is not set and {exc}")


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test; keys under it are deleted afterwards."""
    return f"buttress-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_server: RedisServer, redis_prefix: str) -> Iterator[Any]:
    """A sync redis-py client; deletes only the keys under this test's prefix when done."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2, retry=None)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        unavailable(f"Redis at {redis_server.url} does not answer: {exc}")
    yield client
    for key in client.scan_iter(match=f"{redis_prefix}*"):
        client.delete(key)
    client.close()
