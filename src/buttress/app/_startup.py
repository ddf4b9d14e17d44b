"""The preparation steps of start-up: loading the modules' configuration, translating failures."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from buttress.app._errors import StartupError
from buttress.app._module import Module
from buttress.app._options import ConfigOptions
from buttress.di import ValidationError

if TYPE_CHECKING:
    from buttress.config import Loaded

__all__ = ["load_config", "prepare_errors"]


def load_config(options: ConfigOptions, prefix: str, modules: Mapping[str, Module]) -> Loaded[Any] | None:
    """Load the sections of ``modules`` (and ``options.base``) with ``options``' layers.

    An App without any settings model loads nothing (and needs no pydantic): ``None``.

    Raises:
        buttress.config.ConfigError: every problem, two modules claiming one section included.
    """
    claims = [(name, section, model) for name, m in modules.items() for section, model in m.sections.items()]
    if not claims and options.base is None:
        return None
    # imported here: an App without settings must not need pydantic
    from buttress.config import ConfigError, Problem, Sections, load_sections

    sections = Sections(base=options.base)
    problems: list[Problem] = []
    for owner, section, model in claims:
        try:
            sections.add(section, model, owner=owner)
        except ConfigError as error:
            problems += error.details
    if problems:
        raise ConfigError(problems, owner="sections")
    return load_sections(
        sections,
        prefix=prefix,
        file=options.file,
        profile=options.profile,
        env_file=options.env_file,
        environ=os.environ if options.environ is None else options.environ,
        cli=options.cli,
        flag_names=options.flag_names,
        overrides=options.overrides,
        strict=options.strict,
    )


def _config_error(error: BaseException) -> bool:
    config = sys.modules.get("buttress.config")
    return config is not None and isinstance(error, config.ConfigError)


@contextmanager
def prepare_errors(app: str, progress: Callable[[], tuple[str, str]]) -> Iterator[None]:
    """Turn a failure while preparing into a :class:`StartupError` for the current stage."""
    try:
        yield
    except StartupError:
        raise
    except Exception as error:
        stage, component = progress()
        if _config_error(error):
            lines = tuple(getattr(error, "problems", ()))
            count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
            raise StartupError(app, "config", "", f"invalid configuration ({count})",
                               problems=lines) from error  # fmt: skip
        if isinstance(error, ValidationError):
            lines = tuple(str(problem) for problem in error.problems)
            count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
            raise StartupError(app, "validate", "container", f"invalid dependency graph ({count})",
                               problems=lines) from error  # fmt: skip
        reason = f"{type(error).__name__}: {error}"
        if stage == "setup":
            raise StartupError(
                app, "setup", component, f"setup of module {component!r} failed: {reason}"
            ) from error
        if stage == "config":
            raise StartupError(app, "config", "", f"could not load the configuration: {reason}") from error
        raise StartupError(
            app, "validate", component, f"could not prepare the container: {reason}"
        ) from error
