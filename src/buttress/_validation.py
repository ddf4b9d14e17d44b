"""Collecting every configuration problem before raising one :class:`ConfigurationError`."""

from __future__ import annotations

import math
from datetime import timedelta

from buttress.errors import ConfigurationError


def seconds(value: float | timedelta) -> float:
    """Accept float seconds or a :class:`datetime.timedelta` at the edges."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


class Problems:
    """Accumulates configuration problems; :meth:`raise_if_any` reports them all at once."""

    __slots__ = ("_owner", "items")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def _is_number(self, name: str, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{name} must be a number of seconds (got {value!r})")
            return False
        if math.isnan(value):
            self.add(f"{name} must not be NaN")
            return False
        return True

    def non_negative(self, name: str, value: object, *, allow_inf: bool = True) -> None:
        """``value`` must be a number >= 0 (optionally finite)."""
        if self._is_number(name, value):
            assert isinstance(value, int | float)
            if value < 0:
                self.add(f"{name} must be >= 0 (got {value!r})")
            elif not allow_inf and math.isinf(value):
                self.add(f"{name} must be finite (got {value!r})")

    def positive(self, name: str, value: object, *, allow_inf: bool = True) -> None:
        """``value`` must be a number > 0."""
        if self._is_number(name, value):
            assert isinstance(value, int | float)
            if value <= 0:
                self.add(f"{name} must be > 0 (got {value!r})")
            elif not allow_inf and math.isinf(value):
                self.add(f"{name} must be finite (got {value!r})")

    def at_least(self, name: str, value: object, minimum: float) -> None:
        """``value`` must be a number >= ``minimum``."""
        if self._is_number(name, value):
            assert isinstance(value, int | float)
            if value < minimum:
                self.add(f"{name} must be >= {minimum} (got {value!r})")

    def ratio(self, name: str, value: object, *, open_low: bool = False) -> None:
        """``value`` must lie in [0, 1] (or (0, 1] with ``open_low``)."""
        if self._is_number(name, value):
            assert isinstance(value, int | float)
            low_ok = value > 0 if open_low else value >= 0
            if not (low_ok and value <= 1):
                allowed = "(0, 1]" if open_low else "[0, 1]"
                self.add(f"{name} must be in {allowed} (got {value!r})")

    def int_at_least(self, name: str, value: object, minimum: int) -> None:
        """``value`` must be an ``int`` >= ``minimum``."""
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.add(f"{name} must be an integer >= {minimum} (got {value!r})")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigurationError(self._owner, self.items)
