"""`conformance mutants`: every fault of the catalogue (or those named) on this machine, and the kill matrix."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import native
from ..platforms import os_name
from ..unavailable import Unavailable
from ..usage import UsageError
from . import NOT_MEASURED, killmatrix, layer, runner
from .catalogue import BY_NAME, CATALOGUE


def chosen(names: list[str] | None) -> list:
    if not names:
        return list(CATALOGUE)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise UsageError("mutants", f"--fault {unknown[0]}: no such fault (conformance mutants --list names them)")
    return [BY_NAME[name] for name in dict.fromkeys(names)]


def listing() -> str:
    width = max(len(f.name) for f in CATALOGUE)
    return "".join(f"{f.name:<{width}}  {', '.join(f.areas)}  ({', '.join(f.platforms)})\n    {f.breaks}\n"
                   for f in CATALOGUE)


def _progress(result, done: int, total: int) -> None:
    state = result.problem or f"{result.red} red" + (" (stopped there)" if result.stopped_at_max else "")
    print(f"conformance mutants: [{done}/{total}] {result.name}: {state} ({result.seconds:.1f} s)", file=sys.stderr,
          flush=True)


def run_mutants(names: list[str] | None, report_dir: Path, workers: int, target: str | None) -> int:
    faults = chosen(names)
    here = os_name()
    started = time.monotonic()
    try:
        library = layer.build(report_dir / "layer")  # kept with the runs that loaded it
        layer.check(library)
    except Unavailable as e:
        print(f"conformance mutants: unsupported here: {e.reason}", file=sys.stderr)
        return NOT_MEASURED
    except native.BuildFailed as e:  # a defect of the layer's source: never a missing feature
        print(f"conformance mutants: the fault layer does not build: {e}", file=sys.stderr)
        return 1
    runnable = [f for f in faults if f.applies_to(here) and not f.unobservable]
    control, runs = runner.run_all(runnable, library, report_dir / "runs", workers, target, _progress)
    by_name = {run.name: run for run in runs}
    verdicts = [killmatrix.judge(f, by_name.get(f.name), control, here) for f in faults]
    platform_id = control.report.platform.id if control.report else here
    seconds = time.monotonic() - started
    json_path, md_path = killmatrix.write(report_dir, platform_id, control, verdicts, seconds)
    print(f"conformance mutants: {killmatrix.headline(verdicts, control)} in {seconds:.0f} s; {md_path}",
          file=sys.stderr)
    for v in killmatrix.uncaught(verdicts):
        print(f"conformance mutants: {v.status}: {v.fault.name}: {v.why}", file=sys.stderr)
    return 1 if control.problem or killmatrix.uncaught(verdicts) else 0
