"""Typed configuration: pydantic settings from defaults, files, profiles, ``.env``, the
environment, CLI flags and overrides, with per-value provenance and redacted secrets.

Needs the ``config`` extra (pydantic); YAML files need the ``yaml`` extra (PyYAML).
"""

from buttress.config._errors import ConfigError, Problem
from buttress.config._loaded import Loaded
from buttress.config._loader import load
from buttress.config._provenance import Layer, Source
from buttress.config._sections import Sections, load_sections

__all__ = ["ConfigError", "Layer", "Loaded", "Problem", "Sections", "Source", "load", "load_sections"]
