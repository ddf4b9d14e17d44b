"""The suite: which tables exist, in which order, and the notes the page carries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import benchmarks.bench_bulkhead as bench_bulkhead
import benchmarks.bench_hedge as bench_hedge
import benchmarks.bench_ratelimit_redis as bench_ratelimit_redis
from benchmarks import bench_breaker, bench_di, bench_pipeline, bench_ratelimit, bench_retry
from benchmarks._harness import Report, Table
from benchmarks._render import render

GROUPS = {
    "breaker": bench_breaker.tables,
    "retry": bench_retry.tables,
    "pipeline": bench_pipeline.tables,
    "di": bench_di.tables,
    "ratelimit": bench_ratelimit.tables,
    "bulkhead": bench_bulkhead.tables,
    "hedge": bench_hedge.tables,
    "ratelimit-redis": bench_ratelimit_redis.tables,
}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
NOTES = (
    "- Every peer is in its documented default configuration, or in exactly the configuration the "
    "table names; buttress runs with its defaults too. Before timing, a probe checks each contender's "
    "semantics (breakers open after exactly 5 failures; retries make exactly 4 attempts and return the "
    "result after 3 failures), and one operation's result is checked.",
    bench_retry.STAMINA_NOTE,
    "- tenacity, backoff and the breakers need no switches: none has a testing mode, and their logging "
    "is left as shipped (backoff's logger has its own `NullHandler`; tenacity logs nothing by default).",
)


def tables(only: Sequence[str] | None = None) -> list[Table]:
    """The tables of the selected groups (all of them by default), in report order."""
    selected = only or list(GROUPS)
    return [table for name in GROUPS if name in selected for table in GROUPS[name]()]


def render_report(report: Report) -> str:
    """The Markdown page for ``report``, with the configuration notes."""
    return render(report, NOTES)
