"""``buttress demo``: the command-line face of the demo (arguments, colour, live printing)."""

from __future__ import annotations

import argparse
import asyncio
import os
import random as _random
import sys
from typing import TextIO

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.demo._ratelimit import rate_limit_lines, run_rate_limit_section
from buttress.demo._report import Style, format_row, intro_lines, summary_lines, table_header
from buttress.demo._runner import DemoConfig, DemoResult, SecondRow, run_demo

__all__ = ["add_arguments", "run", "run_from_args"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0 (got {text})")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (the ``demo`` sub-command's parser).

    Options: ``--duration`` (seconds, default 20), ``--seed`` (default: a random one, printed),
    ``--concurrency`` (callers per side, default 50) and ``--no-color``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> args = parser.parse_args(["--duration", "2", "--seed", "3"])
        >>> args.duration, args.seed, args.concurrency, args.no_color
        (2.0, 3, 50, False)
    """
    defaults = DemoConfig()
    parser.description = (
        "Call a flaky in-process dependency (random errors, latency spikes, a full outage in the "
        "middle) from many concurrent callers, bare and through a buttress pipeline, side by side."
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=defaults.duration,
        metavar="SECONDS",
        help=f"how long the demo runs; the outage scales with it (default {defaults.duration:g})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of every random choice (default: a random seed, printed at the start)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=defaults.concurrency,
        metavar="N",
        help=f"concurrent callers on each side (default {defaults.concurrency})",
    )
    parser.add_argument("--no-color", action="store_true",
                        help="never colour the output (it is coloured only on a terminal)")  # fmt: skip


def wants_colour(out: TextIO, *, no_color: bool) -> bool:
    """Colour only on a terminal, never with ``--no-color`` or the ``NO_COLOR`` variable set."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty is not None and isatty())


def run(
    config: DemoConfig, *, seed: int, out: TextIO, colour: bool = False, clock: Clock = SYSTEM_CLOCK
) -> DemoResult:
    """Run the demo, printing the table live to ``out`` and the summary at the end.

    Args:
        config: what to run.
        seed: the seed of every random choice.
        out: where to write.
        colour: use ANSI colours.
        clock: the time source (a :class:`~buttress.testing.FakeClock` makes it instant).

    Returns:
        the numbers behind the printed text.
    """
    style = Style(enabled=colour)

    def emit(lines: list[str]) -> None:
        out.write("".join(f"{line}\n" for line in lines))
        out.flush()

    def on_row(row: SecondRow) -> None:
        emit([format_row(row, config, style)])

    emit([*intro_lines(config, seed), *(style.paint(line, "bold") for line in table_header(config))])
    result = asyncio.run(run_demo(config, seed=seed, clock=clock, on_row=on_row))
    emit(summary_lines(result, style))
    section = max(1.0, round(config.duration / 10))
    limited = asyncio.run(run_rate_limit_section(callers=config.concurrency, duration=section, clock=clock))
    emit(rate_limit_lines(limited, config.concurrency))
    return result


def run_from_args(args: argparse.Namespace) -> int:
    """Run the demo as ``buttress demo`` does, with options parsed by :func:`add_arguments`.

    Returns:
        the exit code: 0 (also when the reader of the output goes away), or 130 when
        interrupted with Ctrl-C.
    """
    config = DemoConfig(duration=args.duration, concurrency=args.concurrency)
    seed = args.seed if args.seed is not None else _random.randrange(1, 100_000)
    out = sys.stdout
    try:
        run(config, seed=seed, out=out, colour=wants_colour(out, no_color=args.no_color))
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (``buttress demo | head``): stop quietly, as other tools do.
        _silence(out)
    return 0


def _silence(out: TextIO) -> None:
    """Point ``out``'s file descriptor at the null device, so that the final flush cannot fail."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
