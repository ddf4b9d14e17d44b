"""Module-contributed config sections."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from buttress.config import ConfigError, Layer, Sections, load_sections
from tests.config.conftest import Write


class Http(BaseModel):
    port: int = 8000
    host: str = "0.0.0.0"


class Log(BaseModel):
    level: str = "info"


class Mail(BaseModel):
    url: str  # required: the module has no sensible default


class Core(BaseModel):
    debug: bool = False


def test_sections_build_a_root_model_with_defaults(write: Write) -> None:
    sections = Sections(base=Core, name="AppSettings")
    sections.add("http", Http, owner="http-module")
    sections.add("log", Log, owner="log-module")
    base = write("config.toml", "debug = true\n[http]\nport = 9000\n")
    loaded = load_sections(sections, file=base, env_file=None, environ={"APP_LOG__LEVEL": "debug"})
    assert type(loaded.settings).__name__ == "AppSettings"
    http = loaded.section("http", Http)
    assert (http.port, http.host) == (9000, "0.0.0.0")
    assert loaded.section("log", Log).level == "debug"
    assert isinstance(loaded.section("log"), Log)
    assert loaded.settings.debug is True  # type: ignore[attr-defined]
    assert loaded.provenance["http.host"].layer is Layer.DEFAULT
    assert loaded.provenance["log.level"].name == "APP_LOG__LEVEL"
    assert list(sections) == ["http", "log"] and len(sections) == 2 and "http" in sections
    assert sections.owner("http") == "http-module"
    assert repr(sections) == "Sections(http='http-module', log='log-module')"


def test_model_is_cached_until_a_section_is_added() -> None:
    sections = Sections()
    sections.add("http", Http, owner="a")
    first = sections.model()
    assert sections.model() is first
    sections.add("log", Log, owner="b")
    assert sections.model() is not first
    assert set(sections.model().model_fields) == {"http", "log"}


def test_two_owners_claiming_one_section_is_an_error_naming_both() -> None:
    sections = Sections()
    sections.add("http", Http, owner="http-module")
    with pytest.raises(ConfigError) as info:
        sections.add("http", Log, owner="admin-module")
    assert info.value.problems == ("http: section claimed by both 'http-module' and 'admin-module'",)
    with pytest.raises(ConfigError, match="claimed by both 'http-module' and 'http-module'"):
        sections.add("http", Log, owner="http-module")
    sections.add("http", Http, owner="http-module")  # the same claim again is harmless
    assert sections.owner("http") == "http-module"


@pytest.mark.parametrize(
    ("name", "model", "message"),
    [
        ("not-an-identifier", Http, "section name must be an identifier not starting with '_' (m)"),
        ("_private", Http, "section name must be an identifier"),
        ("debug", Http, "section of 'm' collides with a field of Core"),
        ("ok", dict, "section model of 'm' must be a pydantic BaseModel subclass"),
    ],
)
def test_invalid_sections(name: str, model: type, message: str) -> None:
    sections = Sections(base=Core)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sections.add(name, model, owner="m")
    assert name not in sections


def test_a_section_with_required_keys_reports_them_by_full_key() -> None:
    sections = Sections()
    sections.add("mail", Mail, owner="mail-module")
    with pytest.raises(ConfigError) as info:
        load_sections(sections, env_file=None, environ={})
    assert info.value.problems == (
        "mail.url: required, but not set (set it in a config file or as APP_MAIL__URL)",
    )
    loaded = load_sections(sections, env_file=None, environ={"APP_MAIL__URL": "smtp://x"})
    assert loaded.section("mail", Mail).url == "smtp://x"


def test_section_access_errors() -> None:
    sections = Sections(base=Core)
    sections.add("http", Http, owner="h")
    loaded = load_sections(sections, env_file=None, environ={}, strict=True)
    with pytest.raises(KeyError, match=r"no config section 'mail' \(sections: debug, http\)"):
        loaded.section("mail")
    with pytest.raises(TypeError, match="config section 'http' is Http, not Log"):
        loaded.section("http", Log)
    with pytest.raises(TypeError, match="config section 'debug' is bool, not BaseModel"):
        loaded.section("debug")
    empty = load_sections(Sections(), env_file=None, environ={})
    with pytest.raises(KeyError, match=r"sections: none"):
        empty.section("x")


def test_load_sections_passes_every_option_through(write: Write) -> None:
    sections = Sections()
    sections.add("http", Http, owner="h")
    base = write("config.toml", "[http]\nport = 1\n")
    write("config.dev.toml", "[http]\nport = 2\n")
    dotenv = write(".env", "SVC_HTTP__HOST=d\n")
    loaded = load_sections(
        sections,
        prefix="SVC",
        file=base,
        profile="dev",
        env_file=dotenv,
        environ={},
        cli={"http.port": "3"},
        flag_names={"http.port": "--http-port"},
        overrides={"http.host": "o"},
    )
    assert loaded.section("http", Http).model_dump() == {"port": 3, "host": "o"}
    assert str(loaded.provenance["http.port"]) == "flag --http-port"
    with pytest.raises(ConfigError, match="unknown key"):
        load_sections(sections, env_file=None, environ={"APP_HTTP__PROT": "1"}, strict=True)
