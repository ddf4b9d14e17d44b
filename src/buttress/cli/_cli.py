"""Building the click command of an App."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from buttress.app import App, ExitCode, Flag
from buttress.app._runner import force_exit

__all__ = ["main", "make_cli"]

F = TypeVar("F", bound=Callable[..., Any])

_LEVELS = ("critical", "error", "warning", "info", "debug")
_TYPES: dict[type[Any], click.ParamType[Any]] = {str: click.STRING, int: click.INT, float: click.FLOAT}
_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _param(index: int) -> str:
    return f"module_flag_{index}"


def _flag_option(index: int, flag: Flag) -> Callable[[F], F]:
    if flag.type is bool:
        negative = "--no-" + flag.name[2:]
        return click.option(f"{flag.name}/{negative}", _param(index), default=None, help=flag.help)
    return click.option(flag.name, _param(index), type=_TYPES[flag.type], default=None, help=flag.help,
                        metavar=flag.metavar)  # fmt: skip


def _common_options(flags: Sequence[Flag]) -> Callable[[F], F]:
    """The options every command takes: config file, profile, log level, the modules' flags."""

    def decorate(fn: F) -> F:
        for index, flag in reversed(list(enumerate(flags))):
            fn = _flag_option(index, flag)(fn)
        fn = click.option("--log-level", type=click.Choice(_LEVELS, case_sensitive=False), default=None,
                          help="Logging level (default: info).")(fn)  # fmt: skip
        fn = click.option("--profile", default=None, metavar="NAME",
                          help="Config profile: overlays config.NAME.<ext> on the file.")(fn)  # fmt: skip
        config = click.Path(dir_okay=False)
        return click.option("--config", "-c", "config_file", default=None, metavar="FILE", type=config,
                            help="Config file (TOML, YAML, JSON).")(fn)  # fmt: skip

    return decorate


class _Options:
    """What the group and the subcommand parsed, merged: the subcommand's value wins."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def merge(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if value is not None:
                self.values[key] = value


def _apply(app: App, options: _Options) -> None:
    values = options.values
    level = str(values.get("log_level", "info")).upper()
    logging.basicConfig(level=level, format=_LOG_FORMAT, stream=sys.stderr)
    logging.getLogger().setLevel(level)
    cli: dict[str, object] = {}
    names: dict[str, str] = {}
    for index, flag in enumerate(app.flags()):
        if _param(index) in values:
            cli[flag.key] = values[_param(index)]
            names[flag.key] = flag.name
    changes: dict[str, Any] = {"cli": {**app.config_options.cli, **cli},
                               "flag_names": {**app.config_options.flag_names, **names}}  # fmt: skip
    if "config_file" in values:
        changes["file"] = values["config_file"]
    if "profile" in values:
        changes["profile"] = values["profile"]
    app.config_options = dataclasses.replace(app.config_options, **changes)


def _finish(code: int) -> int:
    # a non-daemon thread left behind (a library's executor, user code) would block the exit
    # for ever: "nothing blocks forever" wins over a tidy interpreter shutdown
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others:
        logging.getLogger("buttress.app").error(
            "threads still running at exit, abandoned: %s", ", ".join(others)
        )
        force_exit(code)
    return code


def make_cli(app: App) -> click.Group:
    """The click command group of ``app``.

    ``run`` is the default command; ``config show`` prints the effective configuration with the
    source of every value (secrets redacted); ``config check`` validates the configuration and
    the dependency graph, printing every problem (exit code 1). Every command accepts
    ``--config``, ``--profile``, ``--log-level`` and each module's :class:`~buttress.app.Flag`,
    before or after the command name.

    Raises:
        click.UsageError: never at build time; parse errors surface when the command runs.
    """
    flags = app.flags()
    common = _common_options(flags)
    seconds = click.FloatRange(min=0, min_open=True)

    def run_options(fn: F) -> F:
        whole, one = app.timeouts.shutdown, app.timeouts.hook
        fn = click.option("--shutdown-timeout", type=seconds, default=None, metavar="SECONDS",
                          help=f"Bound on the whole shutdown (default {whole:g}).")(fn)  # fmt: skip
        return click.option("--hook-timeout", type=seconds, default=None, metavar="SECONDS",
                            help=f"Bound on one shutdown hook (default {one:g}).")(fn)  # fmt: skip

    def collect(ctx: click.Context, values: dict[str, Any]) -> _Options:
        options = ctx.find_object(_Options)
        if options is None:
            options = ctx.ensure_object(_Options)
        options.merge(values)
        return options

    @click.group(name=app.name, invoke_without_command=True,
                 context_settings={"help_option_names": ["-h", "--help"]},
                 help=f"Run {app.name} (the default command) or inspect its configuration.")  # fmt: skip
    @common
    @run_options
    @click.pass_context
    def group(ctx: click.Context, /, **values: Any) -> int:
        collect(ctx, values)
        if ctx.invoked_subcommand is None:
            return int(ctx.invoke(run_command))
        return 0

    @group.command("run", help=f"Run {app.name} until SIGINT/SIGTERM (the default command).")
    @common
    @run_options
    @click.pass_context
    def run_command(ctx: click.Context, /, **values: Any) -> int:  # fmt: skip
        options = collect(ctx, values)
        _apply(app, options)
        timeouts: dict[str, float] = {}
        if "shutdown_timeout" in options.values:
            timeouts["shutdown"] = options.values["shutdown_timeout"]
        if "hook_timeout" in options.values:
            timeouts["hook"] = options.values["hook_timeout"]
        if timeouts:
            app.timeouts = dataclasses.replace(app.timeouts, **timeouts)
        return _finish(app.run())

    @group.group("config", help="Inspect the configuration.")
    def config_group() -> None:
        pass

    @config_group.command("show", help="Print the effective configuration and where each value came from.")
    @common
    @click.pass_context
    def show(ctx: click.Context, /, **values: Any) -> int:
        _apply(app, collect(ctx, values))
        try:
            loaded = app.load_config()
        except Exception as error:
            lines = getattr(error, "problems", None) or (f"{type(error).__name__}: {error}",)
            _echo_problems(lines)
            return int(ExitCode.START_FAILED)
        click.echo("(no settings)" if loaded is None else loaded.render())
        return 0

    @config_group.command("check", help="Validate the configuration and the dependency graph.")
    @common
    @click.pass_context
    def check(ctx: click.Context, /, **values: Any) -> int:
        _apply(app, collect(ctx, values))
        problems = app.check()
        if problems:
            _echo_problems(problems)
            return int(ExitCode.START_FAILED)
        files = ", ".join(str(p) for p in app.config.files) if app.config is not None else ""
        click.echo(f"configuration OK{f' (files: {files})' if files else ''}")
        return 0

    return group


def _echo_problems(lines: Sequence[str]) -> None:
    noun = "problem" if len(lines) == 1 else "problems"
    click.echo(f"{len(lines)} {noun}:", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)


def main(app: App, argv: Sequence[str] | None = None) -> int:
    """Run ``app``'s command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Use it as ``sys.exit(main(build_app()))`` in a ``__main__`` module.
    """
    command = make_cli(app)
    try:
        result = command.main(args=None if argv is None else list(argv), prog_name=app.name,
                              standalone_mode=False)  # fmt: skip
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return result if isinstance(result, int) else 0
