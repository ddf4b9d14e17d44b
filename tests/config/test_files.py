"""Config files: TOML, YAML and JSON by extension; missing and unparsable files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buttress.config import ConfigError, Layer, Source, load
from tests.config.conftest import Write
from tests.config.models import Settings

SAME = {
    "config.toml": '[server]\nport = 81\ntags = ["a"]\n',
    "config.yaml": "server:\n  port: 81\n  tags: [a]\n",
    "config.yml": "server:\n  port: 81\n  tags:\n    - a\n",
    "config.json": '{"server": {"port": 81, "tags": ["a"]}}',
}


@pytest.mark.parametrize("name", sorted(SAME))
def test_each_format_gives_the_same_settings(write: Write, name: str) -> None:
    path = write(name, SAME[name])
    loaded = load(Settings, file=path, env_file=None, environ={})
    assert (loaded.settings.server.port, loaded.settings.server.tags) == (81, ["a"])
    assert loaded.provenance["server.port"] == Source(Layer.FILE, location=str(path))


def test_file_accepts_str_paths(write: Write) -> None:
    path = write("config.toml", "debug = true\n")
    assert load(Settings, file=str(path), env_file=None, environ={}).settings.debug is True


def test_empty_yaml_is_an_empty_mapping(write: Write) -> None:
    path = write("config.yaml", "# nothing here\n")
    assert load(Settings, file=path, env_file=None, environ={}).settings == Settings()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("config.toml", 'name = "x"\n[server\nport = 1\n', ", line 2: invalid TOML: "),
        (
            "config.json",
            '{\n  "name": "x",\n  "debug": tru\n}',
            ", line 3: invalid JSON: Expecting value (column 12)",
        ),
        ("config.yaml", "name: x\nserver:\n  port: 1\n   host: y\n", ", line 4: invalid YAML: "),
    ],
)
def test_parse_errors_name_the_file_and_line(write: Write, name: str, text: str, expected: str) -> None:
    path = write(name, text)
    with pytest.raises(ConfigError) as info:
        load(Settings, file=path, env_file=None, environ={})
    (problem,) = info.value.problems
    assert problem.startswith(f"file {path}{expected}")
    assert info.value.details[0].source is not None
    assert info.value.details[0].source.location == str(path)


def test_parse_errors_never_quote_the_file(write: Write) -> None:
    path = write("config.yaml", "password: hunter2\n  bad: [\n")
    with pytest.raises(ConfigError) as info:
        load(Settings, file=path, env_file=None, environ={})
    assert "hunter2" not in str(info.value)


def test_toml_error_without_position(monkeypatch: pytest.MonkeyPatch, write: Write) -> None:
    import tomllib

    def fail(text: str) -> object:
        raise tomllib.TOMLDecodeError("odd failure")

    monkeypatch.setattr(tomllib, "loads", fail)
    path = write("config.toml", "")
    with pytest.raises(ConfigError, match="invalid TOML: odd failure"):
        load(Settings, file=path, env_file=None, environ={})


def test_yaml_error_without_a_mark(monkeypatch: pytest.MonkeyPatch, write: Write) -> None:
    import yaml

    def fail(text: str) -> object:
        raise yaml.YAMLError("no position")

    monkeypatch.setattr(yaml, "safe_load", fail)
    path = write("config.yaml", "")
    with pytest.raises(ConfigError, match=r"invalid YAML: YAMLError$"):
        load(Settings, file=path, env_file=None, environ={})


def test_marked_yaml_error_without_a_problem_mark(monkeypatch: pytest.MonkeyPatch, write: Write) -> None:
    import yaml

    def fail(text: str) -> object:
        raise yaml.MarkedYAMLError(problem="strange")

    monkeypatch.setattr(yaml, "safe_load", fail)
    path = write("config.yaml", "")
    with pytest.raises(ConfigError) as info:
        load(Settings, file=path, env_file=None, environ={})
    assert info.value.problems == (f"file {path}: invalid YAML: strange",)


@pytest.mark.parametrize(
    ("name", "text"), [("config.json", "[1, 2]"), ("config.yaml", "- 1\n- 2\n"), ("config.yml", "just text")]
)
def test_top_level_must_be_a_mapping(write: Write, name: str, text: str) -> None:
    path = write(name, text)
    with pytest.raises(ConfigError, match="the top level must be a mapping of keys"):
        load(Settings, file=path, env_file=None, environ={})


def test_yaml_needs_pyyaml(monkeypatch: pytest.MonkeyPatch, write: Write) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    path = write("config.yaml", "debug: true\n")
    with pytest.raises(ConfigError, match=r"reading YAML needs PyYAML: pip install 'buttress\[yaml\]'"):
        load(Settings, file=path, env_file=None, environ={})


def test_explicit_base_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as info:
        load(Settings, file=missing, env_file=None, environ={})
    assert info.value.problems == (f"file {missing}: config file does not exist",)


def test_unsupported_extension_and_unreadable_files(write: Write, tmp_path: Path) -> None:
    ini = write("config.ini", "[x]\n")
    with pytest.raises(
        ConfigError, match=r"unsupported config file type '.ini' \(use .toml, .yaml, .yml, .json\)"
    ):
        load(Settings, file=ini, env_file=None, environ={})
    with pytest.raises(ConfigError, match=r"unsupported config file type '\(none\)'"):
        load(Settings, file=write("config", ""), env_file=None, environ={})
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load(Settings, file=tmp_path / "dir.toml", env_file=None, environ={})
    (tmp_path / "latin.toml").write_bytes(b'name = "\xe9"\n')
    with pytest.raises(ConfigError, match=r"not valid UTF-8 \(byte 8\)"):
        load(Settings, file=tmp_path / "latin.toml", env_file=None, environ={})


def test_broken_base_and_overlay_are_both_reported_without_validation_noise(write: Write) -> None:
    base = write("config.toml", "server = [\n")
    write("config.dev.toml", "{{{")
    with pytest.raises(ConfigError) as info:
        load(Settings, file=base, profile="dev", env_file=None, environ={"APP_SERVER__PORT": "0"})
    assert len(info.value.problems) == 2
    assert "profile 'dev' file" in info.value.problems[1]


def test_profile_needs_a_file_and_arguments_are_checked() -> None:
    with pytest.raises(ConfigError) as info:
        load(Settings, prefix="9bad", profile="../etc", env_file=None, environ={})
    assert info.value.problems == (
        "prefix: must be letters, digits and '_' (got '9bad')",
        "profile: must be letters, digits, '-' and '_' (got '../etc')",
        "profile: '../etc' needs a config file to sit next to",
    )
