"""What the fault runs mean: for each fault, the cases it turned red (the control's outcome was not red, the
fault's is), the cases it hid (passed in the control, unsupported under the fault); the mutation score of each
area; the blind spots. Written as mutants.json and mutants.md."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..model import ERROR, FAILING, PASS, UNSUPPORTED
from .catalogue import AREAS, Fault
from .runner import MAX_RED, Outcome

RED = FAILING
# A report's area -> the catalogue's area, where the catalogue selects part of a report area by name.
REPORT_AREA = {"exploration": "lock_histories"}
SHOWN_CASES = 6  # per fault in the Markdown; the JSON has every one

CAUGHT, OBSERVED, BLIND, BROKEN = "caught", "observed", "blind spot", "run broke"
NOT_APPLICABLE, UNOBSERVABLE = "not applicable", "unobservable"
RAN = (CAUGHT, OBSERVED, BLIND, BROKEN)


def area_of(case_id: str) -> str:
    area = case_id.split("/", 1)[0]
    return REPORT_AREA.get(area, area)


@dataclass
class Verdict:
    fault: Fault
    status: str
    why: str = ""
    killed: dict[str, str] = field(default_factory=dict)  # case id -> its outcome under the fault
    hidden: list[str] = field(default_factory=list)
    changed: dict[str, tuple] = field(default_factory=dict)  # observation -> (control's value, the fault's)
    reached: set = field(default_factory=set)  # the areas of which at least one case ran
    seconds: float = 0.0

    def killed_in(self, area: str) -> int:
        return sum(1 for case in self.killed if area_of(case) == area)

    def to_json(self) -> dict:
        return {"fault": self.fault.name, "breaks": self.fault.breaks, "reference": self.fault.reference,
                "areas": list(self.fault.areas), "status": self.status, "why": self.why, "killed": self.killed,
                "hidden": self.hidden, "changed": {k: list(v) for k, v in self.changed.items()},
                "seconds": round(self.seconds, 3)}


def judge(fault: Fault, run: Outcome | None, control: Outcome, os_name: str) -> Verdict:
    if not fault.applies_to(os_name):
        return Verdict(fault, NOT_APPLICABLE, f"the layer plants it on {', '.join(fault.platforms)} only")
    if fault.unobservable:
        return Verdict(fault, UNOBSERVABLE, fault.unobservable)
    assert run is not None
    verdict = Verdict(fault, BLIND, seconds=run.seconds)
    for case, outcome in run.cases.items():
        before = control.cases.get(case)
        if before is None:
            continue  # not in the control's selection: nothing to compare with
        verdict.reached.add(area_of(case))
        if outcome in RED and before not in RED:
            verdict.killed[case] = outcome
        elif before == PASS and outcome == UNSUPPORTED:
            verdict.hidden.append(case)
    if verdict.killed:
        verdict.status = CAUGHT
        if run.stopped_at_max:
            verdict.why = f"its run stopped at its {MAX_RED}th red case"
        elif run.problem:
            verdict.why = f"its run did not finish ({run.problem}); the cases that finished caught it"
        if all(outcome == ERROR for outcome in verdict.killed.values()):
            # Caught, but by the harness (its leak check, a deadline), not by an assertion about the behaviour.
            verdict.why = "; ".join(filter(None, [verdict.why, "only as harness errors: no case failed"]))
    elif run.problem:
        verdict.status, verdict.why = BROKEN, run.problem
    else:
        verdict.changed = {key: (control.observations[key], value) for key, value in run.observations.items()
                           if key in control.observations and control.observations[key] != value}
        if verdict.changed:
            # What the references allow either way is an observation: the platform's reference report records it,
            # and `conformance diff --fail-on-observations` names the change.
            verdict.status = OBSERVED
            verdict.why = (f"no case turned red (the references allow what it does); {len(verdict.changed)} "
                           "observations changed, which the diff against the reference report names")
        else:
            verdict.why = f"no case of {', '.join(fault.areas)} turned red and no observation changed"
    return verdict


def scores(verdicts: list[Verdict]) -> dict[str, tuple[int, int]]:
    """Area -> (faults aimed at it that its own cases caught, faults aimed at it), over the faults whose runs reached
    the area (a run stops at its tenth red case) and that a case may fail on (not the observed ones)."""
    table = {}
    for area in AREAS:
        aimed = [v for v in verdicts if area in v.fault.areas and v.status in (CAUGHT, BLIND, BROKEN)
                 and (area in v.reached or v.status == BROKEN)]
        if aimed:
            table[area] = (sum(1 for v in aimed if v.killed_in(area)), len(aimed))
    return table


def uncaught(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.status in (BLIND, BROKEN)]


def headline(verdicts: list[Verdict], control: Outcome) -> str:
    ran = [v for v in verdicts if v.status in RAN]
    caught = sum(1 for v in ran if v.status == CAUGHT)
    parts = [f"{caught} of {len(ran)} faults caught"]
    for status in (OBSERVED, BLIND, BROKEN, UNOBSERVABLE, NOT_APPLICABLE):
        n = sum(1 for v in verdicts if v.status == status)
        if n:
            parts.append(f"{n} {status}{'s' if n > 1 and status == BLIND else ''}")
    if control.problem:
        parts.append(f"the control run is not usable: {control.problem}")
    return ", ".join(parts)


def to_json(platform_id: str, control: Outcome, verdicts: list[Verdict], seconds: float) -> dict:
    return {
        "platform": platform_id,
        "headline": headline(verdicts, control),
        "seconds": round(seconds, 3),
        "control": {"areas": control.areas, "problem": control.problem, "cases": len(control.cases),
                    "red": sorted(case for case, outcome in control.cases.items() if outcome in RED),
                    "seconds": round(control.seconds, 3)},
        "scores": {area: {"caught": c, "aimed": n} for area, (c, n) in scores(verdicts).items()},
        "faults": [v.to_json() for v in verdicts],
    }


def _cell(verdict: Verdict, area: str) -> str:
    if area not in verdict.fault.areas or verdict.status not in RAN:
        return ""
    if area not in verdict.reached:
        return "·"
    n = verdict.killed_in(area)
    return f"**{n}**" if n else "0"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(platform_id: str, control: Outcome, verdicts: list[Verdict], seconds: float) -> str:
    areas = [area for area in AREAS if any(area in v.fault.areas for v in verdicts)]
    lines = [f"# Mutants on {platform_id}", "", f"**{headline(verdicts, control)}** ({seconds:.0f} s)", ""]
    lines += ["A fault is caught when at least one case that was not red in the control run (the same cases with "
              "the layer loaded and no fault) is red under it; observed when no case turned red but an observation "
              "changed, which the references allow and the diff against the reference report names. A cell counts "
              f"the cases of that area the fault turned red; empty: the area is not run for that fault; ·: its run "
              f"stopped at its {MAX_RED}th red case before reaching the area.", ""]
    blind = uncaught(verdicts)
    if blind:
        lines += ["## Blind spots", ""]
        lines += [f"- `{v.fault.name}` ({v.status}): {_md(v.fault.breaks)}. {_md(v.why)}" for v in blind]
        lines.append("")
    lines += ["## Score per area", "", "| area | faults aimed at it | caught by its cases | score |",
              "|---|---:|---:|---:|"]
    for area, (caught, aimed) in scores(verdicts).items():
        lines.append(f"| {area} | {aimed} | {caught} | {100 * caught / aimed:.0f}% |")
    lines += ["", "## Kill matrix", "", "| fault | " + " | ".join(areas) + " | verdict |",
              "|---|" + "---:|" * len(areas) + "---|"]
    for v in verdicts:
        lines.append(f"| `{v.fault.name}` | " + " | ".join(_cell(v, a) for a in areas) + f" | {v.status} |")
    lines += ["", "## Each fault", ""]
    for v in verdicts:
        lines.append(f"### `{v.fault.name}`: {v.status}")
        lines += ["", f"Breaks: {_md(v.fault.breaks)}. Reference: {_md(v.fault.reference)}."]
        if v.why:
            lines.append(f"{_md(v.why[:1].upper() + v.why[1:])}.")
        if v.killed:
            shown = sorted(v.killed)[:SHOWN_CASES]
            more = len(v.killed) - len(shown)
            lines += ["", f"Turned red ({len(v.killed)}):", ""]
            lines += [f"- `{case}` ({v.killed[case]})" for case in shown]
            if more:
                lines.append(f"- and {more} more (mutants.json)")
        if v.changed:
            lines += ["", "Observations changed: " + ", ".join(f"`{k}` {a!r} → {b!r}" for k, (a, b) in
                                                             sorted(v.changed.items())[:SHOWN_CASES])]
        if v.hidden:
            lines += ["", f"Hidden as unsupported ({len(v.hidden)}): " + ", ".join(f"`{c}`" for c in v.hidden[:3])]
        lines.append("")
    red = sorted(case for case, outcome in control.cases.items() if outcome in RED)
    if red:
        lines += ["## Red in the control run (not counted for any fault)", ""]
        lines += [f"- `{case}`" for case in red]
        lines.append("")
    return "\n".join(lines)


def write(out: Path, platform_id: str, control: Outcome, verdicts: list[Verdict], seconds: float) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "mutants.json", out / "mutants.md"
    json_path.write_text(json.dumps(to_json(platform_id, control, verdicts, seconds), indent=1) + "\n")
    md_path.write_text(render_markdown(platform_id, control, verdicts, seconds))
    return json_path, md_path
