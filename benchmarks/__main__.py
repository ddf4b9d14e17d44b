"""``python -m benchmarks``: run the suite in this process and write ``docs/benchmarks.md``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks._harness import FULL, QUICK, default_log, run
from benchmarks._suite import DOCS, GROUPS, render_report, tables


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the selected benchmarks, print the report and maybe write the docs page."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (writes nothing by default)")
    parser.add_argument(
        "--only", action="append", choices=sorted(GROUPS), help="run only this group (repeatable)"
    )
    write = parser.add_mutually_exclusive_group()
    write.add_argument("--write", action="store_true", default=None, help="write docs/benchmarks.md")
    write.add_argument("--no-write", dest="write", action="store_false", help="do not write the docs page")
    parser.add_argument(
        "--output", type=Path, default=DOCS, help="where to write the page (default: %(default)s)"
    )
    args = parser.parse_args(args_list)

    report = run(tables(args.only), QUICK if args.quick else FULL, argv=args_list, log=default_log)
    page = render_report(report)
    print(page)
    # a partial or smoke run must not replace the committed page unless asked to
    should_write = args.write if args.write is not None else not (args.quick or args.only)
    if not report.ok:
        print(
            "benchmarks: some contenders were not measured (see the tables); docs not written",
            file=sys.stderr,
        )
        return 1
    if should_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(page, encoding="utf-8")
        print(f"benchmarks: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
