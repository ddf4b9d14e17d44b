"""The ``buttress`` console script."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="buttress", description="buttress command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the resilience demo against a flaky in-process dependency")
    from buttress.demo import add_arguments, run_from_args

    add_arguments(demo)
    args = parser.parse_args(argv)
    return run_from_args(args)
