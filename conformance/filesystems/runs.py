"""One run of the file and lock cases on one filesystem, as one user, and how a guest hands its runs back."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

RUNS_FILE = "runs.json"  # written beside the reports, for the host that booted the guest


@dataclass
class Run:
    filesystem: str
    who: str                    # root | user
    mount: float | None = None  # seconds to mount, for the first run on a filesystem
    suite: float | None = None
    report: Path | None = None
    problem: str | None = None  # why there is no report
    absent: bool = False        # the machine lacks the filesystem: no failure
    log: Path | None = None


def write_runs(runs: list[Run], path: Path) -> None:
    """The runs, their reports and logs named by file name (the host finds them beside the file, and in logs/)."""
    rows = [{**asdict(run), "report": run.report.name if run.report else None,
             "log": run.log.name if run.log else None} for run in runs]
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def read_runs(path: Path, reports: Path, logs: Path) -> list[Run]:
    """The runs written by write_runs, their reports looked for in `reports` and their logs in `logs`. A file that
    is no such list raises ValueError."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Run)}
    if not isinstance(rows, list) or not all(isinstance(row, dict) and set(row) <= known for row in rows):
        raise ValueError(f"{path}: not a list of runs")
    runs = []
    for row in rows:
        run = Run(**row)
        run.report = reports / row["report"] if row.get("report") else None
        run.log = logs / row["log"] if row.get("log") else None
        runs.append(run)
    return runs
