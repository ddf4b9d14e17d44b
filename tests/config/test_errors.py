"""Validation problems: all at once, one humane line each, naming where the value came from."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from buttress.config import ConfigError, Layer, Problem, Source, load
from buttress.errors import ConfigurationError
from tests.config.conftest import Write
from tests.config.models import Settings


def _problems(**kwargs: object) -> tuple[str, ...]:
    kwargs.setdefault("env_file", None)
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        load(Settings, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def test_all_problems_at_once_one_line_each(write: Write) -> None:
    base = write("config.toml", '[server]\nport = 0\n[db]\npool = "many"\n')
    with pytest.raises(ConfigError) as info:
        load(
            Settings,
            file=base,
            env_file=None,
            environ={"APP_SERVER__PORT": "70000", "APP_DEBUG": "maybe"},
            cli={"server.timeout": "soon"},
            flag_names={"server.timeout": "--timeout"},
        )
    error = info.value
    assert error.problems == (
        "debug: must be a boolean (true/false, 1/0, yes/no, on/off) (got maybe), from env APP_DEBUG",
        "server.port: must be at most 65535 (got 70000), from env APP_SERVER__PORT",
        "server.timeout: must be a valid timedelta, invalid digit in duration (got soon), "
        "from flag --timeout",
        "db.pool: must be a valid integer, unable to parse string as an integer (got 'many'), "
        f"from file {base}",
    )
    assert str(error) == "invalid Settings configuration (4 problems):\n  " + "\n  ".join(error.problems)
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, ValueError)
    assert error.__cause__ is None and error.__suppress_context__
    assert error.details[1] == Problem(
        "server.port", "must be at most 65535 (got 70000)", Source(Layer.ENV, name="APP_SERVER__PORT")
    )


def test_single_problem_wording() -> None:
    assert str(ConfigError([Problem("a", "bad")])) == "invalid settings configuration (1 problem):\n  a: bad"
    assert str(Problem(None, "plain")) == "plain"


def test_limits_and_defaults_in_messages() -> None:
    class Limits(BaseModel):
        a: int = Field(0, gt=0, validate_default=True)
        b: int = Field(5, lt=5, validate_default=True)
        c: float = Field(1.0, ge=2.0)
        d: list[int] = []

    with pytest.raises(ConfigError) as info:
        load(Limits, env_file=None, environ={"APP_C": "1.5", "APP_D": "1,x,3"})
    assert info.value.problems == (
        "a: must be greater than 0 (got 0), from default",
        "b: must be less than 5 (got 5), from default",
        "c: must be at least 2.0 (got 1.5), from env APP_C",
        "d[1]: must be a valid integer, unable to parse string as an integer (got x), from env APP_D",
    )


def test_missing_required_value_says_how_to_set_it() -> None:
    class Db(BaseModel):
        url: str

    class Required(BaseModel):
        token: str
        db: Db

    with pytest.raises(ConfigError) as info:
        load(Required, prefix="SVC", env_file=None, environ={"SVC_DB__OTHER": "x"})
    assert info.value.problems == (
        "token: required, but not set (set it in a config file or as SVC_TOKEN)",
        "db: required, but not set (set it in a config file or as SVC_DB)",
    )
    with pytest.raises(ConfigError) as info:
        load(Required, env_file=None, environ={"APP_TOKEN": "t"}, overrides={"db": {}})
    assert info.value.problems == (
        "db.url: required, but not set (set it in a config file or as APP_DB__URL)",
    )


def test_model_level_validator_errors_have_no_key() -> None:
    class Pair(BaseModel):
        low: int = 1
        high: int = 2

        @model_validator(mode="after")
        def ordered(self) -> Pair:
            if self.low > self.high:
                raise ValueError("low must not exceed high")
            return self

    with pytest.raises(ConfigError) as info:
        load(Pair, env_file=None, environ={"APP_LOW": "3"})
    assert info.value.problems == ("low must not exceed high",)


def test_union_tags_are_not_shown_as_keys() -> None:
    class Either(BaseModel):
        value: int | list[int] = 0

    with pytest.raises(ConfigError) as info:
        load(Either, env_file=None, environ={}, overrides={"value": "x"})
    assert [p.key for p in info.value.details] == ["value", "value"]


def test_long_inputs_are_shortened() -> None:
    with pytest.raises(ConfigError) as info:
        load(Settings, env_file=None, environ={}, overrides={"db.pool": "9" * 50 + "x" * 50})
    assert "...), from override db.pool" in info.value.problems[0]
    assert len(info.value.problems[0]) < 200


def test_a_table_given_a_scalar(write: Write) -> None:
    base = write("config.toml", "server = 5\n")
    with pytest.raises(ConfigError) as info:
        load(Settings, file=base, env_file=None, environ={})
    assert info.value.problems[0].startswith(
        "server: must be a valid dictionary or instance of Server (got 5)"
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"APP_SERVER": "{not json"},
            'server: must be a JSON object like {"key": "value"}: Expecting property name',
        ),
        ({"APP_SERVER": "[1]"}, 'server: must be a JSON object like {"key": "value"}, from env APP_SERVER'),
        (
            {"APP_SERVER__TAGS": "[1,"},
            "server.tags: must be a JSON list or comma-separated values: Expecting value",
        ),
    ],
)
def test_undecodable_env_values_are_reported_once(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(Settings, env_file=None, environ=environ)
    (problem,) = info.value.problems
    assert problem.startswith(expected)


def test_decode_problem_and_validation_problem_together() -> None:
    environ = {"APP_SERVER__TAGS": "[", "APP_SERVER__PORT": "x"}
    problems = _problems(environ=environ)
    assert [p.split(":")[0] for p in problems] == ["server.tags", "server.port"]


class TestStrict:
    def test_unknown_keys_from_every_layer_name_their_source(self, write: Write) -> None:
        base = write("config.toml", "debgu = true\n[server]\nprot = 1\n[sever]\nport = 2\n")
        overlay = write("config.dev.toml", "[db]\npol = 3\n")
        dotenv = write(".env", "APP_NAMEE=x\n")
        problems = _problems(
            file=base,
            profile="dev",
            env_file=dotenv,
            environ={"APP_SERVER__HOTS": "h", "APP_SERVER__PORT__X": "1", "APP_ZZZ": "1"},
            cli={"server.tagz": "a"},
            flag_names={"server.tagz": "--tagz"},
            overrides={"db.urll": "x", "labels.ok": "fine"},
            strict=True,
        )
        assert problems == (
            f"debgu: unknown key (did you mean debug?), from file {base}",
            f"server.prot: unknown key (did you mean server.port?), from file {base}",
            f"sever: unknown key (did you mean server?), from file {base}",
            f"db.pol: unknown key (did you mean db.pool?), from profile 'dev' file {overlay}",
            f"namee: unknown key (did you mean name?), from APP_NAMEE in {dotenv}, line 1",
            "server.hots: unknown key (did you mean server.host?), from env APP_SERVER__HOTS",
            "server.port.x: unknown key (server.port is a value, not a section), "
            "from env APP_SERVER__PORT__X",
            "zzz: unknown key, from env APP_ZZZ",
            "server.tagz: unknown key (did you mean server.tags?), from flag --tagz",
            "db.urll: unknown key (did you mean db.url?), from override db.urll",
        )

    def test_strict_accepts_known_keys_in_any_case_from_env(self) -> None:
        loaded = load(Settings, env_file=None, environ={"app_Server__Port": "1"}, strict=True)
        assert loaded.settings.server.port == 1

    def test_file_keys_are_case_sensitive(self, write: Write) -> None:
        base = write("config.toml", "Debug = true\n")
        assert _problems(file=base, strict=True) == (
            f"Debug: unknown key (did you mean debug?), from file {base}",
        )

    def test_strict_rejects_extras_even_when_the_model_allows_them(self) -> None:
        class Open(BaseModel):
            model_config = ConfigDict(extra="allow")

        with pytest.raises(ConfigError, match="other: unknown key, from override other"):
            load(Open, env_file=None, environ={}, overrides={"other": 1}, strict=True)


def test_extra_forbid_models_reject_file_keys_even_when_not_strict(write: Write) -> None:
    class Closed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int = 1

    base = write("config.toml", "prt = 2\n")
    with pytest.raises(ConfigError) as info:
        load(Closed, file=base, env_file=None, environ={"APP_UNRELATED": "x"})
    # Environment variables are shared with other programs: ignored unless strict.
    assert info.value.problems == (f"prt: unknown key (did you mean port?), from file {base}",)


def test_extra_forbid_inside_lists_is_reported_by_pydantic() -> None:
    class Item(BaseModel):
        model_config = ConfigDict(extra="forbid")
        a: int = 0

    class Many(BaseModel):
        items: list[Item] = []

    with pytest.raises(ConfigError) as info:
        load(Many, env_file=None, environ={"APP_ITEMS": '[{"a": 1}, {"b": 2}]'})
    assert info.value.problems == ("items[1].b: unknown key (got 2), from env APP_ITEMS",)


def test_a_required_value_that_failed_to_decode_is_reported_once() -> None:
    class Needs(BaseModel):
        tags: list[str]

    with pytest.raises(ConfigError) as info:
        load(Needs, env_file=None, environ={"APP_TAGS": "[oops"})
    (problem,) = info.value.problems
    assert problem.startswith("tags: must be a JSON list or comma-separated values: Expecting value")
