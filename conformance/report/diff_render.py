"""A ``ReportDiff`` as terminal text, GitHub Markdown or JSON."""

from __future__ import annotations

import json
from typing import Any

from ..model import UNEXPECTED_PASS
from .diff import CASE_KINDS, OBSERVATION_KINDS, ReportDiff
from .gfm import md_escape, table
from .text import one_line
from .vocabulary import MISSING, MISSING_TEXT

REASON_LIMIT = 200
DIFF_FORMAT_VERSION = 1


# How the verdict names each class of regression (ReportDiff.counted()).
_CLASS_WORDS = {
    "regression": ("case regression", "case regressions"),
    "new-failing": ("new failing case", "new failing cases"),
    "vanished": ("vanished case", "vanished cases"),
    "observation": ("observation change counted as a regression", "observation changes counted as regressions"),
    "run": ("problem of the new run", "problems of the new run"),
}


def _verdict(diff: ReportDiff) -> str:
    counts = diff.counted()
    if not counts:
        return "no regressions" if not diff.empty() else "no differences"
    return ", ".join(f"{number} {_CLASS_WORDS[kind][number != 1]}" for kind, number in counts.items())


def _outcome_step(old: str | None, new: str | None) -> str:
    if old is None:
        return f"new: {new}"
    if new is None:
        return f"was {old}"
    return f"{old} -> {new}"


def _value_step(old: Any, new: Any) -> str:
    if old is MISSING:
        return f"= {one_line(new, REASON_LIMIT)}"
    if new is MISSING:
        return f"(was {one_line(old, REASON_LIMIT)})"
    return f"{one_line(old, REASON_LIMIT)} -> {one_line(new, REASON_LIMIT)}"


def render_text(diff: ReportDiff, old_source: str, new_source: str) -> str:
    lines = [
        f"old: {one_line(diff.old.platform.id)} ({one_line(old_source)})",
        f"new: {one_line(diff.new.platform.id)} ({one_line(new_source)})",
    ]
    if diff.platform:
        lines.append("platform:")
        lines += [f"  {name}: {one_line(old)} -> {one_line(new)}" for name, old, new in diff.platform]
    if diff.capabilities:
        lines.append("capabilities:")
        lines += [f"  {one_line(name)}: {old} -> {new}" for name, old, new in diff.capabilities]
    if diff.run:
        lines.append(f"the new run ({len(diff.run)}):")
        lines += [f"  {one_line(problem)}" for problem in diff.run]
    for kind, heading in CASE_KINDS.items():
        changes = [change for change in diff.cases if change.kind == kind]
        if changes and kind == "not-selected":
            lines.append(f"{heading}: {len(changes)}")
        elif changes:
            lines.append(f"{heading} ({len(changes)}):")
            for change in changes:
                lines.append(f"  {one_line(change.id)}: {_outcome_step(change.old, change.new)}")
                if change.reason and kind in ("regression", "new-failing", UNEXPECTED_PASS, "changed"):
                    lines.append(f"      {one_line(change.reason, REASON_LIMIT)}")
    for kind, heading in OBSERVATION_KINDS.items():
        changes = [change for change in diff.observations if change.kind == kind]
        if changes:
            lines.append(f"{heading} ({len(changes)}):")
            for change in changes:
                lines.append(f"  {one_line(change.key)} {_value_step(change.old, change.new)}")
                if change.explanation:
                    lines.append(f"      {one_line(change.explanation, REASON_LIMIT)}")
    lines.append(f"result: {_verdict(diff)}")
    return "\n".join(lines) + "\n"


def _md_value(value: Any) -> str:
    return f"*({MISSING_TEXT})*" if value is MISSING else md_escape(value)


def render_markdown(diff: ReportDiff, old_source: str, new_source: str) -> str:
    lines = [
        "# Conformance diff",
        "",
        f"- old: {md_escape(diff.old.platform.id)} ({md_escape(old_source)})",
        f"- new: {md_escape(diff.new.platform.id)} ({md_escape(new_source)})",
        f"- result: **{md_escape(_verdict(diff))}**",
    ]
    if diff.platform:
        rows = [[md_escape(name), md_escape(old), md_escape(new)] for name, old, new in diff.platform]
        lines += ["", "## Platform", "", *table(["Fact", "Old", "New"], rows)]
    if diff.capabilities:
        rows = [[md_escape(name), old, new] for name, old, new in diff.capabilities]
        lines += ["", "## Capabilities", "", *table(["Probe", "Old", "New"], rows)]
    if diff.run:
        lines += ["", "## The new run", "", *(f"- {md_escape(problem)}" for problem in diff.run)]
    for kind, heading in CASE_KINDS.items():
        changes = [change for change in diff.cases if change.kind == kind]
        if changes and kind == "not-selected":
            lines += ["", f"## {heading[0].upper()}{heading[1:]}: {len(changes)}"]
        elif changes:
            rows = [
                [md_escape(c.id), md_escape(c.old or "—"), md_escape(c.new or "—"), md_escape(c.reason)]
                for c in changes
            ]
            lines += ["", f"## {heading[0].upper()}{heading[1:]} ({len(changes)})", ""]
            lines += table(["Case", "Old", "New", "Reason"], rows)
    for kind, heading in OBSERVATION_KINDS.items():
        changes = [change for change in diff.observations if change.kind == kind]
        if changes:
            why = kind == "abi"
            rows = [[md_escape(c.key), _md_value(c.old), _md_value(c.new), *([md_escape(c.explanation)] if why else [])]
                    for c in changes]
            lines += ["", f"## {heading[0].upper()}{heading[1:]} ({len(changes)})", ""]
            lines += table(["Observation", "Old", "New", *(["Why"] if why else [])], rows)
    return "\n".join(lines) + "\n"


def render_json(diff: ReportDiff, old_source: str, new_source: str) -> str:
    def observation(change) -> dict:
        entry = {"key": change.key, "kind": change.kind}
        if change.old is not MISSING:
            entry["old"] = change.old
        if change.new is not MISSING:
            entry["new"] = change.new
        if change.explanation:
            entry["explanation"] = change.explanation
        return entry

    document = {
        "diff_format_version": DIFF_FORMAT_VERSION,
        "old": {"source": old_source, "platform": diff.old.platform.id},
        "new": {"source": new_source, "platform": diff.new.platform.id},
        "regressions": diff.regressions(),
        "regression_classes": diff.counted(),
        "exit_status": diff.exit_status,
        "run": list(diff.run),
        "platform": [{"fact": name, "old": old, "new": new} for name, old, new in diff.platform],
        "capabilities": [{"probe": name, "old": old, "new": new} for name, old, new in diff.capabilities],
        "cases": [
            {"id": c.id, "kind": c.kind, "old": c.old, "new": c.new, "reason": c.reason} for c in diff.cases
        ],
        "observations": [observation(change) for change in diff.observations],
    }
    # ASCII with escapes: a lone surrogate from a hostile report stays representable.
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"
