"""`conformance filesystems`: each filesystem mounted in turn, the file and lock cases run on it (as root, and as
--user too), those of a guest (NFS: in_guest.py) last, then the matrix of every report and the diff of each against
the baseline of its privilege on its kernel.

Exit status: 0 every run finished and nothing failed; 1 a run had a fail or error (its report says which); 3 a
filesystem this machine (or the guest) has could not be mounted, or its run wrote no report, or a mount could not be
undone, or the guest handed back nothing; 2 bad input (options.py, and a guest's missing tool or kernel). A
filesystem this machine lacks (its program or its kernel driver) is one line and no failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..faults.runner import selection
from ..kernels import console
from ..kernels.runner import demoted, loaded_reports, move_results, say
from ..report.diff import diff_reports
from ..report.diff_render import render_markdown, render_text
from ..report.gfm import md_escape, table
from ..report.matrix import build_matrix
from ..report.write import write_matrix
from . import in_guest, mounting, plans
from .options import Options
from .runs import RUNS_FILE, Run, write_runs

# The areas whose cases make files on the filesystem under test and ask what it does with them: the three lock
# families and their histories, the descriptions a passed or redeemed descriptor shares, and the lock calls'
# arguments (faults/catalogue.py names each area's modules). The socket areas only pass a file along.
AREAS = ("locks", "lock_ranges", "lock_waiters", "flock_modes", "lock_histories", "duplication", "arguments")
PROC_FILESYSTEMS = "/proc/filesystems"
MOUNT_FAILED = 3


def kernel_types(path: str = PROC_FILESYSTEMS) -> set[str]:
    """The filesystem types this kernel has a driver for now (a module not yet loaded is missing: none is loaded
    here, since a machine without /lib/modules cannot)."""
    try:
        with open(path, encoding="utf-8") as f:
            return {line.split()[-1] for line in f if line.split()}
    except OSError:
        return set()


def missing(plan: plans.Plan, types: set[str], which=shutil.which) -> str:
    """Why this machine cannot carry out the plan, in one line, or "" if it can."""
    path = os.environ.get("PATH", "") + ":" + mounting.SBIN
    programs = [program for program in plan.programs() if which(program, path=path) is None]
    if programs:
        packages = sorted({plans.PACKAGES.get(program, program) for program in programs})
        nfs = " --nfs" if plan.name in plans.IN_GUEST else ""
        return (f"{', '.join(programs)} not found (Debian: {', '.join(packages)}; ci/install-filesystem-tools{nfs} "
                "installs them)")
    absent = [kernel_type for kernel_type in plans.KERNEL_TYPES[plan.name] if kernel_type not in types]
    if absent:
        return f"this kernel has no {' or '.join(absent)} driver ({PROC_FILESYSTEMS} does not list it)"
    return ""


def suite_command(target: str, staging: Path, options: Options, user: tuple | None) -> list[str]:
    argv = [sys.executable, "-m", "pytest", *selection(list(AREAS)), "-q", "-p", "no:cacheprovider",
            "--conformance-report", str(staging), "--conformance-dir", target]
    if options.workers != "0":
        argv += ["-n", options.workers]
    argv += list(options.pytest_args)
    if user is not None:
        uid, gid = user
        argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
    return argv


def main(options: Options, execute: mounting.Execute = mounting.execute, types: set[str] | None = None,
         prepare_guest=in_guest.prepare, guest_run=in_guest.run) -> int:
    """Each filesystem of options in turn, those of a guest last; ``execute`` runs the mount steps, and
    ``prepare_guest`` and ``guest_run`` find the guest's tools and kernel and boot it (stand-ins in the self-tests).
    A tool or kernel the guest needs that is missing is a BadInput, found before anything is mounted."""
    read_types = kernel_types if types is None else (lambda: types)
    types = read_types()
    logs = options.out / "logs"
    logs.mkdir(exist_ok=True)
    booting = prepare_guest(options) if options.guest() else None
    here, total = options.here(), len(options.filesystems)
    runs: list[Run] = []
    leftovers: list[str] = []
    base = tempfile.mkdtemp(prefix="conformance-fs-")
    try:
        os.chmod(base, 0o755)  # the unprivileged run reaches its mount points through it
        temp = Path(base) / "tmp"
        temp.mkdir(mode=0o1777)
        os.chmod(temp, 0o1777)  # mkdir's mode is masked by the umask
        for step, name in enumerate(here, 1):
            prefix = f"[{step}/{total}] {name}"
            plan = plans.plan(name, base)
            if name in plans.MODULES and not set(plans.KERNEL_TYPES[name]) <= types:
                execute(("modprobe", "-a", *plans.MODULES[name]))  # one that fails shows as a driver missing below
                types = read_types()
            why = missing(plan, types)
            if why:
                say(f"{prefix}: not mounted here: {why}")
                runs.append(Run(name, "-", problem=f"not here: {why}", absent=True))
                continue
            runs += _on(plan, options, execute, temp, prefix, leftovers)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if options.guest():
        runs += guest_run(booting, options, f"[{len(here) + 1}-{total}/{total}] {', '.join(options.guest_runs())} "
                                            f"(the guest's tmpfs: its kernel's baseline)")
    return _conclude(runs, options, leftovers)


def _on(plan: plans.Plan, options: Options, execute, temp: Path, prefix: str, leftovers: list) -> list[Run]:
    """The runs on one filesystem, mounted for them and undone after, however they end."""
    say(f"{prefix}: mounting on {plan.target}")
    begin = time.monotonic()
    runs = []

    def undo_problem(line: str) -> None:
        say(f"{prefix}: {line}")
        leftovers.append(line)

    try:
        with mounting.mounted(plan, execute, on_problem=undo_problem) as target:
            mounted_in = time.monotonic() - begin
            for who, user in (("root", None), ("user", options.user)):
                if who == "user" and (user is None or not _user_can_run(user, prefix)):
                    continue
                run = Run(plan.name, who, mount=mounted_in if not runs else None,
                          log=options.out / "logs" / f"{plan.name}-{who}.log")
                runs.append(_suite(run, target, options, user, temp, prefix))
    except mounting.MountFailed as e:
        say(f"{prefix}: {e}")
        runs.append(Run(plan.name, "-", problem=str(e)))
    return runs


def _user_can_run(user: tuple, prefix: str) -> bool:
    """Whether the unprivileged user can start this interpreter with the suite: a virtual environment made by root
    may point at an interpreter under /root, which no other user can reach."""
    # As pytest-xdist starts its workers: a process of that user starting the interpreter again.
    spawn = ("import subprocess, sys; "
             "subprocess.run([sys.executable, '-c', 'import conformance, pytest, xdist'], check=True)")
    argv = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", "--", sys.executable, "-c",
            spawn]
    status, out, err = mounting.execute(tuple(argv))
    if status != 0:
        say(f"{prefix}: no run as uid {user[0]}: it cannot start {sys.executable} with the suite "
            f"({mounting.last_line(err or out)})")
    return status == 0


def _suite(run: Run, target: str, options: Options, user: tuple | None, temp: Path, prefix: str) -> Run:
    staging = Path(tempfile.mkdtemp(prefix="report-", dir=temp))
    os.chmod(staging, 0o777)  # the unprivileged run writes its report there
    argv = suite_command(target, staging, options, user)
    env = dict(os.environ, TMPDIR=str(temp))
    say(f"{prefix}: the file and lock cases as {run.who}")

    def on_event(kind: str, value: float) -> None:
        if kind == "progress":
            say(f"{prefix} ({run.who}): {value:.0f}%")

    watched = console.watch(argv, env=env, log_path=run.log, marker=None, start_deadline=options.timeout,
                            finish_deadline=options.timeout, on_event=on_event)
    run.suite = watched.elapsed
    reports = sorted(staging.glob("*.json"))
    if watched.timed_out:
        run.problem = f"the cases did not finish within {options.timeout:.0f} s"
    elif len(reports) != 1:
        run.problem = f"the cases wrote {len(reports)} reports (exit status {watched.status}): {watched.last_lines()}"
    else:
        move_results(staging, options.out)
        run.report = options.out / reports[0].name
    shutil.rmtree(staging, ignore_errors=True)
    say(f"{prefix} ({run.who}): " + (f"{run.problem}; log: {run.log}" if run.problem else
                                      f"{run.suite:.0f} s, report {run.report}"))
    return run


def baseline_of(loaded: list) -> dict:
    """(privilege, kernel release) -> (run, report) of the baseline filesystem that ran with them (ext4, else tmpfs):
    a guest's filesystems are compared with the guest's own tmpfs, on its kernel."""
    chosen = {}
    for name in reversed(plans.BASELINES):
        for run, report in loaded:
            if run.filesystem == name:
                chosen[run.who, report.platform.release] = (run, report)
    return chosen


def _conclude(runs: list[Run], options: Options, leftovers: list[str]) -> int:
    loaded = loaded_reports(runs)
    sections = ["# Filesystems", "", runs_table(runs), ""]
    if leftovers:
        sections += ["Not undone: " + "; ".join(md_escape(line) for line in leftovers), ""]
    if loaded:
        written = write_matrix(build_matrix([(run.report.name, report) for run, report in loaded]), options.out)
        print(f"matrix: {written['markdown']}")
    baselines = baseline_of(loaded)
    for run, report in loaded:
        base_run, base = baselines.get((run.who, report.platform.release), (None, None))
        if base is None or base_run is run:
            continue
        # Every run is the same selection of the suite: what it did not select is no difference.
        result = diff_reports(base, report, allow_selection=True)
        print(f"\n== {base_run.filesystem} -> {run.filesystem} ({run.who})")
        print(render_text(result, base_run.report.name, run.report.name), end="")
        sections += [demoted(render_markdown(result, base_run.report.name, run.report.name)), ""]
    (options.out / "filesystems.md").write_text("\n".join(sections), encoding="utf-8")
    write_runs(runs, options.out / RUNS_FILE)
    print(f"summary: {options.out / 'filesystems.md'}")
    if leftovers or any(run.problem and not run.absent for run in runs):
        return MOUNT_FAILED
    return 1 if any(report.run.exit_status != 0 for _, report in loaded) else 0


def runs_table(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        mount = "" if run.mount is None else f"{run.mount:.1f} s"
        suite = "" if run.suite is None else f"{run.suite:.0f} s"
        rows.append([md_escape(cell) for cell in (run.filesystem, run.who, mount, suite,
                                                   run.report.name if run.report else run.problem or "")])
    return "\n".join(table(["filesystem", "ran as", "mount", "cases", "report or problem"], rows))
