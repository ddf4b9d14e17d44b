"""``load``: every layer merged into one input with a parallel provenance map, validated once."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from buttress.config._errors import ConfigError, Problem
from buttress.config._humane import translate
from buttress.config._loaded import Loaded, leaves
from buttress.config._merge import Merger
from buttress.config._provenance import DEFAULT_SOURCE, Layer, Source
from buttress.config._schema import model_node
from buttress.config._sources import (
    Entry,
    env_entries,
    environ_variables,
    parse_dotenv,
    profile_path,
    read_config_file,
)

__all__ = ["load"]

M = TypeVar("M", bound=BaseModel)

_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@functools.lru_cache(maxsize=128)
def _validating_class(model: type[BaseModel]) -> type[BaseModel]:
    """The class to validate with: ``model`` itself, or for a pydantic-settings ``BaseSettings``
    a subclass whose own sources are switched off, since our layers replace them."""
    if not any(cls.__module__.startswith("pydantic_settings") for cls in model.__mro__):
        return model

    def settings_customise_sources(
        cls: type[Any], /, settings_cls: type[Any], init_settings: Any, **_: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)

    namespace = {"settings_customise_sources": classmethod(settings_customise_sources)}
    return type(model.__name__, (model,), {"__module__": model.__module__, **namespace})


def load(
    model: type[M],
    *,
    prefix: str = "APP",
    file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    env_file: str | os.PathLike[str] | None = ".env",
    environ: Mapping[str, str] = os.environ,
    cli: Mapping[str, object] | None = None,
    flag_names: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    strict: bool = False,
) -> Loaded[M]:
    """Load typed settings from every layer, in rising precedence.

    Layers: model defaults < ``file`` (TOML, YAML or JSON by extension) < the profile overlay
    next to it (``config.dev.toml`` for profile ``"dev"``, optional) < ``env_file`` (optional) <
    ``environ`` variables ``PREFIX_SECTION__KEY`` < ``cli`` < ``overrides``. Tables merge key by
    key; any other value, lists included, replaces the lower layer's. Environment and CLI keys
    match field names case-insensitively; environment and CLI *strings* for list fields are split
    on commas unless they start with ``[`` (then JSON), and a whole table may be given as a JSON
    object. The merged input is validated once by pydantic, so coercion is pydantic's.

    Args:
        model: the settings model (a pydantic ``BaseModel``; a ``BaseSettings`` works too, with
            its own sources switched off).
        prefix: environment variable prefix, without the trailing ``_``.
        file: the base config file; when given it must exist.
        profile: the profile whose overlay file is merged over ``file``; needs ``file``.
        env_file: a ``.env`` file read if it exists (relative to the working directory), or
            ``None``.
        environ: the environment to read (inject a dict in tests).
        cli: dotted keys (``"server.port"``) to values, as the CLI parsed them; ``None`` values
            mean "flag not given" and are skipped.
        flag_names: dotted key -> the flag as the user typed it (``"--http-port"``), for
            provenance and messages; defaults to ``--<dotted key>``.
        overrides: dotted keys or nested mappings to values, highest precedence.
        strict: reject unknown keys from every layer (environment variables with the prefix
            included) instead of ignoring them.

    Returns:
        The validated settings with the provenance of every value.

    Raises:
        ConfigError: listing every problem at once: files that are missing or do not parse,
            unknown keys (strict), undecodable values, and every validation error.

    Example:
        >>> from pydantic import BaseModel
        >>> class Settings(BaseModel):
        ...     port: int = 8000
        ...     debug: bool = False
        >>> loaded = load(Settings, env_file=None, environ={"APP_PORT": "9000"})
        >>> loaded.settings.port, str(loaded.provenance["port"]), str(loaded.provenance["debug"])
        (9000, 'env APP_PORT', 'default')
    """
    argument_problems: list[Problem] = []
    prefix = prefix.rstrip("_")
    if not _PREFIX.fullmatch(prefix):
        argument_problems.append(Problem("prefix", f"must be letters, digits and '_' (got {prefix!r})"))
    if profile is not None and not _PROFILE.fullmatch(profile):
        argument_problems.append(
            Problem("profile", f"must be letters, digits, '-' and '_' (got {profile!r})")
        )
    if profile is not None and file is None:
        argument_problems.append(Problem("profile", f"{profile!r} needs a config file to sit next to"))
    if argument_problems:
        raise ConfigError(argument_problems, owner=model.__name__)

    root = model_node(model)
    merger = Merger(root, strict=strict)
    files: list[Path] = []
    unreadable = False

    def read(path: Path, source: Source) -> None:
        nonlocal unreadable
        data, problems = read_config_file(path, source)
        merger.problems.extend(problems)
        if data is None:
            unreadable = True
        else:
            files.append(path)
            merger.add(Entry((), data, source))

    if file is not None:
        base = Path(file)
        read(base, Source(Layer.FILE, location=str(base)))
        if profile is not None:
            overlay = profile_path(base, profile)
            if overlay.exists():
                read(overlay, Source(Layer.PROFILE, location=str(overlay), name=profile))

    if env_file is not None:
        dotenv = Path(env_file)
        where = Source(Layer.DOTENV, location=str(dotenv))
        try:
            text = dotenv.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeError) as exc:
            text = None
            unreadable = True
            merger.problems.append(Problem(None, f"cannot read the env file ({exc})", where))
        if text is not None:
            entries, errors = parse_dotenv(text)
            for line, message in errors:
                unreadable = True
                merger.problems.append(Problem(None, message, Source(Layer.DOTENV, str(dotenv), line=line)))
            variables = [
                (name, value, Source(Layer.DOTENV, str(dotenv), name, line)) for name, value, line in entries
            ]
            for entry in env_entries(variables, prefix):
                merger.add(entry)

    for entry in env_entries(environ_variables(environ), prefix):
        merger.add(entry)
    names = flag_names or {}
    for key, value in (cli or {}).items():
        if value is not None:
            source = Source(Layer.CLI, name=names.get(key, f"--{key}"))
            merger.add(Entry(tuple(key.split(".")), value, source, text=isinstance(value, str), loose=True))
    for key, value in (overrides or {}).items():
        merger.add(Entry(tuple(key.split(".")), value, Source(Layer.OVERRIDE, name=key), loose=True))

    if unreadable:
        # Validating without a broken layer would add misleading "required" errors.
        raise ConfigError(merger.problems, owner=model.__name__)
    try:
        settings = cast(M, _validating_class(model).model_validate(merger.data))
    except ValidationError as exc:
        problems = translate(
            exc.errors(include_url=False),
            data=merger.data,
            root=root,
            provenance=merger.provenance,
            skip=merger.bad,
            prefix=prefix.upper(),
        )
        # ``from None``: the pydantic error quotes raw inputs, secrets included.
        raise ConfigError([*merger.problems, *problems], owner=model.__name__) from None
    if merger.problems:
        raise ConfigError(merger.problems, owner=model.__name__)
    provenance: dict[str, Source] = {}
    for path, _ in leaves(settings.model_dump(mode="python")):
        source = DEFAULT_SOURCE
        for size in range(len(path), 0, -1):
            found = merger.provenance.get(path[:size])
            if found is not None:
                source = found
                break
        provenance[".".join(path)] = source
    return Loaded(settings, provenance, tuple(files))
