"""Walking a pydantic model's shape: which keys a level accepts, what a leaf's type is.

The loader needs this before validation, to resolve case-insensitive environment variable names
to field keys, to decide how to decode a string (comma list, JSON) and to name unknown keys with a
suggestion. Pydantic itself validates; this module only reads field annotations.
"""

from __future__ import annotations

import collections
import collections.abc
import difflib
import enum
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel, Secret, SecretBytes, SecretStr
from pydantic.fields import FieldInfo

__all__ = ["Kind", "Node", "Step", "Unknown", "contains_secret", "model_node", "node_for", "step"]

Extra = Literal["allow", "forbid", "ignore"]

_SEQUENCES = (list, tuple, set, frozenset, collections.deque, collections.abc.Sequence,
              collections.abc.MutableSequence, collections.abc.Set, collections.abc.MutableSet)  # fmt: skip
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping, collections.OrderedDict)
_SECRETS = (SecretStr, SecretBytes, Secret)


class Kind(enum.Enum):
    """How a level of the settings tree takes keys."""

    MODEL = "model"  # named fields
    MAPPING = "mapping"  # any key, one value type
    LEAF = "leaf"  # a value; dicts beneath it are the value itself
    OPAQUE = "opaque"  # unknown shape (extra keys, Any): keys pass through unchecked


@dataclass(frozen=True, slots=True)
class Node:
    """One level of the settings tree.

    Attributes:
        kind: how the level takes keys.
        annotation: the (unwrapped) type at this level.
        model: the model class for ``Kind.MODEL``.
        value: the value annotation for ``Kind.MAPPING``.
        sequence: a list-like leaf, so an environment string is split on commas.
        decode: whether environment strings may be decoded (off for pydantic-settings' ``NoDecode``).
        secret: the type holds a secret somewhere inside it.
    """

    kind: Kind
    annotation: Any = None
    model: type[BaseModel] | None = None
    value: Any = None
    sequence: bool = False
    decode: bool = True
    secret: bool = False


OPAQUE = Node(Kind.OPAQUE)


@dataclass(frozen=True, slots=True)
class Step:
    """A key accepted at a level: the input key pydantic reads, the attribute name, the child level."""

    key: str
    name: str
    node: Node


@dataclass(frozen=True, slots=True)
class Unknown:
    """A key a level does not accept.

    Attributes:
        extra: the model's ``extra`` policy (what pydantic would do with it).
        suggestion: the closest accepted key, for "did you mean".
        leaf: the level is a plain value, not a section.
    """

    extra: Extra
    suggestion: str | None = None
    leaf: bool = False


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` and ``Optional``; return the core type and collected metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            metadata.extend(annotation.__metadata__)
            annotation = annotation.__origin__
            continue
        if origin is Union or origin is types.UnionType:
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _no_decode(metadata: list[Any]) -> bool:
    # pydantic-settings' ``NoDecode`` marker, recognised by name so that it need not be imported.
    return any(getattr(item, "__name__", type(item).__name__) == "NoDecode" for item in metadata)


def contains_secret(annotation: Any, _seen: frozenset[type] = frozenset()) -> bool:
    """Whether a type is, or contains anywhere (items, values, nested models), a pydantic secret.

    Example:
        >>> from pydantic import SecretStr
        >>> contains_secret(list[SecretStr] | None), contains_secret(dict[str, int])
        (True, False)
    """
    core, _ = _unwrap(annotation)
    if isinstance(core, type) and issubclass(core, _SECRETS):
        return True
    if typing.get_origin(core) is Secret:
        return True
    if _is_model(core):
        if core in _seen:
            return False
        seen = _seen | {core}
        return any(contains_secret(field.annotation, seen) for field in core.model_fields.values())
    return any(contains_secret(arg, _seen) for arg in typing.get_args(core) if not isinstance(arg, str | int))


def node_for(annotation: Any, metadata: list[Any] | None = None) -> Node:
    """The tree level for a field annotation."""
    core, extra_metadata = _unwrap(annotation)
    meta = [*(metadata or ()), *extra_metadata]
    secret = contains_secret(core)
    if _is_model(core):
        return Node(Kind.MODEL, core, model=core, secret=secret)
    origin = typing.get_origin(core) or core
    if isinstance(origin, type) and origin in _MAPPINGS:
        args = typing.get_args(core)
        return Node(Kind.MAPPING, core, value=args[1] if len(args) == 2 else Any, secret=secret)
    if core is Any:
        return Node(Kind.OPAQUE, core)
    sequence = isinstance(origin, type) and origin in _SEQUENCES and origin is not str
    return Node(Kind.LEAF, core, sequence=sequence, decode=not _no_decode(meta), secret=secret)


def model_node(model: type[BaseModel]) -> Node:
    """The root level for a settings model."""
    return Node(Kind.MODEL, model, model=model, secret=contains_secret(model))


@dataclass(frozen=True, slots=True)
class _Fields:
    exact: dict[str, tuple[str, str, FieldInfo]]
    folded: dict[str, tuple[str, str, FieldInfo]]
    extra: Extra


@functools.lru_cache(maxsize=512)
def _fields(model: type[BaseModel]) -> _Fields:
    config = model.model_config
    by_name = bool(config.get("validate_by_name") or config.get("populate_by_name"))
    by_alias = config.get("validate_by_alias", True) is not False
    exact: dict[str, tuple[str, str, FieldInfo]] = {}
    for name, info in model.model_fields.items():
        aliases: list[str] = []
        validation_alias = info.validation_alias
        if isinstance(validation_alias, str):
            aliases.append(validation_alias)
        elif validation_alias is not None:
            # AliasChoices: each plain-string choice is accepted; AliasPath entries are not keys.
            choices = getattr(validation_alias, "choices", ())
            aliases.extend(choice for choice in choices if isinstance(choice, str))
        keys = aliases if by_alias else []
        if by_name or not keys:
            keys = [*keys, name]
        for key in keys:
            exact.setdefault(key, (key, name, info))
    folded: dict[str, tuple[str, str, FieldInfo]] = {}
    for key, entry in exact.items():
        folded.setdefault(key.casefold(), entry)
    extra = config.get("extra") or "ignore"
    return _Fields(exact, folded, extra)


def step(node: Node, key: str, *, loose: bool) -> Step | Unknown:
    """Go one key down from ``node``.

    Args:
        node: the current level.
        key: the key to take.
        loose: match field keys case-insensitively (environment variables, CLI flags, overrides).

    Returns:
        The accepted :class:`Step`, or :class:`Unknown` describing why the key is not accepted.
    """
    if node.kind is Kind.MAPPING:
        return Step(key, key, node_for(node.value))
    if node.kind is Kind.OPAQUE:
        return Step(key, key, OPAQUE)
    if node.kind is Kind.LEAF or node.model is None:
        return Unknown("ignore", leaf=True)
    fields = _fields(node.model)
    entry = fields.exact.get(key)
    if entry is None and loose:
        entry = fields.folded.get(key.casefold())
    if entry is None:
        candidates = list(fields.exact)
        probe = key
        if loose:
            candidates = [candidate.casefold() for candidate in candidates]
            probe = key.casefold()
        close = difflib.get_close_matches(probe, candidates, n=1, cutoff=0.6)
        suggestion = (
            next((c for c in fields.exact if c.casefold() == close[0].casefold()), None) if close else None
        )
        return Unknown(fields.extra, suggestion)
    input_key, name, info = entry
    return Step(input_key, name, node_for(info.annotation, list(info.metadata)))
