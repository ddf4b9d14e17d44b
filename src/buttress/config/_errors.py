"""The one error a configuration load raises, listing every problem found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from buttress.config._provenance import Source
from buttress.errors import ConfigurationError

__all__ = ["ConfigError", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the configuration, already redacted and phrased for a human.

    Attributes:
        key: the dotted settings key it concerns (``"server.port"``), or ``None`` for a problem
            with a source as a whole (a file that does not parse).
        message: what is wrong and what is allowed, e.g. ``"must be at most 65535 (got 70000)"``.
        source: where the offending value came from, when known.

    Example:
        >>> from buttress.config import Layer, Source
        >>> str(Problem("server.port", "must be at most 65535 (got 70000)",
        ...             Source(Layer.ENV, name="APP_SERVER__PORT")))
        'server.port: must be at most 65535 (got 70000), from env APP_SERVER__PORT'
    """

    key: str | None
    message: str
    source: Source | None = None

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.source}: {self.message}" if self.source else self.message
        if self.source is None:
            return f"{self.key}: {self.message}"
        return f"{self.key}: {self.message}, from {self.source}"


class ConfigError(ConfigurationError):
    """Loading configuration failed; ``problems`` lists every reason, one line each.

    It is a :class:`buttress.errors.ConfigurationError` (and so a :class:`ValueError`). Secret
    values never appear in it: inputs of secret fields are shown as ``'**********'``, and the
    underlying pydantic error (which carries raw inputs) is not chained.

    Attributes:
        problems: one human-readable line per problem.
        details: the same problems as structured :class:`Problem` objects.
    """

    details: tuple[Problem, ...]

    def __init__(self, problems: Sequence[Problem], *, owner: str = "settings") -> None:
        self.details = tuple(problems)
        super().__init__(owner, [str(problem) for problem in self.details])
        count = len(self.details)
        noun = "problem" if count == 1 else "problems"
        lines = "".join(f"\n  {line}" for line in self.problems)
        self.args = (f"invalid {owner} configuration ({count} {noun}):{lines}",)

    def __str__(self) -> str:
        return str(self.args[0])
