"""The benchmark suite runs end to end with tiny loops, every case yields a figure, the page renders.

No speed is asserted here: figures from a loaded test machine mean nothing. What can break is the
suite itself (a peer's API changed, a contender failed its semantic probe, a headline that cannot
be computed), and that is what these tests catch.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the suite lives at the repository root, beside src/
    sys.path.insert(0, str(ROOT))

from benchmarks import _harness, _render, _suite  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402

TINY = _harness.Settings(repeats=2, target_seconds=0.0005)


@pytest.fixture(scope="module")
def report() -> _harness.Report:
    return _harness.run(_suite.tables(), TINY, argv=["--quick"])


def test_every_case_has_a_positive_finite_figure(report: _harness.Report) -> None:
    keys = [result.table.key for result in report.results]
    assert keys == [
        "breaker-sync",
        "breaker-async",
        "retry-success-sync",
        "retry-success-async",
        "retry-failures-sync",
        "retry-failures-async",
        "pipeline-async",
        "di-singleton",
        "di-transient",
        "di-graph",
        "di-scope",
        "ratelimit-one-key",
        "ratelimit-10k-keys",
        "ratelimit-async",
        "bulkhead-sync",
        "bulkhead-async",
        "hedge-async",
        "ratelimit-redis-sync",
        "ratelimit-redis-async",
    ]
    for result in report.results:
        for row in [result.bare, *result.rows]:
            assert row.error is None, f"{result.table.key}/{row.label}: {row.error}"
            assert len(row.samples_ns) == TINY.repeats
            assert all(math.isfinite(s) and s > 0 for s in row.samples_ns), (result.table.key, row.label)
            assert row.loops >= 1
            assert math.isfinite(result.ratio(row))
            assert result.ratio(row) > 0
    assert report.ok


def test_each_table_has_buttress_and_the_named_peers(report: _harness.Report) -> None:
    peers = {r.table.key: {row.label for row in r.rows if row.role == "peer"} for r in report.results}
    assert peers["breaker-sync"] == {"pybreaker", "circuitbreaker", "purgatory"}
    assert peers["breaker-async"] == {"circuitbreaker", "purgatory", "aiobreaker"}
    for key in ("retry-success-sync", "retry-success-async"):
        assert peers[key] == {"tenacity (default)", "tenacity (4 attempts)", "stamina", "backoff"}
    for key in ("retry-failures-sync", "retry-failures-async"):
        assert peers[key] == {"tenacity", "stamina", "backoff"}
    for result in report.results:
        assert len(result.find("buttress")) == 1, result.table.key


def test_headlines_are_computed(report: _harness.Report) -> None:
    for result in report.results:
        assert result.headlines, result.table.key
        assert not any("n/a" in h for h in result.headlines), result.headlines
    by_key = {r.table.key: r.headlines for r in report.results}
    for key in ("breaker-sync", "breaker-async", "retry-success-sync", "retry-failures-async"):
        assert by_key[key][0].startswith("buttress is "), by_key[key]
        assert "than the fastest peer (" in by_key[key][0]
    assert any(h.startswith("buttress / hand loop = ") for h in by_key["retry-failures-sync"])
    assert any("pipeline / sum of parts = " in h for h in by_key["pipeline-async"])


def test_the_page_renders_with_its_header(report: _harness.Report) -> None:
    page = _suite.render_report(report)
    assert "do not edit it by hand" in page.lower()
    assert "GENERATED" in page
    assert "$ python -m benchmarks --quick" in page
    assert f"{report.environment['cpus']} CPUs" in page
    for name in ("buttress", *_harness.PEER_DISTRIBUTIONS):
        assert f"| {name} | " in page
    for result in report.results:
        assert f"## {result.table.title}" in page
    # the docs test runs every python block of docs/; the generated page must not contain any
    assert "```python" not in page


def test_compare_words_both_directions() -> None:
    assert _harness.compare("a", 100.0, "b", 250.0) == "a is 2.5\N{MULTIPLICATION SIGN} faster than b"
    assert _harness.compare("a", 300.0, "b", 100.0) == "a is 3.0\N{MULTIPLICATION SIGN} slower than b"
    assert _harness.compare("a", 100.0, "b", 104.0) == "a is 1.04\N{MULTIPLICATION SIGN} faster than b"
    assert _harness.compare("a", math.nan, "b", 1.0) == "a vs b: n/a"


def test_a_contender_failing_its_probe_is_reported_not_measured() -> None:
    def probe(wrap: _harness.Wrap) -> None:
        raise AssertionError("makes 5 attempts")

    def unavailable(fn: Callable[..., Any]) -> Callable[..., Any]:
        raise ImportError("no module named nothing")

    base = _suite.tables(["breaker"])[0]
    table = _harness.Table(
        key="t",
        group="g",
        title="t",
        description="",
        mode="sync",
        target=base.target,
        make_op=base.make_op,
        bare=base.bare,
        bare_label="bare",
        verify=base.verify,
        contenders=(
            _harness.Contender("wrong", "", "peer", lambda fn: fn, probe=probe),
            _harness.Contender("missing", "", "buttress", unavailable),
        ),
    )
    result = _harness.run_table(table, TINY)
    wrong, missing = result.rows
    assert wrong.error == "failed its check: AssertionError: makes 5 attempts"
    assert missing.error is not None
    assert missing.error.startswith("unavailable: ImportError")
    assert not wrong.samples_ns
    assert not missing.ok
    assert result.headlines == ["buttress vs the fastest peer: n/a (a contender was not measured)"]
    assert "failed its check" in "\n".join(_render.render_table(result))


def test_quick_command_writes_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "benchmarks.md"
    assert main(["--quick", "--only", "breaker", "--output", str(out)]) == 0
    assert not out.exists()
    assert main(["--quick", "--only", "breaker", "--write", "--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "## 1. Sync circuit breaker" in text
    assert "## 3. " not in text
    assert "# Benchmarks" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_interleaved_table_calls_every_row_equally_and_pairs_its_repeats(mode: str) -> None:
    calls: list[str] = []

    def counting(name: str) -> Callable[[], Any]:
        def op() -> int:
            calls.append(name)
            return 1

        async def aop() -> int:
            return op()

        return op if mode == "sync" else aop

    table = _harness.Table(
        key="t",
        group="g",
        title="t",
        description="",
        mode=mode,  # type: ignore[arg-type]
        target=lambda: 1,
        make_op=lambda fn: counting("a"),
        bare=counting("bare"),
        bare_label="bare",
        verify=lambda result: None,
        contenders=(_harness.Contender("a", "", "buttress", lambda fn: fn),),
        interleave=True,
    )
    result = _harness.run_table(table, TINY)
    (row,) = result.rows
    assert row.loops == result.bare.loops >= 1
    assert len(row.samples_ns) == len(result.bare.samples_ns) == TINY.repeats
    timed = calls[-2 * TINY.repeats * row.loops :]
    rounds = [tuple(timed[i : i + 2]) for i in range(0, len(timed), 2)]
    assert set(rounds) <= {("bare", "a"), ("a", "bare")}  # every round calls each row once
    assert ("a", "bare") in rounds or row.loops == 1  # and the order rotates
    assert "call by call" in "\n".join(_render.render_table(result))
    # the paired ratio is the median of per-repeat ratios, not best over best
    row.samples_ns[:] = [2.0, 30.0, 4.0]
    result.bare.samples_ns[:] = [1.0, 10.0, 1.0]
    assert result.paired_ratio(row) == 3.0
    assert result.ratio(row) == 2.0
