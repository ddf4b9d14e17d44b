"""The orders service end to end, as a real process: start-up, SIGTERM, a hung hook, a forced exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Service:
    """The service in a subprocess; its log (stderr) read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
        environ.update(env or {})
        environ["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.orders_service", *args],
            cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """Read the log until a line contains ``text`` (bounded by ``timeout``)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return line
        raise AssertionError(f"{text!r} not in the log:\n" + "\n".join(self.lines))

    def finish(self, timeout: float) -> tuple[int, float]:
        """Wait for the exit; the exit code and how long it took; the rest of the log is read."""
        began = time.monotonic()
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.lines += out.splitlines()
        return self.process.returncode, time.monotonic() - began

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait(5)
        if service.process.stdout is not None:
            service.process.stdout.close()


def launch(services: list[Service], *args: str, **env: str) -> Service:
    service = Service("--http-port", "0", *args, env={f"ORDERS_{k.upper()}": v for k, v in env.items()})
    services.append(service)
    return service


def test_sigterm_mid_work_drains_every_order_and_exits_0(services: list[Service]) -> None:
    service = launch(services, "--workers", "2", "--hook-timeout", "2", "--shutdown-timeout", "4",
                     orders__seed="6", orders__work_seconds="0.15")  # fmt: skip
    address = service.wait_for("listening on").split("listening on ")[1].strip()
    service.wait_for("started in")  # the listener opens before start-up ends: readiness comes after
    with urllib.request.urlopen(f"{address}/ready", timeout=2) as response:
        assert response.status == 200
    service.wait_for("order 1 processing")
    service.process.send_signal(signal.SIGTERM)
    code, took = service.finish(timeout=8)
    assert code == 0, service.log
    assert took < 4  # the work left is ~0.5 s, far inside the shutdown bound
    log = service.log
    assert all(f"order {n} processed" in log for n in range(1, 7))
    assert "ledger flushed: 6 orders recorded" in log
    # readiness fails before the first phase; the phases run in their documented order
    order = ["readiness is now failing", "phase stop_accepting", "intake closed", "phase drain", "drained",
             "phase stop_workers", "event bus closed", "phase flush_telemetry", "phase close_clients",
             "database closed", "stopped cleanly"]  # fmt: skip
    positions = [log.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_a_hung_stop_hook_is_blamed_and_the_process_exits_within_the_global_timeout(
    services: list[Service],
) -> None:
    service = launch(services, "--hook-timeout", "0.3", "--shutdown-timeout", "1",
                     orders__hang_on_stop="true")  # fmt: skip
    service.wait_for("started in")
    began = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    code, _ = service.finish(timeout=8)
    took = time.monotonic() - began
    assert code == 4, service.log  # ExitCode.UNCLEAN_SHUTDOWN
    assert took < 1 + 1.5  # the global timeout, plus process exit
    assert (
        "shutdown hook 'orders.flush_ledger' (phase flush_telemetry) overran its 0.3s timeout" in service.log
    )
    assert "database closed" in service.log  # the phases after the hung hook still ran
    assert "blame: orders.flush_ledger (timed out)" in service.log


def test_a_second_sigint_forces_the_exit(services: list[Service]) -> None:
    service = launch(
        services, "--hook-timeout", "20", "--shutdown-timeout", "30", orders__hang_on_stop="true"
    )
    service.wait_for("started in")
    service.process.send_signal(signal.SIGINT)
    service.wait_for("phase flush_telemetry")
    service.process.send_signal(signal.SIGINT)
    code, took = service.finish(timeout=5)
    assert code == 130, service.log
    assert took < 2
    assert (
        "received SIGINT again: forcing the exit, abandoning shutdown hook 'orders.flush_ledger'"
        in service.log
    )


def test_invalid_configuration_fails_start_up_with_every_problem(services: list[Service]) -> None:
    service = launch(services, "--workers", "0", http__host="127.0.0.1", orders__work_seconds="-1")
    code, _ = service.finish(timeout=10)
    assert code == 2, service.log  # ExitCode.CONFIG_INVALID
    assert "orders.workers: must be at least 1 (got 0), from flag --workers" in service.log
    assert (
        "orders.work_seconds: must be at least 0.0 (got -1), from env ORDERS_ORDERS__WORK_SECONDS"
        in service.log
    )


def test_config_show_and_check_as_commands() -> None:
    env = {**os.environ, "ORDERS_ORDERS__PAYMENT_API_KEY": "s3cr3t"}
    command = [sys.executable, "-m", "examples.orders_service", "config"]
    show = subprocess.run([*command, "show", "--http-port", "9001"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=20)  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert "(flag --http-port)" in show.stdout and "9001" in show.stdout
    assert "s3cr3t" not in show.stdout and "env ORDERS_ORDERS__PAYMENT_API_KEY" in show.stdout
    check = subprocess.run([*command, "check"],
                           cwd=ROOT, env={**env, "ORDERS_HTTP__PORT": "70000"}, capture_output=True,
                           text=True, timeout=20)  # fmt: skip
    assert check.returncode == 1
    assert "http.port: must be at most 65535 (got 70000), from env ORDERS_HTTP__PORT" in check.stderr
