"""The click command line of an App: default ``run``, ``config show``/``check``, module flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from buttress.app import App, ConfigOptions, Flag, Module, Setup
from buttress.cli import main, make_cli


class Http(BaseModel):
    port: int = 8000
    debug: bool = False
    ratio: float = 0.5
    token: SecretStr = SecretStr("hunter2")


def make_app(**config: object) -> App:
    flags = [Flag("--http-port", "http.port", type=int, help="HTTP port."),
             Flag("--debug", "http.debug", type=bool),
             Flag("--ratio", "http.ratio", type=float), Flag("--name", "http.token")]  # fmt: skip
    stop_at_once = Module("stopper", setup=lambda ctx: ctx.add_worker(ctx.app.request_stop))
    options = ConfigOptions(**{"environ": {}, "env_file": None, **config})  # type: ignore[arg-type]
    return App(
        "svc", modules=[Module("http", sections={"http": Http}, flags=flags), stop_at_once], config=options
    )


def test_help_lists_module_flags_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(make_app(), ["--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--http-port INTEGER", "HTTP port.", "--debug / --no-debug", "--log-level", "config", "run"):
        assert text in out
    assert main(make_app(), ["run", "--help"]) == 0
    assert "--shutdown-timeout SECONDS" in capsys.readouterr().out


def test_config_show_renders_provenance_with_secrets_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(make_app(), ["config", "show", "--http-port", "9000", "--debug", "--ratio", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "http.port  = 9000" in out and "(flag --http-port)" in out
    assert "(flag --debug)" in out and "hunter2" not in out and "**********" in out


def test_flags_before_the_command_and_config_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "svc.toml"
    file.write_text("[http]\nport = 7000\n")
    assert main(make_app(), ["--config", str(file), "config", "show"]) == 0
    assert f"(file {file})" in capsys.readouterr().out
    assert main(make_app(), ["--http-port", "1", "config", "show", "--http-port", "2"]) == 0
    assert "http.port  = 2" in capsys.readouterr().out  # the subcommand's flag wins


def test_config_check_reports_every_problem_with_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(environ={"SVC_HTTP__RATIO": "x", "SVC_HTTP__DEBUG": "maybe"})
    assert main(app, ["config", "check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("2 problems:\n")
    assert "http.debug: must be a boolean" in err and "from env SVC_HTTP__RATIO" in err
    assert main(make_app(), ["config", "check"]) == 0
    assert capsys.readouterr().out == "configuration OK\n"
    broken = make_app(environ={"SVC_HTTP__PORT": "x"})
    assert main(broken, ["config", "show"]) == 1
    assert "1 problem:" in capsys.readouterr().err


def test_run_is_the_default_command_and_takes_the_timeouts() -> None:
    app = make_app()
    assert main(app, ["--log-level", "debug", "--shutdown-timeout", "3", "--hook-timeout", "1"]) == 0
    assert (app.timeouts.shutdown, app.timeouts.hook) == (3.0, 1.0)
    assert main(make_app(), ["run", "--http-port", "5"]) == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(make_app(), ["--http-port", "many"]) == 2
    assert "'many' is not a valid integer" in capsys.readouterr().err
    assert make_cli(make_app()).name == "svc"


def test_an_app_without_settings_shows_none(capsys: pytest.CaptureFixture[str]) -> None:
    def setup(ctx: Setup) -> None:
        assert ctx.config is None and ctx.module == "plain"

    assert main(App("bare", modules=[Module("plain", setup=setup)]), ["config", "show"]) == 0
    assert capsys.readouterr().out == "(no settings)\n"
