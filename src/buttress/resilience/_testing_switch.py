"""The process-wide switch behind :func:`buttress.testing.disable_waits`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TestingMode:
    """Active while :func:`disable_waits` is in force."""

    max_attempts: int | None

    def cap(self, attempts: int | None) -> int | None:
        """The attempts a policy configured with ``attempts`` may make in this mode."""
        if self.max_attempts is None:
            return attempts
        return self.max_attempts if attempts is None else min(attempts, self.max_attempts)


_lock = threading.Lock()
current: TestingMode | None = None
"""Read by retry policies when an attempt fails (never on the success path)."""


@contextmanager
def disable_waits(max_attempts: int | None = None) -> Iterator[None]:
    """Make every retry policy skip its waits (and optionally cap attempts) inside the block.

    Meant for the test suites of code that uses buttress, like stamina's ``set_testing``:
    retries still happen, so retry logic is exercised, but no test waits for a backoff.
    The previous mode is restored on exit, so blocks nest.

    Args:
        max_attempts: if given, at most this many attempts per call (``1`` turns retries off).

    Example:
        >>> from buttress.testing import disable_waits
        >>> with disable_waits(max_attempts=2):
        ...     pass  # retries here do not sleep and stop after 2 attempts
    """
    global current
    if max_attempts is not None and (isinstance(max_attempts, bool) or max_attempts < 1):
        raise ValueError(f"max_attempts must be an integer >= 1 or None (got {max_attempts!r})")
    with _lock:
        previous, current = current, TestingMode(max_attempts)
    try:
        yield
    finally:
        with _lock:
            current = previous
