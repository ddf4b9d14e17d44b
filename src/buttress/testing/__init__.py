"""Fakes and switches for testing code that uses buttress.

- :class:`FakeClock`: pass it as ``clock=`` to any policy; its sleeps return at once.
- :func:`disable_waits`: run retries without waiting and with a capped number of attempts.
- :class:`AppHarness`: run an App in a test with overrides and config, started and stopped
  within timeouts; the pytest plugin's ``buttress_app`` fixture wraps it.
"""

from buttress.resilience._testing_switch import disable_waits
from buttress.testing._clock import FakeClock
from buttress.testing._harness import AppHarness

__all__ = ["AppHarness", "FakeClock", "disable_waits"]
