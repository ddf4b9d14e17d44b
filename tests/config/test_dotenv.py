"""The ``.env`` parser and the ``.env`` layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress.config import ConfigError, Layer, load
from buttress.config._sources import parse_dotenv
from tests.config.conftest import Write
from tests.config.models import Settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", [("A", "1", 1)]),
        ("  A = 1  ", [("A", "1", 1)]),
        ("export A=1", [("A", "1", 1)]),
        ("export\tA=1", [("A", "1", 1)]),
        ("A=", [("A", "", 1)]),
        ("A=value # comment", [("A", "value", 1)]),
        ("A=# only a comment", [("A", "", 1)]),
        ("A=pass#word", [("A", "pass#word", 1)]),
        ("A='single # not a comment'", [("A", "single # not a comment", 1)]),
        ("A='lit\\n'", [("A", "lit\\n", 1)]),
        ('A="tab\\there\\nnew \\"q\\" \\\\ \\$x \\z"', [("A", 'tab\there\nnew "q" \\ $x \\z', 1)]),
        ('A="x" # trailing comment', [("A", "x", 1)]),
        ('A="first\nsecond"\nB=2', [("A", "first\nsecond", 1), ("B", "2", 3)]),
        ("A='a\n\nb'", [("A", "a\n\nb", 1)]),
        ("# comment\n\n   # indented comment\nA=1", [("A", "1", 4)]),
        ("A=1\nA=2", [("A", "1", 1), ("A", "2", 2)]),
        ("app.key-1=x", [("app.key-1", "x", 1)]),
        ("A==b", [("A", "=b", 1)]),
        ('A="esc\\"aped"', [("A", 'esc"aped', 1)]),
    ],
)
def test_parse_dotenv(text: str, expected: list[tuple[str, str, int]]) -> None:
    assert parse_dotenv(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("JUST_A_NAME", 1, "expected NAME=value"),
        ("1A=x", 1, "expected NAME=value"),
        ("=x", 1, "expected NAME=value"),
        ('OK=1\nA="never closed\nB=2', 2, 'unterminated " quote'),
        ("A='x' junk", 1, "unexpected text after the closing quote"),
    ],
)
def test_parse_dotenv_reports_malformed_lines(text: str, line: int, message: str) -> None:
    _, errors = parse_dotenv(text)
    assert errors == [(line, message)]


def test_dotenv_layer_reads_only_prefixed_names_and_later_lines_win(write: Write) -> None:
    dotenv = write(".env", "OTHER=1\nAPP_NAME=first\nAPP_NAME='second'\nexport APP_SERVER__PORT=81\n")
    loaded = load(Settings, env_file=dotenv, environ={})
    assert loaded.settings.name == "second"
    assert loaded.settings.server.port == 81
    assert loaded.provenance["name"].line == 3
    assert loaded.provenance["server.port"].layer is Layer.DOTENV


def test_missing_dotenv_is_fine(tmp_path: Path) -> None:
    loaded = load(Settings, env_file=tmp_path / "absent.env", environ={})
    assert loaded.settings == Settings()


def test_default_env_file_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("APP_NAME=cwd\n")
    monkeypatch.chdir(tmp_path)
    assert load(Settings, environ={}).settings.name == "cwd"


def test_malformed_dotenv_names_file_and_line_and_never_quotes_values(write: Write) -> None:
    dotenv = write(".env", "APP_NAME=ok\nAPP_DB__PASSWORD='s3cret\n")
    with pytest.raises(ConfigError) as info:
        load(Settings, env_file=dotenv, environ={})
    assert info.value.problems == (f"{dotenv}, line 2: unterminated ' quote",)
    assert "s3cret" not in str(info.value)


def test_unreadable_dotenv(tmp_path: Path) -> None:
    (tmp_path / "dir.env").mkdir()
    with pytest.raises(ConfigError, match="cannot read the env file"):
        load(Settings, env_file=tmp_path / "dir.env", environ={})
    (tmp_path / "bad.env").write_bytes(b"APP_NAME=\xff\n")
    with pytest.raises(ConfigError, match="cannot read the env file"):
        load(Settings, env_file=tmp_path / "bad.env", environ={})
