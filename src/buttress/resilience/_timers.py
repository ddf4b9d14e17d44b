"""One loop timer for many deadlines: the cheap per-call bound of :class:`~buttress.resilience.Timeout`
and of the asyncio Redis limiter.

``asyncio.timeout`` arms (and cancels) a loop timer per call, ~4 µs. A policy whose timeout is
constant sets its deadlines in order, so a deque of them is already sorted and one loop timer,
armed for the earliest live deadline, serves every call: a call costs a list and an append.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["DEADLINE", "FIRED", "HANDLE", "TASK", "Timers", "current_task"]

# An entry is a list [deadline, task or None once finished, fired]: cheaper than an object. An
# entry that could not join the sorted deque carries its own loop timer as a fourth item.
DEADLINE, TASK, FIRED, HANDLE = 0, 1, 2, 3

try:  # Python 3.12+: a C function
    from _asyncio import current_task  # type: ignore[attr-defined]
except ImportError:  # Python 3.11: asyncio.current_task is a Python wrapper around this dict
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    current_task = _current_tasks.get


class Timers:
    """The deadlines one policy has set on one event loop, in the order they were set.

    A policy's timeout is constant and time is monotonic, so deadlines arrive in order and a
    deque is already sorted: one loop timer, armed for the earliest live deadline, serves every
    call. A call that finishes only marks its entry, so the common case costs a list and an
    append instead of a loop timer per call (``asyncio.timeout`` costs ~4 µs here). A timeout
    shrunk by a :class:`~buttress.resilience.Deadline` can end before deadlines already queued;
    such an entry gets a loop timer of its own instead (the rare, slower path).
    """

    __slots__ = ("armed", "last", "loop", "now", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop, now: Callable[[], float]) -> None:
        self.loop = loop
        self.now = now
        self.pending: deque[list[Any]] = deque()
        self.armed = False
        self.last = -float("inf")  # the latest deadline appended: the deque is sorted up to it

    def add(self, deadline: float, task: asyncio.Task[Any]) -> list[Any]:
        entry = [deadline, task, False]
        if deadline < self.last:
            entry.append(self.loop.call_later(max(0.0, deadline - self.now()), self._fire_one, entry))
            return entry
        self.last = deadline
        self.pending.append(entry)
        if not self.armed:
            self._arm(deadline)
        return entry

    def done(self, entry: list[Any]) -> None:
        entry[TASK] = None
        if len(entry) > HANDLE:
            entry[HANDLE].cancel()
            return
        pending = self.pending
        while pending and pending[0][TASK] is None:
            pending.popleft()

    @staticmethod
    def _fire_one(entry: list[Any]) -> None:
        task = entry[TASK]
        if task is not None:
            entry[FIRED] = True
            task.cancel()

    def _arm(self, deadline: float) -> None:
        self.armed = True
        self.loop.call_later(max(0.0, deadline - self.now()), self._fire)

    def _fire(self) -> None:
        self.armed = False
        now = self.now()
        pending = self.pending
        while pending:
            entry = pending[0]
            task = entry[TASK]
            if task is not None and entry[DEADLINE] > now:
                break
            pending.popleft()
            if task is not None:
                entry[FIRED] = True
                task.cancel()
        if pending:
            self._arm(pending[0][DEADLINE])
