"""Secrets are redacted in every dump, render, error message and repr."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field, Secret, SecretBytes, SecretStr

from buttress.config import ConfigError, load
from tests.config.conftest import Write
from tests.config.models import Settings

SECRET = "hunter2-do-not-print"


class Vault(BaseModel):
    token: SecretStr = SecretStr("")
    key: SecretBytes = SecretBytes(b"")
    pin: Secret[int] = Secret(0)
    backups: list[SecretStr] = []
    maybe: SecretStr | None = None
    short: SecretStr = Field(default=SecretStr("long-enough"), min_length=8)


class Root(BaseModel):
    vault: Vault = Vault()
    name: str = "x"


def _loaded() -> object:
    return load(
        Root,
        env_file=None,
        environ={
            "APP_VAULT__TOKEN": SECRET,
            "APP_VAULT__BACKUPS": f"{SECRET}1,{SECRET}2",
            "APP_VAULT__PIN": "4242",
        },
        overrides={"vault.key": SECRET.encode(), "vault.maybe": SECRET},
    )


def test_dump_redacts_by_default_in_both_modes() -> None:
    loaded = load(
        Root,
        env_file=None,
        environ={"APP_VAULT__TOKEN": SECRET, "APP_VAULT__BACKUPS": SECRET, "APP_VAULT__PIN": "4242"},
        overrides={"vault.key": SECRET.encode(), "vault.maybe": SECRET},
    )
    modes: tuple[Literal["python", "json"], ...] = ("python", "json")
    for mode in modes:
        dumped = loaded.dump(mode=mode)
        assert SECRET not in repr(dumped) and "4242" not in repr(dumped)
        assert dumped["vault"]["token"] == "**********"
        assert dumped["vault"]["backups"] == ["**********"]
    assert loaded.dump(mode="json")["vault"]["key"] == "**********"


def test_dump_reveals_when_asked() -> None:
    loaded = load(Root, env_file=None, environ={"APP_VAULT__TOKEN": SECRET, "APP_VAULT__PIN": "7"},
                  overrides={"vault.key": b"k"})  # fmt: skip
    revealed = loaded.dump(redact=False)
    assert revealed["vault"]["token"] == SECRET
    assert revealed["vault"]["key"] == b"k"
    assert revealed["vault"]["pin"] == 7
    assert loaded.dump(redact=False, mode="json")["vault"]["key"] == "k"
    assert loaded.settings.vault.token.get_secret_value() == SECRET


def test_render_and_repr_redact() -> None:
    loaded = load(Root, env_file=None, environ={"APP_VAULT__TOKEN": SECRET, "APP_VAULT__PIN": "4242"})
    rendered = loaded.render()
    assert SECRET not in rendered and "4242" not in rendered
    assert 'vault.token   = "**********"  (env APP_VAULT__TOKEN)' in rendered.splitlines()
    assert SECRET not in repr(loaded) and SECRET not in repr(loaded.settings)
    assert SECRET not in repr(loaded.provenance)


@pytest.mark.parametrize(
    ("environ", "overrides"),
    [
        ({"APP_VAULT__SHORT": "hunter2"}, {}),  # too short: pydantic puts the input in the error
        ({}, {"vault.token": ["hunter2", "x"]}),  # wrong type
        ({}, {"vault.backups": ["ok-value", 12345]}),  # a list item
        ({}, {"vault.maybe": 99999}),  # an optional secret
        ({}, {"vault.pin": "hunter2"}),  # Secret[int] that fails to parse
        ({}, {"vault": {"token": 55555, "key": 66666}}),
    ],
)
def test_error_messages_never_show_secret_inputs(
    environ: dict[str, str], overrides: dict[str, object]
) -> None:
    with pytest.raises(ConfigError) as info:
        load(Root, env_file=None, environ=environ, overrides=overrides)
    text = str(info.value) + repr(info.value) + repr(info.value.details)
    for leaked in ("hunter2", "12345", "99999", "55555", "66666"):
        assert leaked not in text
    assert "(got **********)" in text
    # The pydantic error carrying raw inputs is not attached to the traceback.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_secret_in_a_broken_file_is_not_quoted(write: Write) -> None:
    path = write("config.json", '{"vault": {"token": "' + SECRET + '",}}')
    with pytest.raises(ConfigError) as info:
        load(Root, file=path, env_file=None, environ={})
    assert SECRET not in str(info.value)


def test_non_secret_values_are_shown_in_errors() -> None:
    with pytest.raises(ConfigError, match=r"got \['a'\]"):
        load(Root, env_file=None, environ={}, overrides={"name": ["a"]})


def test_render_shows_every_value_as_json_with_its_source(tmp_path: Path) -> None:
    base = tmp_path / "config.toml"
    base.write_text('[server]\nhost = "h"\n')
    loaded = load(Settings, file=base, env_file=None, environ={"APP_SERVER__TIMEOUT": "90"})
    lines = loaded.render().splitlines()
    assert len(lines) == len(loaded.provenance)
    assert lines[3] == f'server.host    = "h"           (file {base})'
    assert lines[5] == 'server.timeout = "PT1M30S"     (env APP_SERVER__TIMEOUT)'
    assert lines[8] == 'db.password    = "**********"  (default)'
    assert lines[10] == "labels         = {}            (default)"
    assert json.loads(lines[3].split("=", 1)[1].rsplit("(", 1)[0]) == "h"
    assert loaded.settings.server.timeout == timedelta(seconds=90)


def test_render_of_an_empty_model() -> None:
    class Empty(BaseModel):
        pass

    loaded = load(Empty, env_file=None, environ={})
    assert loaded.render() == "(no settings)"
    assert loaded.dump() == {}
