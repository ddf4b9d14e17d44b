"""Telemetry for buttress events: listeners that log, measure or trace what policies do."""

from buttress.telemetry._logging import LoggingListener

__all__ = ["LoggingListener"]
