"""`conformance list`: the cases a run would run here, collected as a run collects them (pytest's collection with
the suite's plugin, in this process; no case runs), each with its area, its references, the probes it needs and
whether this machine has them, and what the platform's expectation file says of it."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .model import DEVIATION, FAIL, UNSUPPORTED, Expectation
from .report.text import one_line
from .session import QUIET_REWRITE

# What the text calls a case whose outcome nothing known before it runs decides.
RUNS = "runs"


class NoCaseSelected(Exception):
    """The collection selected no case (a -k that matches none)."""


class CollectionFailed(Exception):
    """pytest could not collect the suite: its own output says why."""

    def __init__(self, status: int, output: str) -> None:
        super().__init__(output)
        self.status = status


@dataclass(frozen=True)
class Need:
    probe: str
    supported: bool
    reason: str
    always_has: str | None  # where this OS always has the mechanism: its absence fails the case instead

    def to_json(self) -> dict:
        return {"probe": self.probe, "supported": self.supported, "reason": self.reason,
                "always_has": self.always_has}


@dataclass(frozen=True)
class AskedValue:
    """A value the case asks the expectation file for; None where the file documents none."""

    observation: str
    value: object
    reason: str

    def to_json(self) -> dict:
        return {"observation": self.observation, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class Listed:
    id: str
    area: str
    references: tuple[str, ...]
    needs: tuple[Need, ...]
    asked: tuple[AskedValue, ...]
    decided_when_it_runs: bool
    expectation: Expectation | None
    source: str  # where the expectation file says it (file:line), or ""

    @property
    def outcome_here(self) -> str | None:
        """The outcome known before the case runs: a missing mechanism, then a documented deviation; else None."""
        missing = [need for need in self.needs if not need.supported]
        if any(need.always_has for need in missing):
            return FAIL
        if missing or any(asked.value is None for asked in self.asked):
            return UNSUPPORTED
        return DEVIATION if self.expectation else None

    def to_json(self) -> dict:
        return {"id": self.id, "area": self.area, "references": list(self.references),
                "needs": [need.to_json() for need in self.needs], "decided_when_it_runs": self.decided_when_it_runs,
                "expected_values": [asked.to_json() for asked in self.asked],
                "expectation": self.expectation.to_json() if self.expectation else None,
                "outcome_here": self.outcome_here}


def _listed(item, expectations) -> Listed:
    from . import needs
    from .platforms import constants
    from .platforms.probes import probe
    from .plugin.identity import case_id, case_parts, references

    found, always = needs.of(item), constants().ALWAYS_HAS
    area, _, params = case_parts(item)
    probes = tuple(Need(name, probe(name).supported, probe(name).reason, always.get(name)) for name in found.probes)
    asked = []
    for name in found.expected:
        key = f"{area}.{name}[{params}]" if params else f"{area}.{name}"
        entry = expectations.expected(key) or expectations.expected(f"{area}.{name}")
        asked.append(AskedValue(entry.observation, entry.value, entry.reason) if entry else
                     AskedValue(f"{area}.{name}", None, "the expectation file documents no value for this platform"))
    identity = case_id(item)
    deviation = expectations.lookup(identity)
    expectation = Expectation(DEVIATION, deviation.reason, deviation.references) if deviation else None
    return Listed(identity, area, tuple(references(item)), probes, tuple(asked), found.decided_when_it_runs,
                  expectation, _shorter(deviation.source) if deviation else "")


def _shorter(source: str) -> str:
    """An expectation file's place as the package names it (conformance/expectations/linux.toml:7), where it is one
    of the package's own files."""
    package = Path(__file__).resolve().parent
    path = Path(source.rsplit(":", 1)[0]).resolve()
    inside = package in path.parents
    return str(Path(package.name) / path.relative_to(package)) + source[len(source.rsplit(":", 1)[0]):] if inside \
        else source


def _reader():
    """A plugin that reads the collected cases once -k has deselected what it does not match."""
    import pytest

    from .plugin.identity import is_case
    from .plugin.options import EXPECTATIONS

    class Reader:
        listed: list[Listed] | None = None

        @pytest.hookimpl(trylast=True)
        def pytest_collection_finish(self, session) -> None:
            expectations = session.config.stash[EXPECTATIONS]
            self.listed = [_listed(item, expectations) for item in session.items if is_case(item)]

    return Reader()


