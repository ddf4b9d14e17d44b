"""Config sections contributed by modules, assembled into one root settings model."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, Field, create_model

from buttress.config._errors import ConfigError, Problem
from buttress.config._loaded import Loaded
from buttress.config._loader import load

__all__ = ["Sections", "load_sections"]


def _is_model_class(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


class Sections:
    """A registry of config sections, each a pydantic model owned by one module.

    Behaviour: every section becomes a field of the root model built by :meth:`model`, named
    after the section and defaulting to the section's own defaults (validated, so a section
    with a required key reports ``http.url: required ...`` when nothing sets it). A section
    name can be claimed once: a second claim by another owner, or by the same owner with a
    different model, raises :class:`ConfigError` naming both owners. Registering the same model
    again under the same owner is a no-op.

    Args:
        base: an optional model whose fields sit at the top level beside the sections
            (``debug``, ``name``, ...).
        name: the root model's class name, shown in error messages.

    Example:
        >>> from pydantic import BaseModel
        >>> class Http(BaseModel):
        ...     port: int = 8000
        >>> sections = Sections()
        >>> sections.add("http", Http, owner="http-module")
        >>> loaded = load_sections(sections, env_file=None, environ={"APP_HTTP__PORT": "81"})
        >>> loaded.section("http", Http).port
        81
    """

    __slots__ = ("_base", "_built", "_models", "_name", "_owners")

    def __init__(self, *, base: type[BaseModel] | None = None, name: str = "Settings") -> None:
        self._base = base
        self._name = name
        self._models: dict[str, type[BaseModel]] = {}
        self._owners: dict[str, str] = {}
        self._built: type[BaseModel] | None = None

    def add(self, name: str, model: type[BaseModel], *, owner: str) -> None:
        """Claim section ``name`` for ``owner`` with settings ``model``.

        Raises:
            ConfigError: the name is not an identifier, collides with a field of ``base``, or is
                already claimed (the message names both owners).
        """
        problems: list[Problem] = []
        if not name.isidentifier() or name.startswith("_"):
            problems.append(
                Problem(name, f"section name must be an identifier not starting with '_' ({owner})")
            )
        elif self._base is not None and name in self._base.model_fields:
            problems.append(
                Problem(name, f"section of {owner!r} collides with a field of {self._base.__name__}")
            )
        elif name in self._owners:
            previous = self._owners[name]
            if previous == owner and self._models[name] is model:
                return
            problems.append(Problem(name, f"section claimed by both {previous!r} and {owner!r}"))
        if not _is_model_class(model):
            problems.append(
                Problem(name, f"section model of {owner!r} must be a pydantic BaseModel subclass")
            )
        if problems:
            raise ConfigError(problems, owner="sections")
        self._models[name] = model
        self._owners[name] = owner
        self._built = None

    def owner(self, name: str) -> str:
        """The owner of section ``name`` (``KeyError`` if unclaimed)."""
        return self._owners[name]

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        claims = ", ".join(f"{name}={owner!r}" for name, owner in self._owners.items())
        return f"Sections({claims})"

    def model(self) -> type[BaseModel]:
        """The root settings model: ``base``'s fields plus one field per section (cached)."""
        if self._built is None:
            fields: dict[str, Any] = {
                name: (section, Field(default_factory=dict, validate_default=True))
                for name, section in self._models.items()
            }
            self._built = create_model(self._name, __base__=self._base, **fields)
        return self._built


def load_sections(
    sections: Sections,
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
) -> Loaded[BaseModel]:
    """:func:`load` the root model of ``sections``; use :meth:`Loaded.section` for typed access.

    The arguments are those of :func:`load`.
    """
    return load(
        sections.model(),
        prefix=prefix,
        file=file,
        profile=profile,
        env_file=env_file,
        environ=environ,
        cli=cli,
        flag_names=flag_names,
        overrides=overrides,
        strict=strict,
    )
