"""Thread workers: sync functions in real threads, supervised from the event loop."""

from __future__ import annotations

import asyncio
import threading

from buttress.testing import FakeClock
from buttress.worker import RestartPolicy, StopSignal, Supervisor, WorkerState


class Boom(Exception):
    pass


def test_thread_worker_crash_schedule_runs_on_the_fake_clock() -> None:
    clock = FakeClock()
    threads: set[str] = set()
    dead: list[tuple[str, BaseException | None]] = []

    def flaky(stop: StopSignal) -> None:
        threads.add(threading.current_thread().name)
        raise Boom(threading.current_thread().name)

    async def main() -> None:
        supervisor = Supervisor("sync", clock=clock, random=lambda: 0.5,
                                on_dead_letter=lambda name, err: dead.append((name, err)))  # fmt: skip
        supervisor.add(flaky)
        await supervisor.start()
        await asyncio.wait_for(supervisor.join(), 5)
        status = supervisor.status()["flaky"]
        assert (status.kind, status.state, status.restarts, status.failures) == (
            "thread",
            WorkerState.FAILED,
            4,
            5,
        )

    asyncio.run(main())
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert threads == {"sync/flaky"} and threading.current_thread().name not in threads
    assert len(dead) == 1 and isinstance(dead[0][1], Boom)


def test_thread_pool_stops_cleanly_on_its_signal() -> None:
    ticks: dict[str, int] = {}
    lock = threading.Lock()

    def poll(stop: StopSignal) -> None:
        while not stop.wait(0.001):
            with lock:
                ticks[stop.worker] = ticks.get(stop.worker, 0) + 1

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.add(poll, pool=3)
        await supervisor.start()
        for _ in range(500):
            await asyncio.sleep(0.001)
            with lock:
                if len(ticks) == 3:
                    break
        report = await supervisor.stop(timeout=2)
        assert report.clean and report.stopped == ("poll-0", "poll-1", "poll-2")
        assert {s.state for s in supervisor.status().values()} == {WorkerState.STOPPED}

    asyncio.run(main())
    assert set(ticks) == {"poll-0", "poll-1", "poll-2"}


def test_stop_reports_a_thread_that_ignores_its_signal_and_tracks_its_end() -> None:
    release = threading.Event()
    started = threading.Event()

    def stubborn() -> None:  # takes no stop token at all
        started.set()
        release.wait(5)

    async def main() -> Supervisor:
        supervisor = Supervisor()
        supervisor.add(stubborn)
        supervisor.add(lambda stop: stop.wait(), name="polite")
        await supervisor.start()
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 2)
        report = await supervisor.stop(timeout=0.02, cancel_grace=0.5)
        assert report.still_running == ("stubborn",) and report.stopped == ("polite",)
        assert not report.clean
        assert supervisor.status()["stubborn"].state is WorkerState.RUNNING  # it really still runs
        return supervisor

    supervisor = asyncio.run(main())  # the loop is closed before the thread ends
    thread = supervisor._workers["stubborn"].thread
    assert thread is not None and thread.daemon
    release.set()
    thread.join(2)
    assert not thread.is_alive()
    assert supervisor.status()["stubborn"].state is WorkerState.STOPPED


def test_thread_worker_that_returns_completes_and_restart_on_exit_restarts_it() -> None:
    clock = FakeClock()
    runs: list[int] = []

    def batch(stop: StopSignal) -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            stop.wait(2)

    async def main() -> None:
        supervisor = Supervisor(clock=clock, random=lambda: 0.5)
        supervisor.add(lambda: None, name="once")
        supervisor.add(batch, restart=RestartPolicy(restart_on_exit=True))
        await supervisor.start()
        for _ in range(1000):
            await asyncio.sleep(0.001)
            if len(runs) == 3 and supervisor.status()["once"].state is WorkerState.COMPLETED:
                break
        assert supervisor.status()["once"].state is WorkerState.COMPLETED
        assert supervisor.status()["batch"].restarts == 2
        assert (await supervisor.stop(timeout=2)).clean

    asyncio.run(main())
    assert clock.sleeps == [1.0, 2.0]


def test_a_thread_worker_can_sleep_through_the_fake_clock() -> None:
    clock = FakeClock()
    done = threading.Event()

    def sleepy(stop: StopSignal) -> None:
        for _ in range(3):
            stop.sleep(3600)
        done.set()
        stop.wait()

    async def main() -> None:
        async with Supervisor(clock=clock) as supervisor:
            supervisor.add(sleepy, kind="thread")
            await asyncio.get_running_loop().run_in_executor(None, done.wait, 2)

    asyncio.run(main())
    assert clock.monotonic() == 3 * 3600.0


def test_a_thread_that_ends_after_stop_while_the_loop_still_runs() -> None:
    release = threading.Event()

    def late(stop: StopSignal) -> None:
        release.wait(5)

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.add(late)
        await supervisor.start()
        await asyncio.sleep(0)
        report = await supervisor.stop(timeout=0.01)
        assert report.still_running == ("late",)
        release.set()
        thread = supervisor._workers["late"].thread
        assert thread is not None
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 2)
        await asyncio.sleep(0.01)  # the thread's settle callback finds its future cancelled
        assert supervisor.status()["late"].state is WorkerState.STOPPED

    asyncio.run(main())
