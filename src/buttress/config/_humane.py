"""Turning pydantic's validation errors into one redacted, humane line per problem.

Pydantic reports ``loc`` in input keys (plus union-member tags) and puts the raw input into each
error. Here each ``loc`` is walked along the merged input to recover the attribute path, its
provenance and whether a secret lives there; inputs of secret fields are never shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import ErrorDetails

from buttress.config._errors import Problem
from buttress.config._merge import dotted
from buttress.config._provenance import DEFAULT_SOURCE, Layer, Source
from buttress.config._schema import OPAQUE, Kind, Node, Step, step

__all__ = ["REDACTED", "translate"]

REDACTED = "**********"
_MISSING: Any = object()
_TEXT_LAYERS = (Layer.DOTENV, Layer.ENV, Layer.CLI)
_LIMITS = {
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be greater than {}"),
}
_FIXED = {
    "bool_parsing": "must be a boolean (true/false, 1/0, yes/no, on/off)",
    "bool_type": "must be a boolean (true/false, 1/0, yes/no, on/off)",
    "extra_forbidden": "unknown key",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def _locate(loc: tuple[int | str, ...], data: object, root: Node) -> tuple[tuple[str, ...], list[str], bool]:
    """Walk ``loc`` along the input: the attribute path, the input keys, whether it is secret."""
    node, current = root, data
    names: list[str] = []
    keys: list[str] = []
    secret = False
    for part in loc:
        if isinstance(part, int) and isinstance(current, Sequence) and not isinstance(current, str):
            names.append(f"[{part}]")
            current = current[part] if 0 <= part < len(current) else _MISSING
            continue
        key = str(part)
        found = step(node, key, loose=False)
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif node.kind is Kind.MODEL and isinstance(found, Step):
            current = _MISSING
        else:
            continue  # a union member's tag, not a key
        if isinstance(found, Step):
            node = found.node
            names.append(found.name)
            keys.append(found.key)
        else:
            node = OPAQUE
            names.append(key)
            keys.append(key)
        if node.kind is not Kind.OPAQUE:
            secret = node.secret
    return tuple(names), keys, secret


def _source(names: tuple[str, ...], provenance: Mapping[tuple[str, ...], Source]) -> Source | None:
    for size in range(len(names), 0, -1):
        source = provenance.get(names[:size])
        if source is not None:
            return source
    return None


def _shown(value: object, source: Source | None, secret: bool) -> str | None:
    if value is _MISSING or isinstance(value, Mapping):
        return None
    if secret:
        return REDACTED
    if isinstance(value, str) and source is not None and source.layer in _TEXT_LAYERS:
        text = value
    else:
        text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _message(error: ErrorDetails, env_name: str) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"required, but not set (set it in a config file or as {env_name})"
    if kind in _LIMITS:
        name, template = _LIMITS[kind]
        return template.format(error.get("ctx", {}).get(name))
    if kind in _FIXED:
        return _FIXED[kind]
    message = error["msg"]
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if message.startswith("Input should"):
        message = "must" + message[len("Input should") :]
    return message[:1].lower() + message[1:]


def translate(
    errors: Sequence[ErrorDetails],
    *,
    data: Mapping[str, Any],
    root: Node,
    provenance: Mapping[tuple[str, ...], Source],
    skip: set[tuple[str, ...]],
    prefix: str,
) -> list[Problem]:
    """One :class:`Problem` per pydantic error, secrets redacted.

    Args:
        errors: ``ValidationError.errors()``.
        data: the merged input that was validated.
        root: the model's root level.
        provenance: attribute path -> source, as merged.
        skip: paths whose input already failed to decode (reported once, not twice).
        prefix: the environment prefix, to name the variable that would set a missing key.
    """
    problems: list[Problem] = []
    for error in errors:
        names, keys, secret = _locate(tuple(error["loc"]), data, root)
        if any(names[: len(bad)] == bad for bad in skip):
            continue
        source = _source(names, provenance)
        if source is None and error["type"] != "missing" and names:
            source = DEFAULT_SOURCE
        env_name = f"{prefix}_{'__'.join(keys).upper()}"
        message = _message(error, env_name)
        shown = None if error["type"] == "missing" else _shown(error.get("input", _MISSING), source, secret)
        if shown is not None:
            message = f"{message} (got {shown})"
        problems.append(Problem(dotted(names) if names else None, message, source))
    return problems
