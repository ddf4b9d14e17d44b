"""Merging the layers into one input mapping with a parallel provenance map.

Every layer's entries are resolved against the model (case-insensitive where the layer asks),
decoded when they are environment or command-line text, and written into one nested ``data``
dict; ``provenance`` records, per attribute path, the source of the value written last. Tables
merge key by key; any other value (lists included) replaces what was there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from buttress.config._errors import Problem
from buttress.config._provenance import Source
from buttress.config._schema import OPAQUE, Kind, Node, Step, Unknown, step
from buttress.config._sources import Entry

__all__ = ["Merger", "dotted"]

Path = tuple[str, ...]
_SECONDS = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def dotted(names: Path) -> str:
    """Render an attribute path: ``("server", "port")`` -> ``"server.port"``; list indexes as ``[i]``."""
    text = ""
    for name in names:
        if name.startswith("[") or not text:
            text += name
        else:
            text += f".{name}"
    return text


class Merger:
    """Accumulates entries into ``data`` (input keys) and ``provenance`` (attribute paths)."""

    __slots__ = ("bad", "data", "problems", "provenance", "root", "strict")

    def __init__(self, root: Node, *, strict: bool) -> None:
        self.root = root
        self.strict = strict
        self.data: dict[str, Any] = {}
        self.provenance: dict[Path, Source] = {}
        self.problems: list[Problem] = []
        self.bad: set[Path] = set()

    def add(self, entry: Entry) -> None:
        """Resolve one entry and merge it."""
        node = self.root
        keys: Path = ()
        names: Path = ()
        for index, key in enumerate(entry.keys):
            found = step(node, key, loose=entry.loose)
            if isinstance(found, Unknown):
                rest = entry.keys[index:]
                if self._unknown(found, names, rest, entry.source, entry.text) is None:
                    return
                node, keys, names = OPAQUE, (*keys, *rest), (*names, *rest)
                break
            node, keys, names = found.node, (*keys, found.key), (*names, found.name)
        value = entry.value
        if entry.text and isinstance(value, str):
            decoded = self._decode(node, value, names, entry.source)
            if decoded is _FAILED:
                return
            value = decoded
        self._place(node, keys, names, value, entry.source, entry.loose)

    def _unknown(
        self, unknown: Unknown, names: Path, rest: tuple[str, ...], source: Source, from_text: bool
    ) -> Step | None:
        """Report or drop an unknown key; return a pass-through step when pydantic should see it."""
        key = dotted((*names, *rest))
        if self.strict or (unknown.extra == "forbid" and not from_text):
            if unknown.leaf:
                message = f"unknown key ({dotted(names)} is a value, not a section)"
            elif unknown.suggestion is not None:
                message = f"unknown key (did you mean {dotted((*names, unknown.suggestion))}?)"
            else:
                message = "unknown key"
            self.problems.append(Problem(key, message, source))
            return None
        if unknown.extra == "allow" and not unknown.leaf:
            return Step(rest[0], rest[0], OPAQUE)
        # Environment variables share a namespace with everything else the process runs, so an
        # unmatched one is ignored unless strict; file keys follow the model's own ``extra``.
        return None

    def _decode(self, node: Node, text: str, names: Path, source: Source) -> object:
        stripped = text.strip()
        if not node.decode:
            return text
        if node.kind in (Kind.MODEL, Kind.MAPPING):
            if not stripped:
                return {}
            return self._json(stripped, names, source, dict, 'a JSON object like {"key": "value"}')
        if node.kind is Kind.LEAF and node.sequence:
            if stripped.startswith("["):
                return self._json(stripped, names, source, list, "a JSON list or comma-separated values")
            return [part.strip() for part in text.split(",")] if stripped else []
        if node.annotation is timedelta and _SECONDS.fullmatch(stripped):
            # pydantic takes numbers as seconds but not numeric strings; buttress durations are
            # float seconds everywhere, so ``APP_HTTP__TIMEOUT=2.5`` means 2.5 seconds.
            return float(stripped)
        return text

    def _json(self, text: str, names: Path, source: Source, kind: type, expected: str) -> object:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            value = exc
        if not isinstance(value, kind):
            reason = (
                f": {value.msg} at column {value.colno}" if isinstance(value, json.JSONDecodeError) else ""
            )
            self.problems.append(Problem(dotted(names), f"must be {expected}{reason}", source))
            self.bad.add(names)
            return _FAILED
        return value

    def _place(self, node: Node, keys: Path, names: Path, value: object, source: Source, loose: bool) -> None:
        if isinstance(value, Mapping) and not isinstance(value, BaseModel) and node.kind is not Kind.LEAF:
            self._container(keys, names)
            for raw_key, item in value.items():
                key = str(raw_key)
                found = step(node, key, loose=loose)
                accepted = (
                    self._unknown(found, names, (key,), source, False)
                    if isinstance(found, Unknown)
                    else found
                )
                if accepted is not None:
                    self._place(
                        accepted.node, (*keys, accepted.key), (*names, accepted.name), item, source, loose
                    )
            return
        target = self._container(keys[:-1], names[:-1])
        target[keys[-1]] = value
        self._forget(names)
        self.provenance[names] = source

    def _container(self, keys: Path, names: Path) -> dict[str, Any]:
        """The dict at ``keys``, creating it (and replacing a non-table value) as needed."""
        current = self.data
        for depth, key in enumerate(keys):
            child = current.get(key)
            if not isinstance(child, dict):
                child = current[key] = {}
                self._forget(names[: depth + 1])
            current = child
        return current

    def _forget(self, names: Path) -> None:
        """Drop the provenance of ``names`` and everything beneath it: a new value replaced them."""
        size = len(names)
        for path in [path for path in self.provenance if path[:size] == names]:
            del self.provenance[path]


_FAILED: Any = object()
