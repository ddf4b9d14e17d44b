"""The public surface of buttress.worker: a sorted __all__ re-exported from private modules."""

from __future__ import annotations

import buttress.worker as worker


def test_all_is_sorted_resolvable_and_re_exported() -> None:
    assert list(worker.__all__) == sorted(worker.__all__)
    for name in worker.__all__:
        obj = getattr(worker, name)
        module = getattr(obj, "__module__", "buttress.worker._")
        assert module.startswith("buttress.worker._") or name in (
            "FailureHook",
            "WorkerFunction",
            "WorkerKind",
        )


def test_the_surface_is_exactly_this() -> None:
    assert set(worker.__all__) == {
        "Decision", "FailureHook", "RestartPolicy", "RestartTracker", "StopReport", "StopSignal",
        "Supervisor", "WorkerCrashed", "WorkerFailed", "WorkerFailure", "WorkerFunction", "WorkerKind",
        "WorkerRestartScheduled", "WorkerStarted", "WorkerState", "WorkerStatus", "WorkerStopped",
    }  # fmt: skip
