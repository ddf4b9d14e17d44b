"""Turning a demo run into text: the live per-second table and the side-by-side summary.

Everything here is a pure function of the numbers it is given (no clock, no I/O), so the
layout is tested without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from buttress.demo._dependency import Phase, phases_between
from buttress.demo._runner import (
    BUDGET_RATIO,
    FAILURE_RATE,
    FAILURE_THRESHOLD,
    RETRY_ATTEMPTS,
    DemoConfig,
    DemoResult,
    SecondRow,
    SideResult,
    Tally,
    second_spans,
)

__all__ = [
    "Style",
    "format_count",
    "format_latency",
    "format_row",
    "intro_lines",
    "percentile",
    "summary_lines",
    "table_header",
]

_RESET = "\x1b[0m"
_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_STATE_COLOURS = {"closed": ("green",), "open": ("red",), "half_open": ("yellow",), "forced_open": ("red",),
                  "forced_closed": ("yellow",)}  # fmt: skip
_PHASE_COLOURS = {"outage": ("red",)}
_COUNT_WIDTH = 6
_BREAKER_WIDTH = 7


class Style:
    """ANSI colours when ``enabled``, plain text otherwise.

    Example:
        >>> Style(enabled=False).paint("open", "red")
        'open'
        >>> Style(enabled=True).paint("open", "red")
        '\\x1b[31mopen\\x1b[0m'
    """

    __slots__ = ("enabled",)

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def paint(self, text: str, *styles: str) -> str:
        """``text`` wrapped in the escape codes of ``styles`` (names such as ``"red"``)."""
        if not self.enabled or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}{_RESET}"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, interpolating linearly; ``None`` if empty.

    The values need not be sorted. It is the "linear" method of NumPy and of
    :func:`statistics.quantiles` with ``method="inclusive"``.

    Raises:
        ValueError: when ``q`` is not in [0, 100].

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.5
        >>> percentile([5.0], 99), percentile([], 50)
        (5.0, None)
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100] (got {q!r})")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def format_latency(seconds: float | None) -> str:
    """A duration for people: ``"850 us"``, ``"4.2 ms"``, ``"35 ms"``, ``"1.27 s"``; ``"-"`` for None.

    Example:
        >>> [format_latency(s) for s in (0.00085, 0.0042, 0.035, 1.2749, None)]
        ['850 us', '4.2 ms', '35 ms', '1.27 s', '-']
    """
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 0.01:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def format_count(n: int) -> str:
    """An integer with thousands separators: ``format_count(12345) == "12,345"``."""
    return f"{n:,}"


def _state_name(state: str) -> str:
    return state.replace("_", "-")


def _path(items: Sequence[str], style: Style, colours: Mapping[str, tuple[str, ...]]) -> str:
    """States or phases in the order they were seen: ``"closed>open"``."""
    return ">".join(style.paint(_state_name(item), *colours.get(item, ())) for item in items)


def _breaker_text(states: Sequence[str], style: Style) -> str:
    """The breaker's states during one row; a long open/half-open flapping is shortened.

    Example:
        >>> _breaker_text(["closed", "open", "half_open", "open", "half_open", "open"], Style(enabled=False))
        'closed>...>open (opened 3x)'
    """
    if len(states) <= 4:
        return _path(states, style, _STATE_COLOURS)
    opened = sum(1 for state in states if state == "open")
    first, last = _path(states[:1], style, _STATE_COLOURS), _path(states[-1:], style, _STATE_COLOURS)
    return f"{first}>...>{last} (opened {opened}x)"


def _phase_text(phases: Sequence[Phase], style: Style) -> str:
    return _path([p.value for p in phases], style, _PHASE_COLOURS)


def _phase_width(config: DemoConfig) -> int:
    outage = (config.behaviour.outage_start * config.duration, config.behaviour.outage_end * config.duration)
    labels = [
        _phase_text(phases_between(a, b, outage), Style(enabled=False))
        for a, b in second_spans(config.duration)
    ]
    return max(len("dependency"), *(len(label) for label in labels))


def _pad(text: str, plain_width: int, width: int, *, right: bool = True) -> str:
    """Pad ``text`` (which may hold escape codes) whose visible width is ``plain_width``."""
    gap = " " * max(0, width - plain_width)
    return gap + text if right else text + gap


def _t_label(t: float) -> str:
    return f"{t:g}s"


def intro_lines(config: DemoConfig, seed: int) -> list[str]:
    """What is about to run: the dependency's schedule and the two sides.

    Example:
        >>> intro_lines(DemoConfig(duration=20), seed=7)[0]
        'buttress demo: 20 s, 50 concurrent callers per side, seed 7 (repeat with --seed 7)'
    """
    b = config.behaviour
    down, up = b.outage_start * config.duration, b.outage_end * config.duration
    return [
        f"buttress demo: {config.duration:g} s, {config.concurrency} concurrent callers per side, "
        f"seed {seed} (repeat with --seed {seed})",
        f"dependency: {b.error_rate:.0%} random errors, {b.spike_rate:.0%} latency spikes of "
        f"{b.spike_latency[0]:g}-{b.spike_latency[1]:g} s, full outage from {down:g} s to {up:g} s",
        "bare:       await dependency()",
        f"pipeline:   Timeout({config.total_timeout:g} s) > Retry({RETRY_ATTEMPTS} attempts, full jitter, "
        f"budget {BUDGET_RATIO:.0%}) > CircuitBreaker({FAILURE_THRESHOLD} failures in a row or "
        f"{FAILURE_RATE:.0%} over {config.breaker_window:g} s, open {config.open_duration:.3g} s) > "
        f"Bulkhead({max(1, config.concurrency // 2)} in flight) > Timeout({config.attempt_timeout:g} s)",
        "",
    ]


def _side_columns() -> list[str]:
    names = ["calls", "ok", "fail", "retry", "rej"]
    return [name.rjust(_COUNT_WIDTH) for name in names]


def table_header(config: DemoConfig) -> list[str]:
    """The two header lines of the live table (they carry no colour)."""
    phase_width = _phase_width(config)
    t_width = max(len(_t_label(t)) for _, t in second_spans(config.duration))
    lead = " " * t_width + "  " + " " * phase_width
    side_width = _COUNT_WIDTH * 5 + 5 + _BREAKER_WIDTH
    first = f"{lead} | {'bare'.ljust(side_width)} | pipeline"
    columns = " ".join(_side_columns())
    second = (
        f"{'t'.rjust(t_width)}  {'dependency'.ljust(phase_width)} | "
        f"{columns} {'breaker'.ljust(_BREAKER_WIDTH)} | {columns} breaker"
    )
    return [first, second]


def _tally_cells(tally: Tally, style: Style, *, policies: bool) -> str:
    fail = str(tally.failures).rjust(_COUNT_WIDTH)
    cells = [
        str(tally.calls).rjust(_COUNT_WIDTH),
        str(tally.successes).rjust(_COUNT_WIDTH),
        style.paint(fail, "red") if tally.failures else fail,
        (str(tally.retries) if policies else "-").rjust(_COUNT_WIDTH),
        (str(tally.rejections) if policies else "-").rjust(_COUNT_WIDTH),
    ]
    return " ".join(cells)


def format_row(row: SecondRow, config: DemoConfig, style: Style) -> str:
    """One line of the live table.

    Example:
        >>> from buttress.demo._dependency import Phase
        >>> bare, piped = Tally(480, 432, 48), Tally(479, 478, 1, 70, 0)
        >>> row = SecondRow(1.0, (Phase.HEALTHY,), bare, piped, ("closed",))
        >>> for part in format_row(row, DemoConfig(duration=20), Style(enabled=False)).split(" | "):
        ...     print(part.strip())
        1s  healthy
        480    432     48      -      - -
        479    478      1     70      0 closed
    """
    phase_width = _phase_width(config)
    t_width = max(len(_t_label(t)) for _, t in second_spans(config.duration))
    phases = _phase_text(row.phases, style)
    phases_plain = _phase_text(row.phases, Style(enabled=False))
    return (
        f"{_t_label(row.t).rjust(t_width)}  {_pad(phases, len(phases_plain), phase_width, right=False)} | "
        f"{_tally_cells(row.bare, style, policies=False)} {'-'.ljust(_BREAKER_WIDTH)} | "
        f"{_tally_cells(row.pipeline, style, policies=True)} {_breaker_text(row.breaker, style)}"
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _change(old: float | None, new: float | None) -> str:
    """How ``new`` compares to ``old``: ``"-98.9 %"``, ``"3.2x lower"`` and so on."""
    if old is None or new is None or old == 0:
        return ""
    return f"{(new - old) / old:+.1%}"


def summary_lines(result: DemoResult, style: Style) -> list[str]:
    """The side-by-side summary and a plain statement of what changed.

    Every figure comes from ``result``; the closing sentences are chosen by comparing the
    two sides, so a run in which the pipeline did worse says so.
    """
    bare, piped = result.bare, result.pipeline
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, left: str, right: str, note: str = "") -> None:
        rows.append((label, left, right, note))

    def succeeded(side: SideResult) -> str:
        return f"{format_count(side.totals.successes)} ({_share(side.totals.successes, side.totals.calls)})"

    b50, p50 = percentile(bare.latencies, 50), percentile(piped.latencies, 50)
    b99, p99 = percentile(bare.latencies, 99), percentile(piped.latencies, 99)
    s99b, s99p = percentile(bare.success_latencies, 99), percentile(piped.success_latencies, 99)
    add("calls finished", format_count(bare.totals.calls), format_count(piped.totals.calls))
    add("succeeded (success rate)", succeeded(bare), succeeded(piped))
    add("p50 latency, all calls", format_latency(b50), format_latency(p50))
    add("p99 latency, all calls", format_latency(b99), format_latency(p99), _change(b99, p99))
    add("p99 latency, successful calls", format_latency(s99b), format_latency(s99p), _change(s99b, s99p))
    add("retries", "-", format_count(piped.totals.retries))
    add("rejected by the breaker", "-", format_count(piped.totals.rejections))
    add("requests that reached the dependency", format_count(bare.dependency_calls),
        format_count(piped.dependency_calls))  # fmt: skip
    down, up = result.outage
    add(f"... during the outage ({down:g}-{up:g} s)", format_count(bare.dependency_calls_during_outage),
        format_count(piped.dependency_calls_during_outage),
        _change(bare.dependency_calls_during_outage, piped.dependency_calls_during_outage))  # fmt: skip
    add("unfinished at the end (not counted)", format_count(bare.unfinished), format_count(piped.unfinished))

    label_width = max(len(r[0]) for r in rows)
    value_width = max(len("pipeline"), *(max(len(r[1]), len(r[2])) for r in rows))
    lines = [
        "",
        style.paint(f"summary after {result.elapsed:.1f} s", "bold"),
        f"  {''.ljust(label_width)}  {'bare'.rjust(value_width)}  {'pipeline'.rjust(value_width)}",
    ]
    for label, left, right, note in rows:
        line = f"  {label.ljust(label_width)}  {left.rjust(value_width)}  {right.rjust(value_width)}"
        lines.append(f"{line}  {style.paint(note, 'dim')}" if note else line)
    lines.append("")
    lines.extend(_verdict(result, style))
    return lines


def _verdict(result: DemoResult, style: Style) -> list[str]:
    bare, piped = result.bare, result.pipeline
    points = (piped.success_rate - bare.success_rate) * 100
    if points >= 0.05:
        rate = f"the pipeline answered {points:.1f} points more of its calls successfully"
    elif points <= -0.05:
        rate = f"the pipeline answered {-points:.1f} points fewer of its calls successfully"
    else:
        rate = "both sides answered the same share of their calls successfully"
    lines = [style.paint(f"In short: {rate}", "bold") + ","]
    b_out, p_out = bare.dependency_calls_during_outage, piped.dependency_calls_during_outage
    if p_out < b_out:
        lines.append(
            f"and sent {format_count(p_out)} instead of {format_count(b_out)} requests to the dependency "
            "while it was down."
        )
    else:
        lines.append(
            f"but sent {format_count(p_out)} requests to the dependency while it was down "
            f"(bare: {format_count(b_out)})."
        )
    return lines
