"""RestartTracker: the sans-IO restart decision, driven by explicit clock readings."""

from __future__ import annotations

import pytest

from buttress.errors import ConfigurationError
from buttress.resilience.backoff import Constant, Exponential, with_max_retries
from buttress.worker import Decision, RestartPolicy, RestartTracker

BOOM = RuntimeError("boom")


def exact_backoff() -> Exponential:
    return Exponential(random=lambda: 0.5)  # the midpoint of +-50 % jitter: exact intervals


def crash_at(tracker: RestartTracker, start: float, end: float) -> Decision:
    tracker.started(start)
    return tracker.ended(end, BOOM)


def test_gaz_defaults() -> None:
    policy = RestartPolicy()
    assert (policy.max_failures, policy.failure_window, policy.stable_after) == (5, 600.0, 60.0)
    assert policy.backoff is None and policy.restart_on_exit is False


def test_crash_loop_gives_up_on_the_fifth_crash_within_the_window() -> None:
    tracker = RestartTracker(RestartPolicy(), exact_backoff())
    now = 0.0
    delays = []
    for _ in range(4):
        decision = crash_at(tracker, now, now)
        assert decision.action == "restart"
        delays.append(decision.delay)
        now += decision.delay
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert crash_at(tracker, now, now) == Decision("give_up", reason="crash_loop")
    assert tracker.failures == 5


def test_the_window_slides_so_spaced_crashes_never_trip_the_breaker() -> None:
    tracker = RestartTracker(RestartPolicy(stable_after=1000.0), exact_backoff())
    for i in range(20):
        assert crash_at(tracker, i * 200.0, i * 200.0 + 1).action == "restart"
    assert tracker.failures == 20


def test_exactly_at_the_window_edge_still_counts() -> None:
    tracker = RestartTracker(RestartPolicy(max_failures=2, failure_window=10.0), Constant(0.0))
    assert crash_at(tracker, 0.0, 0.0).action == "restart"
    assert crash_at(tracker, 10.0, 10.0).action == "give_up"


def test_a_stable_run_resets_the_backoff() -> None:
    tracker = RestartTracker(RestartPolicy(max_failures=None, stable_after=60.0), exact_backoff())
    assert [crash_at(tracker, 0, 0).delay for _ in range(3)] == [1.0, 2.0, 4.0]
    assert crash_at(tracker, 0.0, 60.0).delay == 1.0  # ran 60 s: stable
    assert crash_at(tracker, 0.0, 59.9).delay == 2.0  # ran 59.9 s: not stable


def test_a_normal_return_completes_unless_restart_on_exit() -> None:
    tracker = RestartTracker(RestartPolicy(), exact_backoff())
    tracker.started(0.0)
    assert tracker.ended(1.0, None) == Decision("complete")
    again = RestartTracker(RestartPolicy(restart_on_exit=True, max_failures=1), exact_backoff())
    for expected in (1.0, 2.0, 4.0):
        again.started(0.0)
        assert again.ended(0.0, None) == Decision("restart", delay=expected)
    assert again.failures == 0  # returning is not crashing, and never trips the breaker


def test_a_backoff_that_stops_gives_up() -> None:
    tracker = RestartTracker(RestartPolicy(max_failures=None), with_max_retries(Constant(1.0), 1))
    assert crash_at(tracker, 0, 0) == Decision("restart", delay=1.0)
    assert crash_at(tracker, 0, 0) == Decision("give_up", reason="backoff")


def test_invalid_policy_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        RestartPolicy(backoff="fast", max_failures=0, failure_window=0, stable_after=-1,  # type: ignore[arg-type]
                      restart_on_exit="yes")  # type: ignore[arg-type]  # fmt: skip
    assert len(info.value.problems) == 5
    message = str(info.value)
    for field in ("backoff", "max_failures", "failure_window", "stable_after", "restart_on_exit"):
        assert field in message
