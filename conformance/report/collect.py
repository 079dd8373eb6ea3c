"""Collects every case's result on the controller (or the only process) and builds the report."""

from __future__ import annotations

import datetime
import os
import subprocess
import time
from pathlib import Path

import pytest

from .. import __version__
from ..harness import deadlines
from ..outcomes import OUTCOMES
from ..platforms import detect, probes

SCHEMA_VERSION = 1


def _git_commit() -> str | None:
    top = Path(__file__).resolve().parents[2]
    if not (top / ".git").exists():
        return None
    try:
        # The suite's code runs from this checkout already, so trusting it adds nothing; without this, git
        # refuses a checkout another uid owns, and an unprivileged run would record no commit.
        out = subprocess.run(["git", "-c", f"safe.directory={top}", "-C", str(top), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class ReportCollector:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cases: dict[str, dict] = {}
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.clock = time.monotonic()
        self.written: dict = {}
        self.report: dict | None = None

    # Every phase report of every case, from whichever worker ran it.
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from ..plugin import PROP_CASE, PROP_OBSERVATION, PROP_OUTCOME, PROP_REFERENCES

        props = report.user_properties
        cid = next((value for name, value in props if name == PROP_CASE), None)
        if cid is None:
            return
        case = self.cases.setdefault(report.nodeid, {
            "id": cid, "phases": [], "references": [], "observations": {}, "expectation": None, "duration": 0.0})
        case["duration"] += report.duration
        for name, value in props:
            if name == PROP_OUTCOME:
                case["phases"].append((value["outcome"], value["reason"]))
                case["expectation"] = value["expectation"] or case["expectation"]
            elif name == PROP_REFERENCES:
                case["references"] = list(value)
            elif name == PROP_OBSERVATION:
                key, observed = value
                case["observations"][key] = observed

    def _case_entries(self) -> list[dict]:
        from ..plugin import worst

        entries, owners = [], {}
        for case in self.cases.values():
            outcome = worst(o for o, _ in case["phases"])
            reason = "; ".join(dict.fromkeys(r for o, r in case["phases"] if o == outcome and r))
            area, _, rest = case["id"].partition("/")
            name, _, params = rest.partition("[")
            for key in case["observations"]:
                if key in owners and owners[key] != case["id"]:
                    raise pytest.UsageError(f"observation {key} recorded by both {owners[key]} and {case['id']}")
                owners[key] = case["id"]
            entries.append({
                "id": case["id"], "area": area, "name": name, "params": params[:-1] if params else "",
                "outcome": outcome, "reason": reason,
                "references": case["references"] or ["(none recorded)"],
                "observations": case["observations"], "expectation": case["expectation"],
                "duration": round(case["duration"], 6),
            })
        entries.sort(key=lambda e: e["id"])
        return entries

    def build(self, exitstatus: int) -> dict:
        cases = self._case_entries()
        platform = detect.facts(self.config._conformance_base)
        platform["capabilities"] = {name: cap.as_dict() for name, cap in probes.probe_all().items()}
        workers = getattr(self.config.option, "numprocesses", None)
        return {
            "schema_version": SCHEMA_VERSION,
            "suite": {"name": "conformance", "version": __version__, "commit": _git_commit()},
            "platform": platform,
            "run": {
                "started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "duration": round(time.monotonic() - self.clock, 3),
                "workers": workers if isinstance(workers, int) else 0,
                "argv": [str(a) for a in self.config.invocation_params.args],
                "exit_status": int(exitstatus),
                "deadline_scale": deadlines.scale(),
            },
            "summary": {o: sum(1 for c in cases if c["outcome"] == o) for o in OUTCOMES},
            "cases": cases,
        }

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.cases:
            return
        self.report = self.build(exitstatus)
        directory = self.config.getoption("conformance_report")
        if directory:
            from .write import write_report

            self.written = write_report(self.report, Path(directory))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.report:
            return
        counts = ", ".join(f"{n} {o}" for o, n in self.report["summary"].items() if n)
        terminalreporter.write_sep("=", f"conformance on {self.report['platform']['id']}: {counts}")
        for kind, path in self.written.items():
            terminalreporter.write_line(f"report ({kind}): {os.path.relpath(path)}")
