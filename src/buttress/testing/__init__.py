"""Fakes and switches for testing code that uses buttress.

- :class:`FakeClock`: pass it as ``clock=`` to any policy; its sleeps return at once.
- :func:`disable_waits`: run retries without waiting and with a capped number of attempts.
"""

from buttress.resilience._testing_switch import disable_waits
from buttress.testing._clock import FakeClock

__all__ = ["FakeClock", "disable_waits"]
