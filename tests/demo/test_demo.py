"""``buttress demo``: the real thing run briefly, and its parts tested without real time."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import re
import statistics
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress._command import main
from buttress.demo import (
    Behaviour,
    DemoConfig,
    DemoResult,
    DependencyError,
    FlakyDependency,
    Phase,
    SecondRow,
    SideResult,
    Tally,
    _cli,
    add_arguments,
    build_pipeline,
    run,
    run_demo,
    run_from_args,
)
from buttress.demo._dependency import phases_between
from buttress.demo._report import (
    Style,
    _breaker_text,
    format_count,
    format_latency,
    format_row,
    percentile,
    summary_lines,
    table_header,
)
from buttress.demo._runner import second_spans
from buttress.errors import ConfigurationError
from buttress.testing import FakeClock

ROW = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s")


def _summary_value(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return line[len(line) - len(line.lstrip()) + len(label) :].split()


# -- the real demo --------------------------------------------------------------------------


def test_the_real_demo_shows_the_pipeline_helping(capsys: pytest.CaptureFixture[str]) -> None:
    # This runs the real demo, in real time, for 1.5 s on purpose: it is the end-to-end check
    # that the policies, the flaky dependency and the report work together as shipped.
    code = main(["demo", "--duration", "1.5", "--seed", "1", "--no-color"])
    out = capsys.readouterr().out

    assert code == 0
    assert [m.group(1) for line in out.splitlines() if (m := ROW.match(line))] == ["1", "1.5"]
    assert "\x1b[" not in out
    bare_rate, piped_rate = (float(v) for v in re.findall(r"\((\d+\.\d)%\)", _summary_line(out, "succeeded")))
    assert piped_rate >= bare_rate
    hits = re.search(r"during the outage \([^)]*\)\s+([\d,]+)\s+([\d,]+)", out)
    assert hits is not None
    bare_hits, piped_hits = (int(v.replace(",", "")) for v in hits.groups())
    assert bare_hits > 50
    assert piped_hits * 2 < bare_hits


def _summary_line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(label))


def test_python_dash_m_buttress_demo_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "buttress", "demo", "--duration", "1", "--seed", "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "summary after" in done.stdout
    assert "\x1b[" not in done.stdout  # a pipe is not a terminal: no colour


# -- the dependency -------------------------------------------------------------------------


def test_the_outage_covers_the_middle_of_the_run_and_scales_with_it() -> None:
    clock = FakeClock(100.0)
    dependency = FlakyDependency(random.Random(1), duration=20, clock=clock)
    assert dependency.outage == (7.0, 13.0)
    healthy, outage = Phase.HEALTHY, Phase.OUTAGE
    assert [dependency.phase_at(t) for t in (0, 6.999, 7.0, 12.999, 13.0, 20)] == [
        healthy, healthy, outage, outage, healthy, healthy,
    ]  # fmt: skip
    assert str(Phase.OUTAGE) == "outage"
    assert repr(dependency) == "FlakyDependency(duration=20, outage=7-13s, calls=0)"
    mini = FlakyDependency(random.Random(1), duration=2, clock=clock)
    assert mini.outage == pytest.approx((0.7, 1.3))
    clock.advance(1.0)
    assert mini.phase_at(mini.elapsed()) is Phase.OUTAGE


def test_calls_wait_their_latency_on_the_clock_and_count_arrivals_per_phase() -> None:
    clock = FakeClock()
    dependency = FlakyDependency(random.Random(3), duration=10, clock=clock, start=0.0)

    async def scenario() -> list[str]:
        results = []
        for at in (1.0, 4.0, 5.0, 8.0):
            clock.advance(max(0.0, at - clock.monotonic()))
            try:
                results.append(await dependency.call())
            except DependencyError as exc:
                results.append(str(exc))
        return results

    results = asyncio.run(scenario())
    assert results[1] == results[2] == "503 Service Unavailable: no healthy upstream"
    assert dependency.calls == 4
    assert dependency.calls_during_outage == 2
    assert len(clock.sleeps) == 4 and all(s > 0 for s in clock.sleeps)


def test_the_same_seed_gives_the_same_fate_to_the_nth_call_whatever_came_before() -> None:
    one = FlakyDependency(random.Random(7), duration=10, clock=FakeClock())
    two = FlakyDependency(random.Random(7), duration=10, clock=FakeClock())
    one.plan(Phase.OUTAGE)  # an outage call draws as many numbers as a healthy one
    two.plan(Phase.HEALTHY)
    assert [one.plan(Phase.HEALTHY) for _ in range(50)] == [two.plan(Phase.HEALTHY) for _ in range(50)]


def test_plan_follows_the_behaviour() -> None:
    always_fails = FlakyDependency(
        random.Random(1), duration=1, behaviour=Behaviour(error_rate=1, spike_rate=0)
    )
    outcome = always_fails.plan(Phase.HEALTHY)
    assert outcome.error == "500 Internal Server Error" and not outcome.spike
    always_slow = FlakyDependency(
        random.Random(1), duration=1, behaviour=Behaviour(error_rate=1, spike_rate=1)
    )
    spikes = [always_slow.plan(Phase.HEALTHY) for _ in range(100)]
    assert all(o.spike and o.error is None and 0.5 <= o.latency <= 1.5 for o in spikes)
    down = [always_slow.plan(Phase.OUTAGE) for _ in range(100)]
    assert all(o.error is not None and 0.001 <= o.latency <= 0.005 for o in down)


def test_healthy_latency_and_error_rate_match_the_behaviour() -> None:
    dependency = FlakyDependency(random.Random(11), duration=1)
    plans = [dependency.plan(Phase.HEALTHY) for _ in range(5000)]
    normal = [p.latency for p in plans if not p.spike]
    assert statistics.median(normal) == pytest.approx(0.025, rel=0.05)
    assert sum(p.error is not None for p in plans) / len(plans) == pytest.approx(0.15 * 0.97, abs=0.02)
    assert sum(p.spike for p in plans) / len(plans) == pytest.approx(0.03, abs=0.01)


def test_behaviour_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Behaviour(
            error_rate=1.5, latency_median=0, spike_latency=(2.0, 1.0), outage_start=0.8, outage_end=0.2
        )
    problems = caught.value.problems
    assert any("error_rate" in p for p in problems)
    assert any("latency_median" in p for p in problems)
    assert len(problems) == 2  # order checks wait until the ranges themselves are valid
    with pytest.raises(ConfigurationError, match="spike_latency must be"):
        Behaviour(spike_latency=(2.0, 1.0))
    with pytest.raises(ConfigurationError, match="outage_start must be <= outage_end"):
        Behaviour(outage_start=0.8, outage_end=0.2)
    with pytest.raises(ConfigurationError, match="duration"):
        FlakyDependency(random.Random(), duration=0)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        ((0.0, 1.0), ("healthy",)),
        ((6.0, 7.0), ("healthy",)),
        ((6.5, 7.5), ("healthy", "outage")),
        ((8.0, 9.0), ("outage",)),
        ((12.5, 13.5), ("outage", "healthy")),
        ((13.0, 14.0), ("healthy",)),
        ((0.0, 20.0), ("healthy", "outage", "healthy")),
    ],
)
def test_phases_between(span: tuple[float, float], expected: tuple[str, ...]) -> None:
    assert tuple(p.value for p in phases_between(*span, (7.0, 13.0))) == expected


# -- the report -----------------------------------------------------------------------------


def test_percentile_interpolates_linearly() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0) == 1.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile(list(range(101)), 99) == 99
    assert percentile([10.0, 20.0], 25) == 12.5
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="q must be in"):
        percentile([1.0], 101)


@given(st.lists(st.floats(0, 1e3), min_size=2, max_size=60), st.integers(1, 99))
def test_percentile_agrees_with_statistics_and_stays_in_range(values: list[float], q: int) -> None:
    result = percentile(values, q)
    assert result is not None
    assert min(values) <= result <= max(values)
    expected = statistics.quantiles(values, n=100, method="inclusive")[q - 1]
    assert result == pytest.approx(expected, abs=1e-9)


def test_latency_and_count_formatting() -> None:
    assert format_latency(0.0004) == "400 us"
    assert format_latency(0.0042) == "4.2 ms"
    assert format_latency(0.2449) == "245 ms"
    assert format_latency(1.5) == "1.50 s"
    assert format_latency(None) == "-"
    assert format_count(1234567) == "1,234,567"


def test_style_colours_only_when_enabled() -> None:
    assert Style(enabled=False).paint("x", "red", "bold") == "x"
    assert Style(enabled=True).paint("x", "red", "bold") == "\x1b[31;1mx\x1b[0m"
    assert Style(enabled=True).paint("x") == "x"
    assert Style(enabled=True).paint("", "red") == ""


def test_breaker_states_of_a_row_are_shown_in_order_and_flapping_is_shortened() -> None:
    plain = Style(enabled=False)
    assert _breaker_text(["closed"], plain) == "closed"
    assert _breaker_text(["open", "half_open", "closed"], plain) == "open>half-open>closed"
    flapping = ["closed", "open", "half_open", "open", "half_open", "open"]
    assert _breaker_text(flapping, plain) == "closed>...>open (opened 3x)"
    assert "\x1b[31mopen\x1b[0m" in _breaker_text(["closed", "open"], Style(enabled=True))


def test_rows_line_up_under_the_header_with_and_without_colour() -> None:
    config = DemoConfig(duration=2.5)
    header = table_header(config)
    row = SecondRow(2.0, (Phase.OUTAGE, Phase.HEALTHY), Tally(1, 0, 1), Tally(100, 9, 91, 12, 80), ("open",))
    plain = format_row(row, config, Style(enabled=False))
    assert [i for i, c in enumerate(plain) if c == "|"] == [i for i, c in enumerate(header[1]) if c == "|"]
    assert plain.split()[:2] == ["2s", "outage>healthy"]
    coloured = format_row(row, config, Style(enabled=True))
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    assert [line.split()[0] for line in header] == ["|", "t"]


def _side(name: str, calls: int, successes: int, outage_hits: int, latencies: list[float]) -> SideResult:
    tally = Tally(calls, successes, calls - successes, 5 if name == "pipeline" else 0, 0)
    ordered = tuple(sorted(latencies))
    return SideResult(name, tally, ordered, ordered, calls + 10, outage_hits, 2)


def _result(bare: SideResult, piped: SideResult) -> DemoResult:
    return DemoResult(DemoConfig(duration=20), 1, (7.0, 13.0), (), bare, piped, 20.02)


def test_summary_puts_both_sides_next_to_each_other() -> None:
    bare = _side("bare", 1000, 600, 3000, [0.02] * 95 + [1.2] * 5)
    piped = _side("pipeline", 1100, 770, 30, [0.02] * 98 + [0.25] * 2)
    text = "\n".join(summary_lines(_result(bare, piped), Style(enabled=False)))
    assert "summary after 20.0 s" in text
    assert _summary_value(text, "succeeded (success rate)") == ["600", "(60.0%)", "770", "(70.0%)"]
    assert _summary_value(text, "p99 latency, all calls")[:4] == ["1.20", "s", "250", "ms"]
    assert _summary_value(text, "... during the outage (7-13 s)") == ["3,000", "30", "-99.0%"]
    assert "10.0 points more" in text
    assert "sent 30 instead of 3,000 requests" in text


def test_summary_says_so_when_the_pipeline_does_not_help() -> None:
    worse = _side("pipeline", 1000, 500, 4000, [0.02])
    text = "\n".join(
        summary_lines(_result(_side("bare", 1000, 600, 3000, [0.02]), worse), Style(enabled=False))
    )
    assert "10.0 points fewer" in text
    assert "but sent 4,000 requests" in text
    same = "\n".join(summary_lines(_result(_side("bare", 0, 0, 0, []), _side("pipeline", 0, 0, 0, [])),
                                   Style(enabled=False)))  # fmt: skip
    assert "both sides answered the same share" in same
    assert _summary_value(same, "p50 latency, all calls") == ["-", "-"]


# -- the runner, on a fake clock (no real time passes) --------------------------------------


def test_run_demo_on_a_fake_clock_counts_consistently() -> None:
    clock = FakeClock()
    rows: list[SecondRow] = []
    config = DemoConfig(duration=20, concurrency=3)
    result = asyncio.run(run_demo(config, seed=5, clock=clock, on_row=rows.append))

    assert [row.t for row in result.rows] == [float(t) for t in range(1, 21)]
    assert rows == list(result.rows)
    for side, name in ((result.bare, "bare"), (result.pipeline, "pipeline")):
        for field in ("calls", "successes", "failures", "retries", "rejections"):
            per_row = [getattr(getattr(row, name), field) for row in result.rows]
            assert sum(per_row) == getattr(side.totals, field)
        assert side.totals.calls == side.totals.successes + side.totals.failures == len(side.latencies)
        assert len(side.success_latencies) == side.totals.successes
    assert result.bare.totals.retries == result.bare.totals.rejections == 0
    assert result.pipeline.totals.retries > 0 and result.pipeline.totals.rejections > 0
    assert result.pipeline.dependency_calls_during_outage < result.bare.dependency_calls_during_outage / 2
    outage_rows = [row for row in result.rows if Phase.OUTAGE in row.phases]
    assert any("open" in row.breaker for row in outage_rows)
    assert result.rows[-1].breaker[-1] == "closed"
    assert result.rows[0].phases == (Phase.HEALTHY,)


def test_run_demo_without_a_row_listener_is_repeatable_on_a_fake_clock() -> None:
    def once() -> DemoResult:
        return asyncio.run(run_demo(DemoConfig(duration=4, concurrency=2), seed=3, clock=FakeClock()))

    first, second = once(), once()
    assert first.bare == second.bare and first.pipeline == second.pipeline
    assert len(first.rows) == 4


def test_second_spans_cover_the_run() -> None:
    assert second_spans(1.5) == [(0.0, 1.0), (1.0, 1.5)]
    assert second_spans(3) == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert second_spans(0.25) == [(0.0, 0.25)]


def test_the_pipeline_is_built_as_the_issue_asks() -> None:
    pipeline, retry, breaker = build_pipeline(DemoConfig(duration=2), clock=FakeClock())
    names = [type(p).__name__ for p in pipeline.policies]
    assert names == ["Timeout", "Retry", "CircuitBreaker", "Bulkhead", "Timeout"]
    assert pipeline.policies[1] is retry and pipeline.policies[2] is breaker
    assert retry.attempts == 3 and retry.budget is not None
    assert breaker.config.open_duration == pytest.approx(2 / 15)
    assert breaker.config.window_type == "time" and breaker.config.window_size == pytest.approx(0.2)


def test_demo_config_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError) as caught:
        DemoConfig(duration=0, concurrency=0, interval=-1)
    assert len(caught.value.problems) == 3


def test_run_prints_intro_header_rows_and_summary() -> None:
    out = io.StringIO()
    result = run(DemoConfig(duration=3, concurrency=2), seed=9, out=out, colour=True, clock=FakeClock())
    text = out.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert plain.startswith(
        "buttress demo: 3 s, 2 concurrent callers per side, seed 9 (repeat with --seed 9)"
    )
    assert "full outage from 1.05 s to 1.95 s" in plain
    assert [m.group(1) for line in plain.splitlines() if (m := ROW.match(line))] == ["1", "2", "3"]
    assert "\x1b[" in text
    assert f"{format_count(result.bare.totals.calls)}" in _summary_line(plain, "calls finished")


# -- the command line -----------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_arguments_and_their_defaults() -> None:
    args = _parse()
    assert (args.duration, args.seed, args.concurrency, args.no_color) == (20.0, None, 50, False)
    args = _parse("--duration", "2.5", "--seed", "4", "--concurrency", "7", "--no-color")
    assert (args.duration, args.seed, args.concurrency, args.no_color) == (2.5, 4, 7, True)


@pytest.mark.parametrize(
    "argv",
    [["--duration", "0"], ["--duration", "soon"], ["--duration", "inf"], ["--concurrency", "0"],
     ["--concurrency", "many"], ["--seed", "x"]],
)  # fmt: skip
def test_bad_arguments_are_refused_by_argparse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _parse(*argv)
    assert caught.value.code == 2
    assert argv[0] in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_when_asked_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _cli.wants_colour(_Terminal(), no_color=False)
    assert not _cli.wants_colour(_Terminal(), no_color=True)
    assert not _cli.wants_colour(io.StringIO(), no_color=False)
    assert not _cli.wants_colour(object(), no_color=False)  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _cli.wants_colour(_Terminal(), no_color=False)


def test_run_from_args_picks_and_prints_a_seed_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(config: DemoConfig, *, seed: int, out: object, colour: bool) -> None:
        seen.update(config=config, seed=seed, colour=colour)

    monkeypatch.setattr(_cli, "run", fake_run)
    assert run_from_args(_parse("--duration", "2", "--concurrency", "3")) == 0
    assert seen["config"] == DemoConfig(duration=2, concurrency=3)
    assert isinstance(seen["seed"], int) and seen["colour"] is False


def test_ctrl_c_ends_the_demo_with_exit_code_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "run", interrupted)
    assert run_from_args(_parse("--seed", "1")) == 130
    assert "interrupted" in capsys.readouterr().out


def test_a_reader_that_goes_away_ends_the_demo_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # like ``buttress demo | head`` once head has exited
    with open(write_fd, "w", encoding="utf-8") as broken:
        monkeypatch.setattr(sys, "stdout", broken)
        assert run_from_args(_parse("--seed", "1")) == 0
        monkeypatch.undo()


class _Gone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_broken_stream_without_a_file_descriptor_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", _Gone())
    assert run_from_args(_parse("--seed", "1")) == 0


def test_the_rate_limited_section_caps_what_reaches_the_dependency() -> None:
    from buttress.demo._ratelimit import rate_limit_lines, run_rate_limit_section

    # Real time on purpose (0.5 s): the section shows a limiter holding a real load down.
    result = asyncio.run(run_rate_limit_section(callers=20, rate=200.0, burst=20, duration=0.5))
    bound = 20 + 200.0 * result.elapsed  # what a token bucket can admit in the time it really ran
    assert 0.5 <= result.elapsed < 1.0
    assert result.admitted == sum(result.per_second)
    assert result.admitted <= bound + 1
    assert result.admitted >= 0.5 * bound  # callers honouring retry_after still get their share
    assert result.refused > 0
    assert result.headers["RateLimit-Policy"] == '"default";q=20;w=1'
    lines = rate_limit_lines(result, 20)
    assert "TokenBucket(rate=200/s, burst=20)" in lines[1]
    assert lines[-1].startswith(f"  admitted {result.admitted}, refused {result.refused}")
