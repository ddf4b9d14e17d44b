"""The result of a load: typed settings, per-value provenance, redacted dumps."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, Secret, SecretBytes, SecretStr
from pydantic_core import to_jsonable_python

from buttress.config._humane import REDACTED
from buttress.config._provenance import Source

__all__ = ["Loaded", "leaves"]

M = TypeVar("M", bound=BaseModel)
S = TypeVar("S", bound=BaseModel)


def _unsecret(value: object, redact: bool) -> object:
    if isinstance(value, SecretStr | SecretBytes | Secret):
        return REDACTED if redact else value.get_secret_value()
    if isinstance(value, dict):
        return {key: _unsecret(item, redact) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_unsecret(item, redact) for item in value)
    return value


def leaves(data: Mapping[Any, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every ``(path, value)`` below ``data``: non-empty dicts are descended, anything else is a leaf."""
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            yield from leaves(value, path)
        else:
            yield path, value


class Loaded(Generic[M]):
    """Settings loaded from every layer, with where each value came from.

    Attributes:
        settings: the validated settings model.
        provenance: dotted key (``"server.port"``) -> :class:`Source`, for every effective value,
            defaults included, in the model's field order.
        files: the config files read, base file first.
    """

    __slots__ = ("files", "provenance", "settings")

    settings: M
    provenance: dict[str, Source]
    files: tuple[Path, ...]

    def __init__(self, settings: M, provenance: dict[str, Source], files: tuple[Path, ...] = ()) -> None:
        self.settings = settings
        self.provenance = provenance
        self.files = files

    def dump(self, *, redact: bool = True, mode: Literal["python", "json"] = "python") -> dict[str, Any]:
        """The effective settings as a nested dict, keyed by field name.

        Args:
            redact: replace every secret (``SecretStr``, ``SecretBytes``, ``Secret[...]``) by
                ``"**********"``; with ``False`` secrets are revealed, for handing to a client.
            mode: ``"python"`` keeps Python values (``timedelta``, ``Path``); ``"json"`` makes the
                result JSON-serialisable the way pydantic does (``"PT5S"``, strings).

        Returns:
            A new dict; changing it does not change the settings.
        """
        data = _unsecret(self.settings.model_dump(mode="python"), redact)
        if mode == "json":
            data = to_jsonable_python(data)
        assert isinstance(data, dict)
        return data

    def render(self) -> str:
        """One line per effective value, ``key = value  (source)``, secrets redacted.

        Values are shown as JSON (strings quoted, durations as ISO 8601), which is also the syntax
        an environment variable accepts for lists and tables. This is what ``config show`` prints.
        """
        rows = [
            (key, json.dumps(value, ensure_ascii=False), str(self.provenance.get(key, "default")))
            for key, value in ((".".join(path), value) for path, value in leaves(self.dump(mode="json")))
        ]
        if not rows:
            return "(no settings)"
        key_width = max(len(key) for key, _, _ in rows)
        value_width = min(max(len(value) for _, value, _ in rows), 40)
        return "\n".join(
            f"{key:<{key_width}} = {value:<{value_width}}  ({source})" for key, value, source in rows
        )

    @overload
    def section(self, name: str) -> BaseModel: ...
    @overload
    def section(self, name: str, model: type[S]) -> S: ...
    def section(self, name: str, model: type[BaseModel] | None = None) -> BaseModel:
        """The settings of one section, typed.

        Args:
            name: the section name (a top-level field of the settings model).
            model: the section's model class; the value is checked to be an instance of it.

        Raises:
            KeyError: there is no such section.
            TypeError: the section holds something else than ``model``.
        """
        fields = type(self.settings).model_fields
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise KeyError(f"no config section {name!r} (sections: {known})")
        value = getattr(self.settings, name)
        expected = BaseModel if model is None else model
        if not isinstance(value, expected):
            raise TypeError(f"config section {name!r} is {type(value).__name__}, not {expected.__name__}")
        return value

    def __repr__(self) -> str:
        files = ", ".join(str(path) for path in self.files)
        return f"Loaded({type(self.settings).__name__}, {len(self.provenance)} values, files=[{files}])"
