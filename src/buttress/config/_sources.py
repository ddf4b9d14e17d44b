"""Reading the layers: config files (TOML, YAML, JSON), ``.env`` files and environment variables.

Each reader returns plain data plus :class:`~buttress.config.Problem` objects instead of raising,
so that one load can report every broken source at once. Parse errors name the file and line but
never quote the file's text, which may hold secrets.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buttress.config._errors import Problem
from buttress.config._provenance import Layer, Source

__all__ = ["SUFFIXES", "Entry", "env_entries", "parse_dotenv", "profile_path", "read_config_file"]

SUFFIXES = (".toml", ".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Entry:
    """One contribution of a layer, before it is resolved against the model.

    Attributes:
        keys: the key path it sets (``()`` for a whole file, whose mapping is walked).
        value: the value; a mapping is merged key by key.
        source: where it came from.
        text: the value is text from the environment or the command line and may be decoded
            (comma lists, JSON).
        loose: match field keys case-insensitively.
    """

    keys: tuple[str, ...]
    value: object
    source: Source
    text: bool = False
    loose: bool = False


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def profile_path(base: Path, profile: str) -> Path:
    """The overlay file for ``profile`` next to ``base``: ``config.toml`` -> ``config.dev.toml``.

    Example:
        >>> profile_path(Path("etc/config.toml"), "dev").as_posix()
        'etc/config.dev.toml'
    """
    return base.with_name(f"{base.stem}.{profile}{base.suffix}")


def read_config_file(path: Path, source: Source) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Read and parse one config file, chosen by its extension.

    Returns:
        The top-level mapping (``None`` when it could not be read), and the problems found.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        allowed = ", ".join(SUFFIXES)
        return None, [
            Problem(None, f"unsupported config file type {suffix or '(none)'!r} (use {allowed})", source)
        ]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(None, "config file does not exist", source)]
    except UnicodeDecodeError as exc:
        return None, [Problem(None, f"not valid UTF-8 (byte {exc.start})", source)]
    except OSError as exc:
        return None, [Problem(None, f"cannot read the config file ({exc.strerror or exc})", source)]
    if suffix == ".toml":
        return _parse_toml(text, source)
    if suffix == ".json":
        return _parse_json(text, source)
    return _parse_yaml(text, source)


def _at(source: Source, line: int | None) -> Source:
    return Source(source.layer, source.location, source.name, line)


def _parse_toml(text: str, source: Source) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        if match is None:
            return None, [Problem(None, f"invalid TOML: {message}", source)]
        detail = f"invalid TOML: {message[: match.start()]} (column {match.group(2)})"
        return None, [Problem(None, detail, _at(source, int(match.group(1))))]


def _parse_json(text: str, source: Source) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [Problem(None, f"invalid JSON: {exc.msg} (column {exc.colno})", _at(source, exc.lineno))]
    return _top_level(data, "JSON", source)


def _parse_yaml(text: str, source: Source) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        import yaml
    except ImportError:
        return None, [Problem(None, "reading YAML needs PyYAML: pip install 'buttress[yaml]'", source)]
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # str(exc) quotes the offending text; keep only the problem and its position.
        mark = exc.problem_mark
        column = f" (column {mark.column + 1})" if mark is not None else ""
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(None, f"invalid YAML: {exc.problem}{column}", _at(source, line))]
    except yaml.YAMLError as exc:
        return None, [Problem(None, f"invalid YAML: {type(exc).__name__}", source)]
    if data is None:
        return {}, []
    return _top_level(data, "YAML", source)


def _top_level(data: object, kind: str, source: Source) -> tuple[dict[str, Any] | None, list[Problem]]:
    if not isinstance(data, dict):
        return None, [Problem(None, f"invalid {kind}: the top level must be a mapping of keys", source)]
    return data, []


_DOTENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_INLINE_COMMENT = re.compile(r"\s#")


def _closing_quote(body: str, quote: str) -> int:
    if quote == "'":
        return body.find("'")
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            return index
        index += 1
    return -1


def parse_dotenv(text: str) -> tuple[list[tuple[str, str, int]], list[tuple[int, str]]]:
    """Parse a ``.env`` file into ``(name, value, line)`` triples.

    Behaviour: blank lines and ``#`` comments are skipped; ``export NAME=value`` is allowed;
    unquoted values end at a ``#`` preceded by whitespace and are stripped; single-quoted values
    are literal; double-quoted values understand ``\\n \\t \\r \\" \\\\ \\$``; quoted values may
    span lines. There is no ``${VAR}`` interpolation.

    Returns:
        The entries in file order and ``(line, message)`` for every malformed line.

    Example:
        >>> parse_dotenv('export A=1  # one\\nB="x\\\\ny"\\n')
        ([('A', '1', 1), ('B', 'x\\ny', 2)], [])
    """
    entries: list[tuple[str, str, int]] = []
    errors: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        lineno = index + 1
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith(("export ", "export\t")):
            stripped = stripped[len("export") :].lstrip()
        name, equals, rest = stripped.partition("=")
        name = name.strip()
        if not equals or not _DOTENV_KEY.fullmatch(name):
            errors.append((lineno, "expected NAME=value"))
            continue
        rest = rest.lstrip()
        if rest[:1] not in ("'", '"'):
            value = "" if rest.startswith("#") else _INLINE_COMMENT.split(rest, maxsplit=1)[0].strip()
            entries.append((name, value, lineno))
            continue
        quote, body = rest[0], rest[1:]
        parts: list[str] = []
        end = _closing_quote(body, quote)
        while end < 0 and index < len(lines):
            parts.append(body)
            body = lines[index]
            index += 1
            end = _closing_quote(body, quote)
        if end < 0:
            errors.append((lineno, f"unterminated {quote} quote"))
            continue
        parts.append(body[:end])
        after = body[end + 1 :].strip()
        if after and not after.startswith("#"):
            errors.append((lineno, "unexpected text after the closing quote"))
            continue
        value = "\n".join(parts)
        if quote == '"':
            value = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), value)
        entries.append((name, value, lineno))
    return entries, errors


def env_entries(
    variables: Iterable[tuple[str, str, Source]],
    prefix: str,
) -> list[Entry]:
    """Turn ``PREFIX_SECTION__KEY=value`` variables into entries with lower-cased key paths."""
    head = f"{prefix.upper()}_"
    entries: list[Entry] = []
    for name, value, source in variables:
        if not name.upper().startswith(head) or len(name) == len(head):
            continue
        keys = tuple(part.lower() for part in name[len(head) :].split("__"))
        entries.append(Entry(keys, value, source, text=True, loose=True))
    return entries


def environ_variables(environ: Mapping[str, str]) -> list[tuple[str, str, Source]]:
    """The process environment as ``(name, value, source)``, sorted by name for a stable order."""
    return [(name, environ[name], Source(Layer.ENV, name=name)) for name in sorted(environ)]
