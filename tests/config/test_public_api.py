"""The public surface of buttress.config."""

from __future__ import annotations

import buttress.config


def test_all_is_sorted_and_resolvable() -> None:
    assert buttress.config.__all__ == sorted(buttress.config.__all__)
    for name in buttress.config.__all__:
        assert getattr(buttress.config, name).__module__.startswith("buttress.config")
    assert set(buttress.config.__all__) == {
        "ConfigError", "Layer", "Loaded", "Problem", "Sections", "Source", "load", "load_sections",
    }  # fmt: skip


def test_config_error_is_a_configuration_error() -> None:
    from buttress.errors import ConfigurationError

    assert issubclass(buttress.config.ConfigError, ConfigurationError)
