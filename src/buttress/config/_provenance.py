"""Where a configuration value came from: the layer and the exact place inside it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Layer", "Source"]


class Layer(enum.StrEnum):
    """The configuration layers, declared in rising precedence (a later layer wins).

    Example:
        >>> [layer.value for layer in Layer]
        ['default', 'file', 'profile', 'dotenv', 'env', 'cli', 'override']
        >>> Layer.ENV.rank > Layer.DOTENV.rank
        True
    """

    DEFAULT = "default"
    FILE = "file"
    PROFILE = "profile"
    DOTENV = "dotenv"
    ENV = "env"
    CLI = "cli"
    OVERRIDE = "override"

    @property
    def rank(self) -> int:
        """Position in the precedence order: 0 for defaults, highest for explicit overrides."""
        return _RANKS[self]


_RANKS = {layer: index for index, layer in enumerate(Layer)}


@dataclass(frozen=True, slots=True)
class Source:
    """One place a value (or a problem) came from.

    Attributes:
        layer: which layer supplied it.
        location: the file it was read from (config file, profile overlay or ``.env``), if any.
        name: the environment variable, CLI flag or override key that carried it, or the profile
            name for a profile overlay.
        line: the line in ``location``, where known (``.env`` entries, parse errors).

    Example:
        >>> str(Source(Layer.ENV, name="APP_SERVER__PORT"))
        'env APP_SERVER__PORT'
        >>> str(Source(Layer.DOTENV, location=".env", name="APP_DEBUG", line=3))
        'APP_DEBUG in .env, line 3'
    """

    layer: Layer
    location: str | None = None
    name: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        line = f", line {self.line}" if self.line is not None else ""
        if self.layer is Layer.DEFAULT:
            return "default"
        if self.layer is Layer.FILE:
            return f"file {self.location}{line}"
        if self.layer is Layer.PROFILE:
            return f"profile {self.name!r} file {self.location}{line}"
        if self.layer is Layer.DOTENV:
            where = f"{self.location}{line}"
            return f"{self.name} in {where}" if self.name else where
        if self.layer is Layer.ENV:
            return f"env {self.name}"
        if self.layer is Layer.CLI:
            return f"flag {self.name}"
        return f"override {self.name}"


DEFAULT_SOURCE = Source(Layer.DEFAULT)
