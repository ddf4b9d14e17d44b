"""Every layer, the precedence order between them, and the provenance each one records."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from buttress.config import Layer, Source, load
from tests.config.conftest import Write
from tests.config.models import Settings

# Each layer sets server.port to its own value; the highest layer present must win.
PORTS = {
    Layer.FILE: 8001,
    Layer.PROFILE: 8002,
    Layer.DOTENV: 8003,
    Layer.ENV: 8004,
    Layer.CLI: 8005,
    Layer.OVERRIDE: 8006,
}
SUBSETS = [
    frozenset(combo) for size in range(len(PORTS) + 1) for combo in itertools.combinations(PORTS, size)
]


def _load_with(layers: frozenset[Layer], tmp_path: Path) -> Any:
    base = tmp_path / "config.toml"
    base.write_text(f"[server]\nport = {PORTS[Layer.FILE]}\n" if Layer.FILE in layers else "")
    if Layer.PROFILE in layers:
        (tmp_path / "config.dev.toml").write_text(f"[server]\nport = {PORTS[Layer.PROFILE]}\n")
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"APP_SERVER__PORT={PORTS[Layer.DOTENV]}\n" if Layer.DOTENV in layers else "")
    return load(
        Settings,
        file=base,
        profile="dev",
        env_file=dotenv,
        environ={"APP_SERVER__PORT": str(PORTS[Layer.ENV])} if Layer.ENV in layers else {},
        cli={"server.port": str(PORTS[Layer.CLI])} if Layer.CLI in layers else {},
        overrides={"server.port": PORTS[Layer.OVERRIDE]} if Layer.OVERRIDE in layers else {},
    )


@pytest.mark.parametrize("layers", SUBSETS, ids=lambda s: "+".join(sorted(s)) or "defaults")
def test_highest_layer_present_wins(layers: frozenset[Layer], tmp_path: Path) -> None:
    loaded = _load_with(layers, tmp_path)
    winner = max(layers, key=lambda layer: layer.rank, default=Layer.DEFAULT)
    assert loaded.settings.server.port == PORTS.get(winner, 8000)
    assert loaded.provenance["server.port"].layer is winner


def test_layer_ranks_follow_the_documented_order() -> None:
    order = ["default", "file", "profile", "dotenv", "env", "cli", "override"]
    assert sorted(Layer, key=lambda layer: layer.rank) == [Layer(name) for name in order]


def test_provenance_names_the_exact_place_for_each_layer(write: Write, tmp_path: Path) -> None:
    base = write("config.toml", '[server]\nhost = "file-host"\n')
    overlay = write("config.dev.toml", "[db]\npool = 7\n")
    dotenv = write(".env", "# comment\n\nAPP_NAME=from-dotenv\n")
    loaded = load(
        Settings,
        file=base,
        profile="dev",
        env_file=dotenv,
        environ={"APP_DEBUG": "true", "OTHER": "x"},
        cli={"server.timeout": "1.5"},
        flag_names={"server.timeout": "--timeout"},
        overrides={"db.url": "pg://override"},
    )
    prov = loaded.provenance
    assert prov["server.host"] == Source(Layer.FILE, location=str(base))
    assert prov["db.pool"] == Source(Layer.PROFILE, location=str(overlay), name="dev")
    assert prov["name"] == Source(Layer.DOTENV, location=str(dotenv), name="APP_NAME", line=3)
    assert prov["debug"] == Source(Layer.ENV, name="APP_DEBUG")
    assert prov["server.timeout"] == Source(Layer.CLI, name="--timeout")
    assert prov["db.url"] == Source(Layer.OVERRIDE, name="db.url")
    assert prov["server.port"] == Source(Layer.DEFAULT)
    assert str(prov["name"]) == f"APP_NAME in {dotenv}, line 3"
    assert str(prov["db.pool"]) == f"profile 'dev' file {overlay}"
    assert str(prov["server.timeout"]) == "flag --timeout"
    assert str(prov["db.url"]) == "override db.url"
    assert str(prov["server.port"]) == "default"
    assert loaded.files == (base, overlay)
    # Every effective leaf has a provenance entry, in field order.
    assert list(prov) == ["debug", "name", "root", "server.host", "server.port", "server.timeout",
                          "server.tags", "db.url", "db.password", "db.pool", "labels"]  # fmt: skip


def test_defaults_only(tmp_path: Path) -> None:
    loaded = load(Settings, env_file=None, environ={})
    assert loaded.settings == Settings()
    assert {source.layer for source in loaded.provenance.values()} == {Layer.DEFAULT}
    assert loaded.files == ()


def test_tables_merge_key_by_key_and_lists_replace(write: Write) -> None:
    base = write("config.toml", '[server]\nhost = "a"\ntags = ["x", "y"]\n[labels]\nteam = "core"\n')
    write("config.prod.toml", '[server]\ntags = ["z"]\n[labels]\ntier = "1"\n')
    loaded = load(Settings, file=base, profile="prod", env_file=None, environ={})
    assert loaded.settings.server.host == "a"
    assert loaded.settings.server.tags == ["z"]
    assert loaded.settings.labels == {"team": "core", "tier": "1"}
    assert loaded.provenance["labels.team"].layer is Layer.FILE
    assert loaded.provenance["labels.tier"].layer is Layer.PROFILE


def test_profile_overlay_is_optional(write: Write) -> None:
    base = write("config.toml", "debug = true\n")
    loaded = load(Settings, file=base, profile="staging", env_file=None, environ={})
    assert loaded.settings.debug is True
    assert loaded.files == (base,)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_profile_overlay_keeps_the_base_file_type(write: Write, suffix: str) -> None:
    text = {".yaml": "debug: true\n", ".json": '{"debug": true}'}[suffix]
    base = write(f"config{suffix}", '{"name": "base"}')
    overlay = write(f"config.dev{suffix}", text)
    loaded = load(Settings, file=base, profile="dev", env_file=None, environ={})
    assert (loaded.settings.name, loaded.settings.debug) == ("base", True)
    assert loaded.provenance["debug"].location == str(overlay)


def test_env_nesting_and_case_insensitive_keys() -> None:
    environ = {
        "app_server__HOST": "h",
        "APP_Db__Pool": "9",
        "APP_LABELS__Team": "core",
        "APPX_DEBUG": "true",  # another prefix
        "APP_": "ignored",
    }
    loaded = load(Settings, env_file=None, environ=environ)
    assert loaded.settings.server.host == "h"
    assert loaded.settings.db.pool == 9
    # Keys of a dict field are lower-cased like the rest of the variable.
    assert loaded.settings.labels == {"team": "core"}
    assert loaded.settings.debug is False
    assert loaded.provenance["db.pool"].name == "APP_Db__Pool"


@pytest.mark.parametrize("prefix", ["SVC", "svc", "SVC_"])
def test_prefix_is_case_insensitive_and_may_end_with_underscore(prefix: str) -> None:
    loaded = load(Settings, prefix=prefix, env_file=None, environ={"SVC_NAME": "x"})
    assert loaded.settings.name == "x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b , c", ["a", "b", "c"]),
        ('["a", "b,c"]', ["a", "b,c"]),
        ("", []),
        ("  ", []),
        ("single", ["single"]),
    ],
)
def test_list_syntax_from_env(text: str, expected: list[str]) -> None:
    loaded = load(Settings, env_file=None, environ={"APP_SERVER__TAGS": text})
    assert loaded.settings.server.tags == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("yes", True), ("no", False),
     ("ON", True), ("off", False)],
)  # fmt: skip
def test_bools_from_env(text: str, expected: bool) -> None:
    assert load(Settings, env_file=None, environ={"APP_DEBUG": text}).settings.debug is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2.5", timedelta(seconds=2.5)), ("30", timedelta(seconds=30)), ("PT1M", timedelta(minutes=1)),
     ("01:00:00", timedelta(hours=1)), ("1e1", timedelta(seconds=10))],
)  # fmt: skip
def test_durations_from_env(text: str, expected: timedelta) -> None:
    loaded = load(Settings, env_file=None, environ={"APP_SERVER__TIMEOUT": text})
    assert loaded.settings.server.timeout == expected


def test_paths_from_env_and_file(write: Write) -> None:
    base = write("config.toml", 'root = "/etc/svc"\n')
    assert load(Settings, file=base, env_file=None, environ={}).settings.root == Path("/etc/svc")
    loaded = load(Settings, env_file=None, environ={"APP_ROOT": "/var/svc"})
    assert loaded.settings.root == Path("/var/svc")


def test_whole_table_from_env_as_json() -> None:
    loaded = load(
        Settings, env_file=None, environ={"APP_SERVER": '{"host": "j", "port": 81}', "APP_LABELS": ""}
    )
    assert (loaded.settings.server.host, loaded.settings.server.port) == ("j", 81)
    assert loaded.provenance["server.host"] == Source(Layer.ENV, name="APP_SERVER")
    assert loaded.settings.labels == {}


def test_a_more_specific_variable_beats_a_json_table_regardless_of_name_order() -> None:
    environ = {"APP_SERVER__PORT": "82", "APP_SERVER": '{"port": 81, "host": "j"}'}
    loaded = load(Settings, env_file=None, environ=environ)
    # Variables apply in name order: APP_SERVER then APP_SERVER__PORT.
    assert (loaded.settings.server.port, loaded.settings.server.host) == (82, "j")
    assert loaded.provenance["server.port"].name == "APP_SERVER__PORT"


def test_cli_dotted_keys_strings_are_decoded_and_none_means_not_given() -> None:
    loaded = load(
        Settings,
        env_file=None,
        environ={"APP_SERVER__PORT": "9000"},
        cli={"server.port": None, "Server.Tags": "a,b", "db.pool": 3, "debug": True},
    )
    assert loaded.settings.server.port == 9000
    assert loaded.provenance["server.port"].layer is Layer.ENV
    assert loaded.settings.server.tags == ["a", "b"]
    assert loaded.settings.db.pool == 3
    assert loaded.provenance["server.tags"] == Source(Layer.CLI, name="--Server.Tags")


def test_overrides_accept_dotted_keys_nested_mappings_and_models() -> None:
    from tests.config.models import Server

    loaded = load(
        Settings,
        env_file=None,
        environ={},
        overrides={"db": {"pool": 11}, "labels.team": "x", "server": Server(host="m")},
    )
    assert loaded.settings.db.pool == 11
    assert loaded.settings.labels == {"team": "x"}
    assert loaded.settings.server.host == "m"
    # A model given whole is one value: its fields all come from that override.
    assert loaded.provenance["server.port"] == Source(Layer.OVERRIDE, name="server")


def test_a_later_scalar_replaces_a_table_and_forgets_its_provenance() -> None:
    class Loose(BaseModel):
        extra: Any = None

    loaded = load(Loose, env_file=None, environ={}, overrides={"extra": {"a": 1}})
    assert loaded.provenance["extra.a"].name == "extra"
    loaded = load(Loose, env_file=None, environ={"APP_EXTRA__A": "1"}, overrides={"extra": 5})
    assert loaded.settings.extra == 5
    assert list(loaded.provenance) == ["extra"]
    loaded = load(Loose, env_file=None, environ={}, overrides={"extra": 5, "extra.b": 2})
    assert loaded.settings.extra == {"b": 2}


def test_aliases_are_matched_and_provenance_uses_field_names() -> None:
    from pydantic import ConfigDict, Field

    class Aliased(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        log_level: str = Field("info", alias="logLevel")

    class ByName(BaseModel):
        model_config = ConfigDict(validate_by_alias=False, validate_by_name=True)
        level: str = Field("info", alias="lvl")

    class Choices(BaseModel):
        level: str = Field("info", validation_alias=__import__("pydantic").AliasChoices("lvl", "level"))

    loaded = load(Aliased, env_file=None, environ={"APP_LOGLEVEL": "debug"})
    assert loaded.settings.log_level == "debug"
    assert "log_level" in loaded.provenance
    assert (
        load(Aliased, env_file=None, environ={}, overrides={"log_level": "warn"}).settings.log_level == "warn"
    )
    assert load(ByName, env_file=None, environ={"APP_LEVEL": "x"}).settings.level == "x"
    assert load(Choices, env_file=None, environ={"APP_LVL": "y"}).settings.level == "y"


def test_no_decode_marker_passes_env_text_through() -> None:
    from typing import Annotated

    from pydantic import field_validator
    from pydantic_settings import NoDecode

    class Hosts(BaseModel):
        hosts: Annotated[list[str], NoDecode] = []

        @field_validator("hosts", mode="before")
        @classmethod
        def split(cls, value: object) -> object:
            return value.split(";") if isinstance(value, str) else value

    loaded = load(Hosts, env_file=None, environ={"APP_HOSTS": "a;b"})
    assert loaded.settings.hosts == ["a", "b"]


def test_base_settings_models_have_their_own_sources_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic_settings import BaseSettings

    class Env(BaseSettings):
        port: int = 1

    # BaseSettings would read PORT from the process environment; our layers replace that.
    monkeypatch.setenv("PORT", "5")
    loaded = load(Env, env_file=None, environ={"APP_PORT": "7"})
    assert loaded.settings.port == 7
    assert isinstance(loaded.settings, Env)
    assert load(Env, env_file=None, environ={}).settings.port == 1


def test_extra_allow_models_keep_unknown_keys(write: Write) -> None:
    from pydantic import ConfigDict

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        known: int = 0

    base = write("config.toml", "known = 1\n[plugin]\nx = 1\n")
    loaded = load(Open, file=base, env_file=None, environ={"APP_OTHER": "o"})
    assert loaded.settings.model_extra == {"plugin": {"x": 1}, "other": "o"}
    assert loaded.provenance["plugin.x"].layer is Layer.FILE
    assert loaded.provenance["other"].layer is Layer.ENV


def test_unknown_keys_are_ignored_when_not_strict(write: Write) -> None:
    base = write("config.toml", "nme = 1\n[server]\nprot = 2\n")
    loaded = load(Settings, file=base, env_file=None, environ={"APP_HOME": "/x", "APP_SERVER__PORT__X": "1"})
    assert loaded.settings == Settings()


def test_no_decode_inside_optional_and_recursive_models() -> None:
    from typing import Annotated

    from pydantic_settings import NoDecode

    class Tree(BaseModel):
        label: str = "root"
        child: Tree | None = None
        raw: Annotated[list[str], NoDecode] | None = None

    loaded = load(Tree, env_file=None, environ={"APP_CHILD": '{"label": "leaf"}'}, overrides={"raw": ["a"]})
    assert loaded.settings.child is not None and loaded.settings.child.label == "leaf"
    assert loaded.provenance["child.label"].name == "APP_CHILD"
    from buttress.config._schema import model_node

    assert model_node(Tree).secret is False
