"""`conformance compat`: the suite in the 32-bit userland as root and unprivileged, the same selection natively as
root, the matrix of all of them and the diff of the native root run against the compat one.

Exit status: 0 every run finished and nothing failed (with --reference-dir: every report fails only where its
family's reference does); 1 a run had a fail or error; 3 a run wrote no report (its log is kept), or the userland
could not be built or mounted; 2 bad input (an option, a missing tool, not root), found before anything is built.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import conformance

from ..kernels import console
from ..kernels.runner import Run, collect, compared, exit_status, say
from ..report.gfm import md_escape, table
from ..report.load import ReportError, read_report
from ..report.matrix import build_matrix
from ..report.write import write_matrix
from . import build, mounts
from .options import BadInput, Options
from .tools import MissingTools, Tools, find_tools

INSIDE_RUNS = "/tmp/conformance-runs"  # the staging directories, inside the userland
# Where the cases make their files, inside and natively alike: this machine's /dev/shm, bound inside, one tmpfs that
# every user may write to (the reports of conformance kernels test the same filesystem).
TEST_DIR = "/dev/shm"
FRESH_UIDS = (1 << 20, 1 << 30)  # above every account Debian makes (its dynamic ranges end below 65536)


class Failed(Exception):
    """The userland could not be built, mounted or unmounted; one line."""


def main(options: Options) -> int:
    try:
        tools = find_tools(options.arch)
    except MissingTools as e:
        raise BadInput(str(e)) from None
    logs = options.out / "logs"
    logs.mkdir(exist_ok=True)
    try:
        runs, built = _runs(tools, options, logs)
    except (build.BuildError, mounts.MountError) as e:
        say(f"conformance compat: {e}")
        return 3
    return _conclude(runs, built, options)


def _runs(tools: Tools, options: Options, logs: Path) -> tuple[list[Run], float | None]:
    userland = build.userland(tools, options.cache, options.mirror, logs, say)
    if userland.built_in is not None:
        say(f"userland built in {userland.built_in:.0f} s: {userland.root}")
    else:
        say(f"userland from the cache: {userland.root}")
    root = userland.root
    users = [None, fresh_uid()] if options.user else [None]
    runs = []
    with mounts.mounted(mounts.plan(root), tools):
        build.install_suite(tools, root, Path(conformance.__file__).resolve().parent.parent, logs)
        for uid in users:
            runs.append(_inside(tools, root, uid, options, logs))
    if options.native:
        runs.append(_native(options, logs))
    return runs, userland.built_in


def fresh_uid() -> int:
    """A uid no account has, drawn anew for each run: Linux charges the sockets a uid leaves in flight to it for as
    long as they stay there (the collector's defect keeps some for ever), and past 2,032 of them makes each of its
    sends wait for a collection, which changes the order the collector visits the next graph in and can hide the
    defect (README, "Reference reports"); a fresh uid starts uncharged."""
    return random.SystemRandom().randrange(*FRESH_UIDS)


def _label(where: str, uid: int | None) -> str:
    return f"{where} {'root' if uid is None else 'user'}"


def _staging(root: Path, name: str, uid: int | None) -> tuple[Path, str]:
    """A fresh staging directory under the userland's /tmp, writable by the run's user: its path outside, inside."""
    inside = f"{INSIDE_RUNS}/{name}"
    outside = root / inside.lstrip("/")
    shutil.rmtree(outside, ignore_errors=True)
    outside.mkdir(parents=True)
    if uid is not None:
        os.chown(outside, uid, uid)
    return outside, inside


def suite_command(python: str, report_dir: str, options: Options) -> list[str]:
    argv = [python, "-m", "conformance", "run", "--report-dir", report_dir, "--dir", TEST_DIR, "-n", options.workers]
    return argv + (["--", *options.pytest_args] if options.pytest_args else [])


def _inside(tools: Tools, root: Path, uid: int | None, options: Options, logs: Path) -> Run:
    label = _label("i386", uid)
    run = Run(label, "chroot", log=logs / f"{label.replace(' ', '-')}.log")
    staging, inside = _staging(root, label.replace(" ", "-"), uid)
    user = str(uid) if uid is not None else None
    environment = mounts.chroot_environment()
    if uid is not None:
        environment["HOME"] = "/tmp"  # a uid of no account: root's home is not its own
    argv = build.in_chroot(tools, root, suite_command(f"{build.VENV}/bin/python", inside, options), user=user)
    return _watched(run, argv, environment, staging, options)


def _native(options: Options, logs: Path) -> Run:
    """The same selection with this interpreter, as root, on the same filesystem. Root only: this interpreter may lie
    where no other user can run it (a pyenv build under /root)."""
    label = _label("native", None)
    run = Run(label, "host", log=logs / f"{label.replace(' ', '-')}.log")
    staging = Path(tempfile.mkdtemp(prefix="conformance-compat-"))
    env = dict(os.environ)
    env.pop("CONFORMANCE_DEADLINE_SCALE", None)
    return _watched(run, suite_command(sys.executable, str(staging), options), env, staging, options)


def _watched(run: Run, argv: list[str], env: dict, staging: Path, options: Options) -> Run:
    say(f"{run.label}: suite running (log {run.log})")
    watched = console.watch(argv, env=env, log_path=run.log, marker=None, start_deadline=options.timeout,
                            finish_deadline=options.timeout,
                            on_event=lambda kind, value: say(f"{run.label}: suite {value:.0f}%"))
    return collect(run, watched, staging, options)


def _conclude(runs: list[Run], built: float | None, options: Options) -> int:
    loaded = {}
    for run in runs:
        if run.report is not None:
            try:
                loaded[run.label] = (run, read_report(run.report))
            except ReportError as e:
                run.problem, run.report = f"unreadable report: {e}", None
    sections = [f"# The suite in a 32-bit {options.arch} userland on this 64-bit kernel", "",
                "userland: " + ("from the cache" if built is None else f"built in {built:.0f} s"), "",
                _runs_table(runs), ""]
    if loaded:
        matrix = build_matrix([(run.report.name, report) for run, report in loaded.values()])
        print(f"matrix: {write_matrix(matrix, options.out)['markdown']}")
    if "native root" in loaded and "i386 root" in loaded:
        sections += [compared(loaded["native root"], loaded["i386 root"], "native root -> i386 root"), ""]
    (options.out / "compat.md").write_text("\n".join(sections), encoding="utf-8")
    print(f"summary: {options.out / 'compat.md'}")
    return exit_status(runs, list(loaded.values()), options.reference_dirs)


def _runs_table(runs: list[Run]) -> str:
    rows = [[md_escape(cell) for cell in (run.label, "" if run.suite is None else f"{run.suite:.0f} s",
                                          run.report.name if run.report else run.problem or "")] for run in runs]
    return "\n".join(table(["run", "suite", "report or problem"], rows))


