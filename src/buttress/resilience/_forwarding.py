"""Wrappers with the wrapped function's own parameters, for the decorators' hottest paths.

A generic ``def wrapper(*args, **kwargs): ... fn(*args, **kwargs)`` builds a tuple and a dict
on every call and unpacks them again: about a quarter of what a rate-limit decorator costs on
an admitted call. :func:`specialise` compiles a wrapper whose parameter list *is* ``fn``'s
(names, kinds and the very same default objects) and which forwards them one by one, as
:mod:`dataclasses` and ``attrs`` generate their methods. Where the signature cannot be read, or
uses a name reserved for the wrapper's own variables, the wrapper takes ``*args, **kwargs``: the
decorators write each hot path once, as a body for this module.

The source is registered with :mod:`linecache`, so tracebacks through a wrapper show its lines.
"""

from __future__ import annotations

import inspect
import linecache
import re
from collections.abc import Callable
from typing import Any

__all__ = ["awaiting", "specialise"]

_RESERVED = "_bt_"


# A callable whose signature cannot be read (or uses a reserved name) gets these.
_GENERIC: dict[str, Any] = {
    "params": f"*{_RESERVED}args, **{_RESERVED}kwargs",
    "{args}": f"*{_RESERVED}args, **{_RESERVED}kwargs",
    "{pack_args}": f"{_RESERVED}args",
    "{pack_kwargs}": f"{_RESERVED}kwargs",
    "defaults": {},
}


def _forwarding(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s parameter list, the ways of passing its parameters on, and its defaults."""
    try:
        # the callable's own signature, not the one a functools.wraps chain advertises
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return _GENERIC
    params: list[str] = []
    call: list[str] = []
    positional: list[str] = []
    keywords: list[str] = []
    defaults: dict[str, Any] = {}
    star = False
    positional_only = False
    for p in sig.parameters.values():
        name = p.name
        if name.startswith(_RESERVED) or not name.isidentifier():
            return _GENERIC
        if positional_only and p.kind is not p.POSITIONAL_ONLY:
            params.append("/")
            positional_only = False
        default = ""
        if p.default is not p.empty:
            slot = f"{_RESERVED}d{len(defaults)}"
            defaults[slot] = p.default
            default = f"={slot}"
        if p.kind is p.POSITIONAL_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
            positional_only = p.kind is p.POSITIONAL_ONLY
            params.append(name + default)
            call.append(name)
            positional.append(name)
        elif p.kind is p.VAR_POSITIONAL:
            star = True
            params.append(f"*{name}")
            call.append(f"*{name}")
            positional.append(f"*{name}")
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                star = True
                params.append("*")
            params.append(name + default)
            call.append(f"{name}={name}")
            keywords.append(f"{name!r}: {name}")
        else:  # VAR_KEYWORD
            params.append(f"**{name}")
            call.append(f"**{name}")
            keywords.append(f"**{name}")
    if positional_only:
        params.append("/")
    return {
        "params": ", ".join(params),
        "{args}": ", ".join(call),
        # a tuple and a dict with which fn(*args, **kwargs) makes the same call
        "{pack_args}": f"({', '.join(positional)},)" if positional else "()",
        "{pack_kwargs}": "{" + ", ".join(keywords) + "}",
        "defaults": defaults,
    }


def specialise(
    fn: Callable[..., Any], body: str, env: dict[str, Any], *, is_async: bool, exact: bool = True
) -> Callable[..., Any]:
    """A wrapper of ``fn`` running ``body`` with ``fn``'s own parameters.

    The wrapper takes ``*args, **kwargs`` instead where ``fn``'s signature cannot be read or
    uses a name starting with ``_bt_``, and always with ``exact=False`` (for a body that must
    pass the arguments on exactly as the caller wrote them).

    ``body`` is the wrapper's body, not indented. In it ``{args}`` stands for the arguments
    that pass the wrapper's parameters on (``a, b, *rest, c=c, **kw``), and ``{pack_args}`` /
    ``{pack_kwargs}`` for a tuple and a dict with which ``fn(*args, **kwargs)`` makes the same
    call (``(a, b, *rest,)`` and ``{'c': c, **kw}``), for a slow path that takes them so. The
    names of ``env`` (each starting with ``_bt_``) are closure variables of the wrapper.

    The compiled factory is cached by its source, which depends only on the body and the shape
    of the signature: decorating many functions (or one function many times) compiles each
    shape once, and keeps one :mod:`linecache` entry per shape.
    """
    found = _forwarding(fn) if exact else _GENERIC
    defaults: dict[str, Any] = found["defaults"]
    if not all(name.startswith(_RESERVED) for name in env):
        raise ValueError(f"wrapper variables must start with {_RESERVED!r}: {list(env)}")
    names = [*env, *defaults]
    lines = body
    for placeholder in ("{args}", "{pack_args}", "{pack_kwargs}"):
        lines = lines.replace(placeholder, found[placeholder])
    source = (
        f"def {_RESERVED}factory({', '.join(names)}):\n"
        f"  {'async def' if is_async else 'def'} wrapper({found['params']}):\n"
        + "".join(f"    {line}\n" for line in lines.splitlines())
        + "  return wrapper\n"
    )
    factory = _factories.get(source)
    if factory is None:
        filename = f"<buttress wrapper {len(_factories)}>"
        namespace: dict[str, Any] = {}
        exec(compile(source, filename, "exec"), {"__builtins__": __builtins__}, namespace)
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        factory = _factories.setdefault(source, namespace[f"{_RESERVED}factory"])
    return factory(*env.values(), *defaults.values())


_factories: dict[str, Callable[..., Callable[..., Any]]] = {}


def awaiting(body: str, *calls: str) -> str:
    """``body`` with ``await`` before every call of the names in ``calls``: the async twin of a
    sync wrapper body, kept in step with it by construction."""
    pattern = re.compile(rf"(?<![\w.])({'|'.join(map(re.escape, calls))})\(")
    return pattern.sub(r"await \1(", body)