def collect(paths: list[str], keyword: str | None = None) -> list[Listed]:
    """The cases of `paths` that `-k keyword` selects, in the order a run without random ordering runs them."""
    import pytest

    reader = _reader()
    args = [*paths, "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *QUIET_REWRITE]
    if keyword is not None:
        args += ["-k", keyword]
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        status = int(pytest.main(args, plugins=[reader]))
    if status == pytest.ExitCode.NO_TESTS_COLLECTED or (status == pytest.ExitCode.OK and not reader.listed):
        raise NoCaseSelected()
    if status != pytest.ExitCode.OK or reader.listed is None:
        raise CollectionFailed(status, output.getvalue())
    return reader.listed


# ---- text ------------------------------------------------------------------------------------------------------

NEEDS_COLUMN = 32  # the needs of most cases fit; longer ones push their id right
LATER = "+"  # in the needs column: more is decided when the case runs


def render_text(listed: list[Listed]) -> str:
    """One line per case: what is known of its outcome here, the probes it needs, its id (last, the one column of
    no fixed width: a terminal narrower than a long id wraps only the id); then the notes the lines point to: each
    missing mechanism with its probe's reason, each documented deviation or value with its reason."""
    notes: dict[str, int] = {}

    def note(text: str) -> str:
        return f"[{notes.setdefault(text, len(notes) + 1)}]"

    rows = [(_here(case, note), _needs(case, note), one_line(case.id)) for case in listed]
    here_width = max(len(here) for here, _, _ in rows)
    needs_width = min(max(len(needs) for _, needs, _ in rows), NEEDS_COLUMN)
    lines = [f"{'here':<{here_width}}  {'needs':<{needs_width}}  case"]
    lines += [f"{here:<{here_width}}  {needs:<{needs_width}}  {identity}" for here, needs, identity in rows]
    later = any(case.decided_when_it_runs for case in listed)
    legend = [f"{LATER}: more is decided when the case runs" if later else "", "[n]: see note n below" if notes else ""]
    lines += ["", "; ".join(filter(None, legend))] if any(legend) else [""]
    lines += [f"[{number}] {text}" for text, number in notes.items()]
    lines.append(_summary(listed))
    return "\n".join(lines) + "\n"


def _here(case: Listed, note) -> str:
    outcome = case.outcome_here
    if outcome == DEVIATION:
        return f"{DEVIATION} " + note(f"{DEVIATION} ({one_line(case.source)}): {one_line(case.expectation.reason)} "
                                      f"(references: {one_line('; '.join(case.expectation.references))})")
    return outcome or RUNS


def _needs(case: Listed, note) -> str:
    needs = []
    for need in case.needs:
        if need.supported:
            needs.append(need.probe)
        elif need.always_has:
            needs.append(need.probe + " " + note(f"{need.probe}: {one_line(need.reason)}; this OS always has it "
                                                 f"({one_line(need.always_has)}), so the case fails"))
        else:
            needs.append(need.probe + " " + note(f"{need.probe} is missing here: {one_line(need.reason)}"))
    for asked in case.asked:
        if asked.value is None:
            needs.append(f"value of {asked.observation} " + note(f"{asked.observation}: {asked.reason}"))
        else:
            needs.append(f"{asked.observation}={one_line(str(asked.value))}")
    if case.decided_when_it_runs:
        needs.append(LATER)
    return " ".join(needs) or "-"


def _summary(listed: list[Listed]) -> str:
    counts: dict[str, int] = {}
    for case in listed:
        counts[case.outcome_here or RUNS] = counts.get(case.outcome_here or RUNS, 0) + 1
    later = sum(1 for case in listed if case.decided_when_it_runs)
    parts = ", ".join(f"{counts[word]} {word}" for word in (RUNS, DEVIATION, UNSUPPORTED, FAIL) if word in counts)
    return f"{len(listed)} case{'s' if len(listed) != 1 else ''}: {parts}; {later} with more decided when they run"


def render_json(listed: list[Listed]) -> str:
    return json.dumps([case.to_json() for case in listed], indent=1, ensure_ascii=False) + "\n"
