"""`conformance kernels`: the host run, each kernel booted in turn, the matrix, and the diffs between neighbours.

A guest that shows no sign of running its command is booted once more before it is given up; the first try's
reason stays in the log and the summary. No sign is told apart by what reached us: nothing at all ("no console
output reached us": whether it booted is unknown), or output without the marker ("did not boot").

Exit status: 0 every kernel ran the suite and nothing failed; 1 a run had a fail or error (its report says
which); 3 a kernel could not be tested (it did not boot, or wrote no report; its console log is kept);
2 bad input (an option, an unknown kernel argument or a file that is no kernel image, a missing tool), found
before anything boots (options.py checks the options, the kernel arguments and the directories).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..report.diff import diff_reports
from ..report.diff_render import render_markdown, render_text
from ..report.formats import REPORT_FORMATS
from ..report.gfm import md_escape, table
from ..report.load import ReportError, read_report
from ..report.matrix import build_matrix
from ..report.reference import judge, references_in
from ..report.text import visible
from ..report.write import write_matrix
from . import console, guest
from .options import BadInput, Options
from .sources import Kernel, KernelSourceError, release_key, resolve
from .tools import MissingTools, Tools, find_tools, kvm_usable

REPORT_SUFFIXES = tuple(form.suffix for form in REPORT_FORMATS)
REPRODUCERS = "reproducers"  # beside a report: the exploration's standalone reproducers, as its reasons name them
KVM_START = 45.0  # seconds for a KVM guest to print its first line; it takes 2-5 when KVM works at all
BOOTS = 2  # tries to boot a kernel: a loaded machine has lost one boot's console, or slowed it past its deadline


@dataclass
class Run:
    label: str
    where: str                # host | kvm | emulated
    boot: float | None = None
    suite: float | None = None
    report: Path | None = None
    problem: str | None = None
    log: Path | None = None
    retried: str | None = None  # why the first boot was given up, when a second one was needed
    note: str | None = None     # what went wrong on a run that still counts


def say(text: str) -> None:
    print(visible(text), file=sys.stderr, flush=True)  # a path or a guest's output may hold an escape


def main(specs: list[str], options: Options) -> int:
    """Run the suite on the host and each kernel; ``options`` come checked from options.checked. A kernel that
    cannot be resolved or booted for want of a tool is a BadInput, found before anything boots."""
    try:
        tools = find_tools() if specs else None
        kernels = _prepare(specs, options)
    except (MissingTools, KernelSourceError) as e:
        raise BadInput(str(e)) from None
    runs = []
    total = len(kernels) + options.host
    step = 0
    if options.host:
        step += 1
        runs.append(_host_run(options, f"[{step}/{total}]"))
    kvm = {"yes": True, "no": False}.get(options.kvm, kvm_usable())
    for kernel in kernels:
        step += 1
        run, kvm = kernel_run(tools, kernel, options, kvm, f"[{step}/{total}]")
        runs.append(run)
    return _conclude(runs, options)


def _prepare(specs: list[str], options: Options) -> list[Kernel]:
    kernels = []
    for spec in specs:
        say(f"kernel {spec}: resolving")
        kernel = resolve(spec, options.cache, lambda text, spec=spec: say(f"kernel {spec}: {text}"))
        if guest.unsafe_path(kernel.image):
            raise BadInput(f"{kernel.image}: virtme-ng cannot boot an image whose path has blanks, quotes, '=' or ','")
        say(f"kernel {spec}: {kernel.image}")
        same = [k.spec for k in kernels if k.label == kernel.label or k.image == kernel.image]
        if same:
            raise BadInput(f"{same[0]} and {spec} name the same kernel ({kernel.label})")
        kernels.append(kernel)
    (options.out / "logs").mkdir(exist_ok=True)
    return kernels


def _reporter(prefix: str, label: str):
    def on_event(kind: str, value: float) -> None:
        if kind == "started":
            say(f"{prefix} {label}: booted in {value:.0f} s, suite running")
        else:
            say(f"{prefix} {label}: suite {value:.0f}%")
    return on_event


def _staging(options: Options, label: str) -> Path:
    staging = options.out / f".run-{label}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def _host_run(options: Options, prefix: str) -> Run:
    label = f"host {os.uname().release}"
    run = Run(label, "host", boot=0.0, log=options.out / "logs" / "host.log")
    run.log.unlink(missing_ok=True)  # the watcher appends
    staging = _staging(options, "host")
    argv = [sys.executable, "-m", "conformance", "run", "--report-dir", str(staging), "--dir", options.test_dir,
            "-n", options.workers]
    if options.pytest_args:
        argv += ["--", *options.pytest_args]
    say(f"{prefix} {label}: suite running")
    env = dict(os.environ)
    env.pop("CONFORMANCE_DEADLINE_SCALE", None)
    watched = console.watch(argv, env=env, log_path=run.log, marker=None, start_deadline=options.timeout,
                            finish_deadline=options.timeout, on_event=_reporter(prefix, label))
    return collect(run, watched, staging, options)


def kernel_run(tools: Tools, kernel: Kernel, options: Options, kvm: bool, prefix: str,
               root: guest.GuestRoot | None = None) -> tuple[Run, bool]:
    """The suite in a guest of ``kernel``, on this machine's root filesystem or on ``root``; the Run, and whether
    KVM is still worth trying."""
    log = options.out / "logs" / f"{kernel.label}.console.log"
    log.unlink(missing_ok=True)
    retried = None
    boot = 1
    while True:
        where = "kvm" if kvm else "emulated"
        run = Run(kernel.label, where, log=log, retried=retried)
        staging = _staging(options, kernel.label)
        python, shared = (root.python, root.shared) if root else (sys.executable, str(staging.resolve()))
        command = guest.guest_command(python, shared, options.test_dir, options.workers,
                                      guest.SCALE_KVM if kvm else guest.SCALE_EMULATED, list(options.pytest_args))
        argv = guest.vng_command(tools, kernel, kvm=kvm, cpus=options.cpus, memory=options.memory,
                                 user=options.user, shared_dir=str(staging.resolve()), command=command, root=root)
        boot_deadline = options.boot_timeout or (KVM_START if kvm else 300.0)
        how = "KVM" if kvm else "emulated, no KVM"
        say(f"{prefix} {kernel.label}: booting ({how})" + (f", try {boot} of {BOOTS}" if boot > 1 else ""))
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"== conformance kernels: {kernel.label}, boot {boot} of {BOOTS} ({how})\n")
        env = dict(os.environ, PATH=tools.path)
        try:
            watched = console.watch(argv, env=env, log_path=run.log, marker=guest.MARKER.encode(),
                                    start_deadline=boot_deadline, finish_deadline=boot_deadline + options.timeout,
                                    on_event=_reporter(prefix, kernel.label), marker_file=staging / guest.BOOTED)
        except KeyboardInterrupt:  # the guest is gone (watch ends its group): so is what it would have written
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if kvm and options.kvm == "auto" and watched.started is None:
            say(f"{prefix} {kernel.label}: no sign of the KVM guest within {boot_deadline:.0f} s "
                f"({watched.last_lines(1)}); booting without KVM from now on (--kvm no skips this try)")
            kvm = False
            continue
        if watched.started is None and boot < BOOTS:
            retried = _not_booted(watched)
            say(f"{prefix} {kernel.label}: {retried}; booting it once more")
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"\n== conformance kernels: boot {boot} given up: {retried}\n")
            boot += 1
            continue
        run.boot = watched.started
        return collect(run, watched, staging, options), kvm


def _not_booted(watched: console.Watched) -> str:
    """Why a guest showed no sign of running its command: nothing reached us at all, or something did."""
    if watched.output == 0:
        why = f"within {watched.elapsed:.0f} s" if watched.timed_out else \
            f"before virtme-ng ended with status {watched.status}"
        return f"no console output reached us {why}, and the guest wrote no sign: whether it booted is unknown"
    why = f"no sign of it within {watched.elapsed:.0f} s" if watched.timed_out else \
        f"virtme-ng ended with status {watched.status}"
    return f"did not boot ({why}): {watched.last_lines()}"


def collect(run: Run, watched: console.Watched, staging: Path, options: Options) -> Run:
    if watched.started is not None:
        run.suite = watched.elapsed - watched.started
    reports = sorted(staging.glob("*.json"))
    if run.where != "host" and watched.started is not None and not watched.marker_seen:
        run.note = "booted (the guest's file says so), but its console output did not reach us"
        guest_log = staging / guest.GUEST_LOG
        if guest_log.is_file():
            kept = run.log.with_name(f"{run.label}.guest.log")
            shutil.move(str(guest_log), str(kept))
            run.note += f"; its own log: {kept}"
    if watched.started is None:
        run.problem = _not_booted(watched)
        if run.retried:
            run.problem = f"{run.problem}; the first boot too: {run.retried}"
    elif watched.timed_out:
        run.problem = f"the suite did not finish within {options.timeout:.0f} s"
    elif len(reports) != 1:
        run.problem = f"the suite wrote {len(reports)} reports (exit status {watched.status}): {watched.last_lines()}"
    if run.problem is None:
        destination = options.report_dir or options.out
        move_results(staging, destination)
        run.report = destination / reports[0].name
    shutil.rmtree(staging, ignore_errors=True)
    say(f"  {run.label}: " + (f"{run.problem}; console log: {run.log}" if run.problem else
                               f"{_timing(run)}, report {run.report}"))
    for remark in _remarks(run):
        say(f"  {run.label}: {remark}")
    return run


def move_results(source: Path, destination: Path, stems: set | None = None) -> None:
    """A run's reports, in every format (only those named by `stems`, file names without their suffix, if given), and
    the reproducers its exploration wrote (named by the failing cases' reasons), moved from source into destination."""
    for path in source.iterdir():
        if path.suffix in REPORT_SUFFIXES and (stems is None or path.name[:-len(path.suffix)] in stems):
            shutil.move(str(path), str(destination / path.name))
        elif path.name == REPRODUCERS and path.is_dir():
            (destination / REPRODUCERS).mkdir(exist_ok=True)
            for reproducer in path.iterdir():
                shutil.move(str(reproducer), str(destination / REPRODUCERS / reproducer.name))


def _remarks(run: Run) -> list[str]:
    """What the summary says beside a run's report or problem: the first boot given up, output that was lost."""
    remarks = [f"booted on the second try; the first: {run.retried}"] if run.retried and not run.problem else []
    return remarks + ([run.note] if run.note else [])


def _timing(run: Run) -> str:
    boot = "" if run.where == "host" or run.boot is None else f"boot {run.boot:.0f} s, "
    return f"{boot}suite {run.suite:.0f} s"


def loaded_reports(runs: list) -> list[tuple]:
    """(run, report) of each run that wrote a report; one that cannot be read becomes the run's problem."""
    loaded = []
    for run in runs:
        if run.report is not None:
            try:
                loaded.append((run, read_report(run.report)))
            except ReportError as e:
                run.problem, run.report = f"unreadable report: {e}", None
    return loaded


def _conclude(runs: list[Run], options: Options) -> int:
    loaded = loaded_reports(runs)
    loaded.sort(key=lambda pair: release_key(pair[1].platform.release))
    sections = ["# Kernels", "", _runs_table(runs), ""]
    if loaded:
        written = write_matrix(build_matrix([(run.report.name, report) for run, report in loaded]), options.out)
        print(f"matrix: {written['markdown']}")
    for old, new in zip(loaded, loaded[1:]):
        sections += [compared(old, new, f"{old[1].platform.release} -> {new[1].platform.release}"), ""]
    (options.out / "kernels.md").write_text("\n".join(sections), encoding="utf-8")
    print(f"summary: {options.out / 'kernels.md'}")
    return exit_status(runs, loaded, options.reference_dirs)


def compared(old: tuple, new: tuple, heading: str) -> str:
    """The diff of two (run, report) pairs, printed as text under heading; returned as a Markdown section."""
    (old_run, old_report), (new_run, new_report) = old, new
    result = diff_reports(old_report, new_report)
    print(f"\n== {heading}")
    print(render_text(result, old_run.report.name, new_run.report.name), end="")
    return demoted(render_markdown(result, old_run.report.name, new_run.report.name))


def exit_status(runs: list[Run], loaded: list, directories: tuple) -> int:
    """3 when a run wrote no usable report; with reference directories, each report judged against its family's
    reference; else 1 when a run failed."""
    if any(run.problem for run in runs):
        return 3
    if directories:
        return judged(loaded, directories)
    return 1 if any(report.run.exit_status != 0 for _, report in loaded) else 0


def judged(loaded: list, directories: tuple) -> int:
    """0 when every report only fails where the committed reference of its platform family fails too (with
    --reference-dir, as the project's test command judges a run), else 1; each verdict is printed."""
    candidates = [pair for directory in directories for pair in references_in(directory)]
    status = 0
    for run, report in loaded:
        verdict = judge(report, candidates)
        against = verdict.source or f"no reference of the family {' '.join(report.platform.family)}"
        print(f"{run.label}: against {against}: " + ("no regression" if verdict.clean else
                                                     "; ".join(verdict.problems)))
        status = status or (0 if verdict.clean else 1)
    return status


def _runs_table(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        boot = "" if run.boot is None or run.where == "host" else f"{run.boot:.0f} s"
        suite = "" if run.suite is None else f"{run.suite:.0f} s"
        outcome = run.report.name if run.report else run.problem or ""
        rows.append([md_escape(cell) for cell in
                     (run.label, run.where, boot, suite, "; ".join([outcome, *_remarks(run)]))])
    return "\n".join(table(["kernel", "ran", "boot", "suite", "report or problem"], rows))


def demoted(markdown: str) -> str:
    """One level down, so that each diff is a section of the summary page."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())
