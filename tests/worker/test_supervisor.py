"""Supervisor with async workers: restart schedules on a FakeClock, crash loops, critical
workers, pools and graceful stop on real asyncio."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from buttress.errors import ConfigurationError
from buttress.events import Event
from buttress.resilience.backoff import Constant
from buttress.testing import FakeClock
from buttress.worker import (
    RestartPolicy,
    StopSignal,
    Supervisor,
    WorkerCrashed,
    WorkerFailed,
    WorkerFailure,
    WorkerRestartScheduled,
    WorkerStarted,
    WorkerState,
    WorkerStopped,
)

EXACT = 0.5  # with random() == 0.5 the default +-50 % jitter lands on the interval itself


class Boom(Exception):
    pass


async def until(predicate: object, turns: int = 2000) -> None:
    for _ in range(turns):
        if callable(predicate) and predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_crash_schedule_and_crash_loop_breaker_on_a_fake_clock() -> None:
    clock = FakeClock()
    dead: list[tuple[str, BaseException | None]] = []
    events: list[Event] = []
    errors: list[Boom] = []

    async def flaky(stop: StopSignal) -> None:
        errors.append(Boom(len(errors)))
        raise errors[-1]

    async def main() -> None:
        supervisor = Supervisor("svc", clock=clock, random=lambda: EXACT,
                                on_dead_letter=lambda name, err: dead.append((name, err)))  # fmt: skip
        supervisor.events.subscribe(events.append)
        supervisor.add(flaky)
        await supervisor.start()
        await supervisor.join()
        status = supervisor.status()["flaky"]
        assert status.state is WorkerState.FAILED and not status.healthy and not supervisor.healthy
        assert (status.restarts, status.failures) == (4, 5)
        assert status.last_error is errors[-1]
        assert supervisor.critical_failure is None  # not critical
        report = await supervisor.stop()
        assert report.stopped == ("flaky",) and report.clean

    asyncio.run(main())
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert dead == [("flaky", errors[-1])]
    assert [type(e) for e in events] == [WorkerStarted, WorkerCrashed, WorkerRestartScheduled] * 4 + [
        WorkerStarted, WorkerCrashed, WorkerFailed]  # fmt: skip
    failed = events[-1]
    assert isinstance(failed, WorkerFailed)
    assert (failed.policy, failed.worker, failed.reason, failed.critical) == (
        "svc",
        "flaky",
        "crash_loop",
        False,
    )
    restart = events[2]
    assert isinstance(restart, WorkerRestartScheduled) and (restart.delay, restart.restarts) == (1.0, 1)


def test_default_jitter_is_plus_minus_fifty_percent_and_the_cap_is_five_minutes() -> None:
    clock = FakeClock()
    crashes = 0

    async def flaky() -> None:
        nonlocal crashes
        crashes += 1
        if crashes <= 12:
            raise Boom

    async def main() -> None:
        supervisor = Supervisor(clock=clock, random=lambda: 0.0, restart=RestartPolicy(max_failures=None))
        supervisor.add(flaky)
        await supervisor.start()
        await supervisor.join()
        assert supervisor.status()["flaky"].state is WorkerState.COMPLETED

    asyncio.run(main())
    # random() == 0 draws the low end, interval * 0.5; the interval stops growing at 300 s
    assert clock.sleeps == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150, 150]


def test_a_stable_run_resets_the_backoff() -> None:
    clock = FakeClock()
    runs = 0

    async def slow_crash(stop: StopSignal) -> None:
        nonlocal runs
        runs += 1
        if runs == 6:
            return
        await clock.asleep(70.0 if runs >= 3 else 0.0)
        raise Boom

    async def main() -> None:
        supervisor = Supervisor(clock=clock, random=lambda: EXACT,
                                restart=RestartPolicy(max_failures=None, stable_after=60))  # fmt: skip
        supervisor.add(slow_crash)
        await supervisor.start()
        await supervisor.join()

    asyncio.run(main())
    restart_delays = [s for s in clock.sleeps if s != 70.0 and s != 0.0]
    assert restart_delays == [1.0, 2.0, 1.0, 1.0, 1.0]


def test_crashes_far_apart_never_trip_the_crash_loop_breaker() -> None:
    clock = FakeClock()
    runs = 0

    async def hourly_crash(stop: StopSignal) -> None:
        nonlocal runs
        runs += 1
        if runs > 8:
            await stop.wait_async()
            return
        await clock.asleep(200.0)
        raise Boom

    async def main() -> None:
        supervisor = Supervisor(clock=clock, random=lambda: EXACT)
        supervisor.add(hourly_crash)
        await supervisor.start()
        await until(lambda: runs > 8)
        assert supervisor.status()["hourly_crash"].failures == 8
        assert supervisor.status()["hourly_crash"].state is WorkerState.RUNNING
        assert (await supervisor.stop(timeout=1)).clean

    asyncio.run(main())


def test_pool_of_workers_each_with_its_own_name_and_signal() -> None:
    seen: list[str] = []

    async def consumer(stop: StopSignal) -> None:
        seen.append(stop.worker)
        await stop.wait_async()

    async def main() -> None:
        supervisor = Supervisor()
        assert supervisor.add(consumer, pool=3) == ("consumer-0", "consumer-1", "consumer-2")
        assert supervisor.add(consumer, name="solo") == ("solo",)
        assert all(s.state is WorkerState.PENDING for s in supervisor.status().values())
        async with supervisor:
            await until(lambda: len(seen) == 4)
            assert [s.state for s in supervisor.status().values()] == [WorkerState.RUNNING] * 4
        assert [s.state for s in supervisor.status().values()] == [WorkerState.STOPPED] * 4

    asyncio.run(main())
    assert sorted(seen) == ["consumer-0", "consumer-1", "consumer-2", "solo"]


def test_critical_worker_failure_is_awaitable_and_calls_the_hook() -> None:
    clock = FakeClock()
    hooked: list[tuple[str, BaseException | None]] = []
    dead: list[str] = []

    async def on_critical(name: str, error: BaseException | None) -> None:
        await asyncio.sleep(0)
        hooked.append((name, error))

    async def broken() -> None:
        raise Boom("db gone")

    async def fine(stop: StopSignal) -> None:
        await stop.wait_async()

    async def main() -> WorkerFailure:
        supervisor = Supervisor(clock=clock, on_critical_failure=on_critical,
                                on_dead_letter=lambda name, err: dead.append(name),
                                restart=RestartPolicy(max_failures=2))  # fmt: skip
        supervisor.add(fine)
        supervisor.add(broken, critical=True, pool=2)
        await supervisor.start()
        failure = await asyncio.wait_for(supervisor.wait_critical_failure(), 2)
        await until(lambda: len(hooked) == 2)
        assert supervisor.critical_failure is failure
        assert supervisor.status()["fine"].state is WorkerState.RUNNING  # the App decides to stop
        report = await supervisor.stop(timeout=1)
        assert report.clean and set(report.stopped) == {"fine", "broken-0", "broken-1"}
        return failure

    failure = asyncio.run(main())
    assert failure.name in ("broken-0", "broken-1")
    assert (failure.reason, failure.failures, str(failure.error)) == ("crash_loop", 2, "db gone")
    assert sorted(name for name, _ in hooked) == ["broken-0", "broken-1"]
    assert sorted(dead) == ["broken-0", "broken-1"]


def test_failing_hooks_are_logged_and_do_not_break_the_supervisor(caplog: pytest.LogCaptureFixture) -> None:
    def bad_hook(name: str, error: BaseException | None) -> None:
        raise RuntimeError("hook broke")

    async def broken() -> None:
        raise Boom

    async def main() -> None:
        supervisor = Supervisor(clock=FakeClock(), on_dead_letter=bad_hook, on_critical_failure=bad_hook,
                                restart=RestartPolicy(max_failures=1))  # fmt: skip
        supervisor.add(broken, critical=True)
        await supervisor.start()
        await supervisor.join()
        assert supervisor.critical_failure is not None

    with caplog.at_level(logging.ERROR, logger="buttress.worker"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert any("on_dead_letter hook" in m for m in messages)
    assert any("on_critical_failure hook" in m for m in messages)
    assert any("gave up on worker 'broken'" in m for m in messages)


def test_a_worker_that_returns_is_completed_not_restarted() -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    async def main() -> None:
        supervisor = Supervisor(clock=FakeClock())
        supervisor.add(once)
        await supervisor.start()
        await supervisor.join()
        status = supervisor.status()["once"]
        assert (status.state, status.restarts, status.failures, status.healthy) == (
            WorkerState.COMPLETED, 0, 0, True)  # fmt: skip

    asyncio.run(main())
    assert runs == 1


def test_restart_on_exit_restarts_a_returning_worker() -> None:
    clock = FakeClock()
    runs = 0

    async def poller(stop: StopSignal) -> None:
        nonlocal runs
        runs += 1
        if runs == 4:
            await stop.wait_async()

    async def main() -> None:
        supervisor = Supervisor(clock=clock, random=lambda: EXACT)
        supervisor.add(poller, restart=RestartPolicy(restart_on_exit=True))
        await supervisor.start()
        await until(lambda: runs == 4)
        status = supervisor.status()["poller"]
        assert (status.restarts, status.failures) == (3, 0)
        await supervisor.stop(timeout=1)

    asyncio.run(main())
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_stop_during_the_backoff_wait_is_immediate() -> None:
    crashed = asyncio.Event

    async def main() -> None:
        supervisor = Supervisor(restart=RestartPolicy(backoff=Constant(3600.0)))
        done = crashed()

        async def crash() -> None:
            done.set()
            raise Boom

        supervisor.add(crash)
        await supervisor.start()
        await done.wait()
        await until(lambda: supervisor.status()["crash"].state is WorkerState.RESTARTING)
        report = await asyncio.wait_for(supervisor.stop(timeout=5), 2)
        assert report.clean and supervisor.status()["crash"].state is WorkerState.STOPPED

    asyncio.run(main())


def test_stop_cancels_an_async_worker_that_ignores_its_signal() -> None:
    cleaned_up: list[bool] = []

    async def stubborn() -> None:  # takes no stop signal: it loops until cancelled
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)

    async def polite(stop: StopSignal) -> None:
        await stop.wait_async()

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.add(stubborn)
        supervisor.add(polite)
        await supervisor.start()
        await asyncio.sleep(0)
        report = await supervisor.stop(timeout=0.02)
        assert (report.stopped, report.cancelled, report.still_running) == (("polite",), ("stubborn",), ())
        assert not report.clean
        assert supervisor.status()["stubborn"].state is WorkerState.STOPPED

    asyncio.run(main())
    assert cleaned_up == [True]


def test_stop_reports_a_task_that_swallows_its_cancellation() -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def swallower() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await release.wait()

        supervisor = Supervisor()
        supervisor.add(swallower)
        await supervisor.start()
        await asyncio.sleep(0)
        report = await supervisor.stop(timeout=0.01, cancel_grace=0.01)
        assert report.still_running == ("swallower",) and report.cancelled == ()
        release.set()
        await supervisor.join()
        assert supervisor.status()["swallower"].state is WorkerState.STOPPED

    asyncio.run(main())


def test_a_crash_while_stopping_is_recorded_but_not_restarted() -> None:
    dead: list[str] = []

    async def crash_on_stop(stop: StopSignal) -> None:
        await stop.wait_async()
        raise Boom("while stopping")

    async def main() -> None:
        supervisor = Supervisor(on_dead_letter=lambda name, err: dead.append(name))
        supervisor.add(crash_on_stop)
        await supervisor.start()
        await asyncio.sleep(0)
        assert (await supervisor.stop(timeout=1)).clean
        status = supervisor.status()["crash_on_stop"]
        assert status.state is WorkerState.STOPPED and str(status.last_error) == "while stopping"

    asyncio.run(main())
    assert dead == []


def test_the_workers_own_cancelled_error_counts_as_a_crash() -> None:
    async def self_cancelling() -> None:
        raise asyncio.CancelledError

    async def main() -> None:
        supervisor = Supervisor(clock=FakeClock(), restart=RestartPolicy(max_failures=2))
        supervisor.add(self_cancelling)
        await supervisor.start()
        await supervisor.join()
        status = supervisor.status()["self_cancelling"]
        assert status.state is WorkerState.FAILED and status.failures == 2
        assert isinstance(status.last_error, asyncio.CancelledError)

    asyncio.run(main())


def test_backoff_stop_gives_up_with_reason_backoff() -> None:
    from buttress.resilience.backoff import with_max_retries

    async def broken() -> None:
        raise Boom

    async def main() -> None:
        policy = RestartPolicy(backoff=with_max_retries(Constant(1), 2), max_failures=None)
        supervisor = Supervisor(clock=FakeClock(), restart=policy)
        supervisor.add(broken, critical=True)
        await supervisor.start()
        failure = await supervisor.wait_critical_failure()
        assert (failure.reason, failure.failures) == ("backoff", 3)

    asyncio.run(main())


def test_workers_added_after_start_run_at_once_and_stop_events_are_emitted() -> None:
    events: list[Event] = []

    async def late(stop: StopSignal) -> None:
        await stop.wait_async()

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.events.subscribe(events.append)
        await supervisor.start()
        supervisor.add(late)
        await until(lambda: supervisor.status()["late"].state is WorkerState.RUNNING)
        await supervisor.stop(timeout=1)
        assert (await supervisor.stop()).stopped == ("late",)  # idempotent
        with pytest.raises(RuntimeError, match="stopping"):
            supervisor.add(late, name="later")
        with pytest.raises(RuntimeError, match="already started"):
            await supervisor.start()

    asyncio.run(main())
    assert [type(e) for e in events] == [WorkerStarted, WorkerStopped]
    assert isinstance(events[1], WorkerStopped) and events[1].state is WorkerState.STOPPED


def test_stop_before_start_marks_everything_stopped() -> None:
    async def never(stop: StopSignal) -> None:
        raise AssertionError("not started")

    async def main() -> None:
        supervisor = Supervisor(stop_timeout=timedelta(seconds=2))
        supervisor.add(never, pool=2)
        report = await supervisor.stop()
        assert report.stopped == ("never-0", "never-1") and report.clean
        await supervisor.join()
        assert {s.state for s in supervisor.status().values()} == {WorkerState.STOPPED}

    asyncio.run(main())


class Fatal(BaseException):
    pass


def test_base_exceptions_from_a_worker_mark_it_failed_and_propagate() -> None:
    async def fatal() -> None:
        raise Fatal

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.add(fatal)
        await supervisor.start()
        await supervisor.join()
        status = supervisor.status()["fatal"]
        assert status.state is WorkerState.FAILED and isinstance(status.last_error, Fatal)
        task = supervisor._workers["fatal"].task
        assert task is not None and isinstance(task.exception(), Fatal)

    asyncio.run(main())


def test_invalid_arguments_are_all_reported() -> None:
    with pytest.raises(ConfigurationError) as info:
        Supervisor(restart="x", clock=object(), on_dead_letter=1, on_critical_failure=2,  # type: ignore[arg-type]
                   stop_timeout=0, random=0.5)  # type: ignore[arg-type]  # fmt: skip
    assert len(info.value.problems) == 6
    supervisor = Supervisor()

    async def w() -> None: ...

    with pytest.raises(ConfigurationError) as info:
        supervisor.add(42, name="", pool=0, kind="process", restart="x")  # type: ignore[arg-type]
    assert len(info.value.problems) == 5
    supervisor.add(w, pool=2)
    with pytest.raises(ConfigurationError, match="'w-1' is already used"):
        supervisor.add(w, name="w", pool=2)
    with pytest.raises(ConfigurationError, match="timeout must be >= 0"):
        asyncio.run(supervisor.stop(timeout=-1))
    assert repr(supervisor) == "Supervisor('workers', workers=2)"


def test_signature_less_callables_are_given_the_stop_signal_and_kind_can_be_forced() -> None:
    from buttress.worker._worker import takes_stop

    assert takes_stop(min) is True  # no signature: assume it takes the signal
    assert takes_stop(lambda: None) is False
    calls: list[object] = []

    def sync_but_forced_async(stop: StopSignal) -> None:
        calls.append(stop)

    async def main() -> None:
        supervisor = Supervisor()
        supervisor.add(sync_but_forced_async, kind="async")
        await supervisor.start()
        await supervisor.join()
        status = supervisor.status()["sync_but_forced_async"]
        assert (status.kind, status.state) == ("async", WorkerState.COMPLETED)

    asyncio.run(main())
    assert len(calls) == 1 and isinstance(calls[0], StopSignal)
