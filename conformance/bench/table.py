"""The figures table of a `conformance bench` report: what `conformance bench` prints at the end and the report's
Markdown shows under "Benchmark". It reads only the report, so a report rendered again shows the same table.

The targets are stated, with whether this run met them, never asserted: the figures depend on the machine.
"""

from __future__ import annotations

from ..model import MEASUREMENT_AREA, PASS, Report
from ..report.gfm import md_escape, table
from . import PARALLEL_WORKERS

HEADER = ("figure", "Python", "C", "ratio", "target")
TARGET_MEDIAN_MS = 10.0  # per-case median duration
TARGET_SPEEDUP = 1.7  # serial wall time over the wall time with PARALLEL_WORKERS
TARGET_COST_RATIO = 2.5  # a helper's cost over the same loop's cost in C
TARGET_GRAPHS_PER_S = 2000  # graphs the explorer checks per second, within GRAPHS_COST_RATIO of C
GRAPHS_COST_RATIO = 3.0
TARGET_LOCK_STEPS_PER_S = 1000  # lock-history steps checked against the model per second
ABSENT = "absent"
NONE = "-"


def _number(value, spec: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NONE
    try:
        return format(value, spec)
    except (ValueError, OverflowError):  # a report may hold 1.0 where a count belongs, or an int beyond a float
        return str(value)


def _ratio(value, what: str) -> str:
    text = _number(value, ".2f")
    return NONE if text == NONE else f"{text}x {what}"


def _target(text: str, met: bool | None) -> str:
    return text if met is None else f"{text} ({'met' if met else 'missed'})"


def _compare(value, limit: float, at_most: bool) -> bool | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value <= limit if at_most else value >= limit


def _suite_rows(seen: dict) -> list[tuple[str, ...]]:
    parallel = f"n{PARALLEL_WORKERS}"
    rows = []
    for label, title in (("serial", "serial"), (parallel, f"-n {PARALLEL_WORKERS}")):
        speedup = seen.get("perf.suite.speedup") if label == parallel else None
        rows.append((f"suite wall time, {title} (s)", _number(seen.get(f"perf.suite.{label}.wall_s"), ".2f"), NONE,
                     _ratio(speedup, "faster"),
                     _target(f">= {TARGET_SPEEDUP}x faster", _compare(speedup, TARGET_SPEEDUP, False))
                     if label == parallel else NONE))
        case_median = seen.get(f"perf.suite.{label}.case_median_ms")
        rows.append((f"per-case median, {title} (ms)", _number(case_median, ".2f"), NONE, NONE,
                     _target(f"<= {TARGET_MEDIAN_MS:g} ms", _compare(case_median, TARGET_MEDIAN_MS, True))))
        rows.append((f"per-case p95, {title} (ms)", _number(seen.get(f"perf.suite.{label}.case_p95_ms"), ".2f"),
                     NONE, NONE, NONE))
    counts = [_number(seen.get(f"perf.suite.{label}.cases"), "d") for label in ("serial", parallel)]
    rows.append((f"suite cases (serial / -n {PARALLEL_WORKERS})", " / ".join(counts), NONE, NONE, NONE))
    return rows


def _rate_row(title: str, seen: dict, figure: str, params: str, notes: list,
              at_least: float | None = None) -> tuple[str, ...]:
    """A rate and its C counterpart; the target is the cost ratio, and with `at_least`, that rate too (and the
    ratio GRAPHS_COST_RATIO)."""
    def get(name: str):
        return seen.get(f"perf.{figure}.{name}{params}")

    python = get("python_per_s")
    if python is None:
        return (title, ABSENT, ABSENT, NONE, NONE)
    reason = get("c_absent")
    if reason is not None:
        notes.append(f"C figures absent: {reason}")
    ratio = get("cost_ratio")
    limit = TARGET_COST_RATIO if at_least is None else GRAPHS_COST_RATIO
    target, met = f"<= {limit:g}x the cost", _compare(ratio, limit, True)
    if at_least is not None:
        fast_enough = _compare(python, at_least, False)
        target = f">= {at_least:,.0f}/s, {target}"
        met = None if met is None or fast_enough is None else met and fast_enough
    return (title, _number(python, ",.0f"), ABSENT if reason is not None else _number(get("c_per_s"), ",.0f"),
            _ratio(ratio, "the cost"), _target(target, met))


def figures(report: Report) -> tuple[list[tuple[str, ...]], list[str]]:
    """The rows of the table and its notes (why a figure is absent); no rows for a report without perf cases."""
    cases = [case for case in report.cases if case.area == MEASUREMENT_AREA]
    if not cases:
        return [], []
    seen: dict = {}
    for case in cases:
        seen.update(case.observations)
    notes = [f"{case.id}: {case.outcome}: {case.reason}" for case in cases if case.outcome != PASS]
    rows = _suite_rows(seen)
    rows.append(_rate_row("descriptor pass round trips per s", seen, "fd_pass", "", notes))
    rows.append(_rate_row("in-flight graphs checked per s", seen, "graphs", "", notes, TARGET_GRAPHS_PER_S))
    steps = seen.get("perf.lock_steps.python_per_s")
    rows.append(("lock-history steps checked per s", _number(steps, ",.0f") if steps is not None else ABSENT, NONE,
                 NONE, _target(f">= {TARGET_LOCK_STEPS_PER_S:,}/s", _compare(steps, TARGET_LOCK_STEPS_PER_S, False))))
    for family in [case.params for case in cases if case.name == "test_lock_unlock_pairs"]:
        rows.append(_rate_row(f"{family} lock/unlock pairs per s", seen, "lock_pairs", f"[{family}]", notes))
    over_bare = seen.get("perf.fork.child_over_bare")
    rows.append(("fork and reap through Child (us)", _number(seen.get("perf.fork.child_us"), ".0f"), NONE,
                 _ratio(over_bare, "a bare fork"), NONE))
    rows.append(("bare fork, _exit and waitpid (us)", _number(seen.get("perf.fork.bare_us"), ".0f"), NONE, NONE, NONE))
    return rows, list(dict.fromkeys(notes))


def markdown_section(report: Report) -> list[str]:
    """The report's Markdown page shows the table under "Benchmark"; nothing for a report without perf cases."""
    rows, notes = figures(report)
    if not rows:
        return []
    lines = ["", "## Benchmark", ""]
    lines += table(list(HEADER), [[md_escape(cell) for cell in row] for row in rows])
    return lines + ([""] if notes else []) + [f"- {md_escape(note)}" for note in notes]


def render_text(rows: list[tuple[str, ...]], notes: list[str]) -> str:
    """The table in aligned columns, then the notes."""
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (HEADER, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines + [f"note: {note}" for note in notes]) + "\n"
