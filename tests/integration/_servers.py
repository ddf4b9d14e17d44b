"""Throwaway Redis servers for the Redis-backend tests: one to stop and restart, and a cluster."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import unavailable


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port; with ``cluster_bus``, one whose bus port (+10000) is free too."""
    if not cluster_bus:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(200):
        port = random.randint(20_000, 50_000)
        if _is_free(port) and _is_free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)  # polling a starting server, bounded by the deadline
    return False


class Throwaway:
    """A ``redis-server`` on a fixed loopback port that a test may pause, kill and restart."""

    def __init__(self, directory: str, *extra: str, cluster_bus: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.binary = str(binary)
        self.directory = directory
        self.extra = extra
        self.port = free_port(cluster_bus)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self.directory, *self.extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not _wait(self.port):
            self.process.kill()
            unavailable(f"redis-server did not start on port {self.port}")

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        self.start()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def throwaway() -> Iterator[Throwaway]:
    with tempfile.TemporaryDirectory(prefix="buttress-redis-") as directory:
        server = Throwaway(directory)
        try:
            yield server
        finally:
            server.close()


@contextmanager
def cluster(nodes: int = 3) -> Iterator[list[int]]:
    """A throwaway Redis Cluster of ``nodes`` primaries on free ports; yields the ports."""
    cli = shutil.which("redis-cli")
    if cli is None or shutil.which("redis-server") is None:
        unavailable("redis-server / redis-cli are not installed: cannot build a Redis Cluster")
    with tempfile.TemporaryDirectory(prefix="buttress-cluster-") as directory:
        servers: list[Throwaway] = []
        try:
            for i in range(nodes):
                node_dir = os.path.join(directory, str(i))
                os.mkdir(node_dir)
                config = os.path.join(node_dir, "nodes.conf")
                options = ("--cluster-enabled", "yes", "--cluster-config-file", config,
                           "--cluster-node-timeout", "2000")  # fmt: skip
                servers.append(Throwaway(node_dir, *options, cluster_bus=True))
            addresses = [f"127.0.0.1:{s.port}" for s in servers]
            created = subprocess.run(
                [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            if created.returncode != 0:
                unavailable(f"redis-cli --cluster create failed: {created.stdout[-300:]!r}")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                infos = [
                    subprocess.run(
                        [str(cli), "-p", str(s.port), "cluster", "info"], capture_output=True, check=False
                    )
                    for s in servers
                ]
                if all(b"cluster_state:ok" in info.stdout for info in infos):
                    break
                time.sleep(0.05)  # waiting for the cluster to agree, bounded by the deadline
            else:
                unavailable("the throwaway Redis Cluster did not reach cluster_state:ok")
            yield [s.port for s in servers]
        finally:
            for server in servers:
                server.close()
