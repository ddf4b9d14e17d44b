"""Keys (a type, optionally with a name), ``Named``, and reading dependencies from type hints."""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from buttress.di._errors import RegistrationError

Key = Hashable
"""A registration key: the type itself, or ``(type, name)`` for a named registration."""

_MANY_ORIGINS: Final = frozenset(
    {list, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection}
)
_GENERATOR_ORIGINS: Final = frozenset(
    {
        collections.abc.Iterator,
        collections.abc.Generator,
        collections.abc.Iterable,
        collections.abc.AsyncIterator,
        collections.abc.AsyncGenerator,
        collections.abc.AsyncIterable,
    }
)

ProviderKind = Literal["class", "function", "coroutine", "generator", "asyncgen", "instance"]


@dataclass(frozen=True, slots=True)
class Named:
    """Marks which named registration a parameter wants: ``db: Annotated[Db, Named("replica")]``.

    Example:
        >>> from typing import Annotated
        >>> from buttress.di import Container, Named
        >>> c = Container()
        >>> c.register(str, instance="primary")
        >>> c.register(str, instance="replica", name="replica")
        >>> def pick(dsn: Annotated[str, Named("replica")]) -> int:
        ...     return len(dsn)
        >>> c.register(int, pick)
        >>> c.resolve(int)
        7
    """

    name: str


def make_key(tp: Any, name: str | None) -> Key:
    """The dictionary key of ``tp`` registered under ``name`` (``None``: the unnamed registration)."""
    return tp if name is None else (tp, name)


def type_name(tp: Any) -> str:
    """A short, readable name of a type or of a generic alias (``Db``, ``list[Db]``)."""
    if isinstance(tp, type) and not get_args(tp):
        return _short(tp.__qualname__)
    text = repr(tp)
    return text.replace("typing.", "").replace("collections.abc.", "")


def key_name(key: Key) -> str:
    """The display name of a key: ``Db`` or ``Db[name='replica']``."""
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], str):
        return f"{type_name(key[0])}[name={key[1]!r}]"
    return type_name(key)


def callable_name(fn: object) -> str:
    """The display name of a provider (``make_db``, ``Db``)."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return _short(str(name)) if name else repr(fn)


def _short(qualname: str) -> str:
    # a class or function defined inside a function: its enclosing function's name is noise
    return qualname.rpartition("<locals>.")[2]


@dataclass(frozen=True, slots=True)
class Dependency:
    """One parameter of a provider, read from its type hint.

    Attributes:
        param: the parameter's name.
        key: the key it asks for (for ``list[T]`` the element's key).
        annotation: the hint without ``Annotated`` and ``| None`` (``list[Db]`` for a group).
        many: ``list[T]`` / ``Sequence[T]``: every registration of ``T``, in registration order.
        optional: ``T | None``: ``None`` when nothing is registered.
        has_default: the parameter has a default, used when nothing is registered.
        keyword: passed by keyword (keyword-only parameters).
        name: the ``Named`` name, if any.
    """

    param: str
    key: Key
    annotation: Any
    many: bool
    optional: bool
    has_default: bool
    keyword: bool
    name: str | None = None


def parse_annotation(annotation: Any) -> tuple[Any, str | None, bool, bool]:
    """Split a hint into ``(type, name, many, optional)``.

    ``Annotated`` metadata gives the name, ``T | None`` makes it optional, ``list[T]`` (or
    ``Sequence``/``Iterable``/``Collection``) asks for the whole group of ``T``.
    """
    name: str | None = None
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            for meta in annotation.__metadata__:
                if isinstance(meta, Named):
                    name = meta.name
            annotation = annotation.__origin__
            continue
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) == 1 and len(get_args(annotation)) == 2:
                optional = True
                annotation = args[0]
                continue
        break
    many = get_origin(annotation) in _MANY_ORIGINS and len(get_args(annotation)) == 1
    return annotation, name, many, optional


def _signature(provider: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(provider, eval_str=True)
    except NameError as exc:
        raise RegistrationError(f"cannot read the type hints of {callable_name(provider)}: {exc}") from exc
    except ValueError as exc:
        raise RegistrationError(f"cannot read the signature of {callable_name(provider)}: {exc}") from exc


def _evaluate(provider: Callable[..., Any], param: str, text: str) -> Any:
    """A string hint that ``inspect`` left unevaluated (a class's ``__init__``): evaluate it now."""
    function = getattr(provider, "__init__", provider) if inspect.isclass(provider) else provider
    namespace = getattr(function, "__globals__", {})
    try:
        return eval(text, namespace)
    except NameError as exc:
        raise RegistrationError(
            f"cannot read the type hints of {callable_name(provider)}: parameter {param!r}: {exc}"
        ) from exc


def provider_kind(provider: Callable[..., Any]) -> ProviderKind:
    """What calling ``provider`` gives: an instance, a coroutine, a generator or an async generator."""
    if inspect.isclass(provider):
        return "class"
    if inspect.isasyncgenfunction(provider):
        return "asyncgen"
    if inspect.isgeneratorfunction(provider):
        return "generator"
    if inspect.iscoroutinefunction(provider):
        return "coroutine"
    return "function"


def dependencies(provider: Callable[..., Any]) -> tuple[Dependency, ...]:
    """The injectable parameters of ``provider`` (a function, or a class's ``__init__``).

    Raises:
        RegistrationError: a parameter has neither a type hint nor a default, or a hint names
            something undefined.
    """
    found: list[Dependency] = []
    for param in _signature(provider).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        has_default = param.default is not param.empty
        if param.annotation is param.empty:
            if has_default:
                continue
            raise RegistrationError(
                f"parameter {param.name!r} of {callable_name(provider)} has no type hint and no default, "
                "so it cannot be injected"
            )
        annotation = param.annotation
        if isinstance(annotation, str):
            annotation = _evaluate(provider, param.name, annotation)
        tp, name, many, optional = parse_annotation(annotation)
        element = get_args(tp)[0] if many else tp
        found.append(
            Dependency(
                param=param.name,
                key=make_key(element, name),
                annotation=tp,
                many=many,
                optional=optional,
                has_default=has_default,
                keyword=param.kind is param.KEYWORD_ONLY,
                name=name,
            )
        )
    return tuple(found)


def provided_type(provider: Callable[..., Any]) -> Any:
    """The type a provider function returns, read from its return hint (``Iterator[T]`` gives ``T``).

    Raises:
        RegistrationError: the provider has no return hint.
    """
    if inspect.isclass(provider):
        return provider
    annotation = _signature(provider).return_annotation
    if annotation is inspect.Signature.empty:
        raise RegistrationError(
            f"{callable_name(provider)} has no return type hint; pass the type: register(T, provider)"
        )
    kind = provider_kind(provider)
    if kind in ("generator", "asyncgen") and get_origin(annotation) in _GENERATOR_ORIGINS:
        return get_args(annotation)[0]
    return annotation


def is_type_like(obj: object) -> bool:
    """Whether ``obj`` is meant as a key (a class, a generic alias, ``Annotated``), not a provider."""
    return isinstance(obj, type) or get_origin(obj) is not None or isinstance(obj, typing.TypeVar)
