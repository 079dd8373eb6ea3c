"""The `conformance` command: run the suite and write the report; render, merge, compare and convert reports.

    conformance run [--report-dir reports/runs] [--dir DIR] [-n N|auto|logical] [--strict] [--stress N]
                    [--stress-seconds S] [--ktap] [-k EXPR] [--area A] [-- PYTEST ARGS...]
    conformance list [-k EXPR] [--area A] [--format text|json]
    conformance render REPORT.json [--out DIR] [--force]
    conformance matrix REPORT.json... [--out DIR]
    conformance diff OLD.json NEW.json [--format text|markdown|json] [--fail-on-observations]
    conformance ktap REPORT.json
    conformance kernels [KERNEL...] [--out DIR] [--kvm auto|yes|no] [--no-host] [-- PYTEST ARGS...]
    conformance filesystems [--fs tmpfs,ext4,...] [--kernel KERNEL] [--out DIR] [--user USER] [-n N] [-- PYTEST ARGS...]
    conformance compat i386 [--out DIR] [--cache DIR] [--no-user] [--no-native] [-- PYTEST ARGS...]
    conformance arch arm64|s390x [--out DIR] [--cache DIR] [--cpus N] [--memory M] [-- PYTEST ARGS...]
    conformance bench [--report-dir reports/runs/bench] [--dir DIR] [--quick] [-- PYTEST ARGS...]
    conformance explore [--area gc|locks] [--seconds 60] [--seed S] [--report-dir reports/runs/explore] [--dir DIR]
                        [-n N]
    conformance mutants [--fault NAME]... [--list] [-n N] [--report-dir reports/runs/mutants] [--dir DIR]

Bad input (a usage error, a setting out of its bounds, a directory that cannot be used, a file that is no report)
is one line on stderr, `conformance: <subcommand>: <message>`, and exit status 2, found before any work starts;
never a traceback. The settings are checked by settings.py, the same checks the pytest plugin makes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from . import settings
from .interruption import Interruption
from .report.load import ReportError, read_report, read_reports
from .usage import Parser, UsageError, fail


def _check_run(args: argparse.Namespace) -> None:
    """Every setting of `conformance run`, checked before pytest starts: pytest reports its own usage errors
    with exit status 4, and after seconds of collection; here they are one line, exit status 2, at once."""
    settings.deadline_scale()
    settings.temp_dir()
    args.workers = settings.workers(args.workers)
    args.stress = settings.stress_iterations(args.stress, "--stress")
    args.stress_seconds = settings.stress_seconds(args.stress_seconds, "--stress-seconds")
    args.target = settings.target_dir(args.dir, "--dir")
    args.report_dir = settings.report_dir(args.report_dir, "--report-dir")


# pytest's NO_TESTS_COLLECTED: `conformance run` or `list` selected no case (a -k that matches none); nothing ran.
NO_CASE_SELECTED = 5


def _selected(args: argparse.Namespace, subcommand: str) -> list[str]:
    """The case files --area names (default: the whole suite); --area and -k are checked before pytest starts."""
    from .selection import check_keyword, files_of

    check_keyword(args.keyword, subcommand)
    if args.keyword is not None and any(arg == "-k" or arg.startswith("-k") for arg in args.pytest_args):
        raise UsageError(subcommand, "-k is given twice (before and after --): pytest would keep only the last")
    return files_of(args.area, subcommand) if args.area else [str(settings.CASES_DIR)]


def _selection_text(args: argparse.Namespace, area: str | None) -> str:
    keyword = getattr(args, "keyword", None)
    chosen = [f"-k {keyword}" if keyword is not None else "", f"--area {area}" if area else "",
              " ".join(args.pytest_args) if args.pytest_args else ""]
    return " and ".join(filter(None, chosen)) or "the whole suite"


def run(args: argparse.Namespace, cases: list[str] | None = None) -> int:
    """`cases`: what pytest collects (default: the whole suite, or the files of --area)."""
    from .session import run_pytest

    area = args.area if cases is None else None  # explore's --area is its own
    if cases is None:
        cases = _selected(args, "run")
    # From now on SIGINT and SIGTERM end the run as Ctrl-C would, with its report (conformance/interruption.py).
    interruption = Interruption.of_this_process()
    interruption.install()
    try:
        status = _run(args, interruption, run_pytest, cases)
    except KeyboardInterrupt:  # before pytest started, or after it ended
        return interruption.exit_status() or 130
    if status == NO_CASE_SELECTED:
        print(f"conformance: run: no case selected: {_selection_text(args, area)} matched no case; nothing ran and no "
              "report was written", file=sys.stderr)
    return status


def _run(args: argparse.Namespace, interruption: Interruption, run_pytest, cases: list[str]) -> int:
    _check_run(args)
    pytest_args = [
        *cases,
        *(["-k", args.keyword] if getattr(args, "keyword", None) is not None else []),
        "--conformance-report", str(args.report_dir),
        "-p", "no:cacheprovider",
        "-q",
    ]
    if args.dir:
        pytest_args += ["--conformance-dir", args.dir]
    if args.workers != "0":
        pytest_args += ["-n", args.workers]
    if args.stress:
        pytest_args += ["--conformance-stress", str(args.stress),
                        "--conformance-stress-seconds", f"{args.stress_seconds:g}"]
    if args.strict:
        pytest_args.append("--conformance-strict")
    if not args.ktap:
        status, _ = run_pytest(pytest_args + args.pytest_args, args.target, str(args.report_dir))
        return interruption.exit_status() or status
    # KTAP consumers read standard output: the plugin streams it there as the cases finish (plugin/ktap_stream.py),
    # so that a run that is stopped or killed still leaves a log; pytest's own output goes to standard error.
    with contextlib.redirect_stdout(sys.stderr):
        status, report = run_pytest([*pytest_args, "--conformance-ktap", "-", *args.pytest_args], args.target,
                                    str(args.report_dir))
    if report is None:
        if status != NO_CASE_SELECTED:  # which run() says in its own line
            fail("run", "the run built no report")
        return status or 2
    from .plugin import ktap_stream

    if not ktap_stream.streamed_to_standard_output():  # pytest stopped before its plugins were configured
        from .report.ktap import render_ktap

        _print(render_ktap(report))
    return interruption.exit_status() or status


def list_cases(args: argparse.Namespace) -> int:
    return _stoppable("list", lambda: _list_cases(args))


def _list_cases(args: argparse.Namespace) -> int:
    from .listing import CollectionFailed, NoCaseSelected, collect, render_json, render_text

    settings.temp_dir()
    paths = _selected(args, "list")
    try:
        listed = collect(paths, args.keyword)
    except NoCaseSelected:
        print(f"conformance: list: no case selected: {_selection_text(args, args.area)} matched no case",
              file=sys.stderr)
        return NO_CASE_SELECTED
    except CollectionFailed as e:
        if Interruption.of_this_process().signal:  # pytest caught the signal's KeyboardInterrupt: "interrupted"
            raise KeyboardInterrupt from None
        usage = [line[len("ERROR: "):] for line in str(e).splitlines() if line.startswith("ERROR: ")]
        if e.status == 4 and usage:  # pytest's usage error: a -k expression it cannot parse
            return fail("list", usage[0])
        sys.stderr.write(str(e))
        return e.status
    _print((render_json if args.format == "json" else render_text)(listed))
    return 0


def _print(text: str) -> None:
    # Report text may hold a lone surrogate or characters the terminal's encoding lacks.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="backslashreplace")
    sys.stdout.write(text)
    sys.stdout.flush()


def render(args: argparse.Namespace) -> int:
    from .report.write import UnusablePlatformId, replaced_report, write_report

    report = read_report(args.report)
    out = args.out if args.out is not None else str(Path(args.report).parent)
    try:
        replaced = replaced_report(report, Path(out), Path(args.report))
    except UnusablePlatformId as e:
        raise ReportError(f"{args.report}: {e}") from None
    if replaced is not None and not args.force:
        return fail("render", f"{replaced} holds another report of this platform id; --force replaces it")
    written = write_report(report, settings.report_dir(out, "--out"))
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0


def matrix(args: argparse.Namespace) -> int:
    from .report.matrix import build_matrix
    from .report.write import write_matrix

    built = build_matrix(read_reports(args.reports))
    for kind, written in write_matrix(built, settings.report_dir(args.out, "--out")).items():
        print(f"{kind}: {written}")
    return 0


# `conformance diff --reference-dir DIR NEW` found no reference of NEW's platform family: nothing was compared.
NO_REFERENCE = 3


def diff(args: argparse.Namespace) -> int:
    from .report import diff_render, reference
    from .report.diff import diff_reports

    if args.reference_dir:
        if len(args.reports) != 1:
            raise UsageError("diff", "with --reference-dir, give only the report to check")
        new_source = args.reports[0]
        new = read_report(new_source)
        candidates = [pair for directory in args.reference_dir for pair in reference.references_in(Path(directory))]
        chosen = reference.choose(new, candidates)
        if chosen is None:
            print(f"{new_source}: no reference of its platform family ({reference.family_text(new)}) in "
                  f"{', '.join(args.reference_dir)}: not checked")
            return NO_REFERENCE
        old_source, old = chosen
    elif len(args.reports) == 2:
        (old_source, new_source) = args.reports
        old, new = read_report(old_source), read_report(new_source)
    else:
        raise UsageError("diff", "give the reference report and the report to check (or --reference-dir DIR and "
                                 "the report to check)")
    result = diff_reports(old, new, observations_regress=args.fail_on_observations,
                          allow_selection=args.allow_selection)
    renderer = {"text": diff_render.render_text, "markdown": diff_render.render_markdown,
                "json": diff_render.render_json}[args.format]
    _print(renderer(result, old_source, new_source))
    return result.exit_status


def ktap(args: argparse.Namespace) -> int:
    from .report.ktap import render_ktap

    _print(render_ktap(read_report(args.report)))
    return 0


def kernels(args: argparse.Namespace) -> int:
    from .kernels import options, runner

    checked = options.checked(args)
    # SIGINT or SIGTERM ends the guest or host run under way (its whole process group: vng, QEMU, the suite) and
    # then this command, in one line; without this SIGTERM would end only this process and leave them running.
    return _stoppable("kernels", lambda: runner.main(args.kernels, checked))


def _stoppable(command: str, work, stopped: str = "") -> int:
    """work(), which SIGINT or SIGTERM stops by a KeyboardInterrupt: its clean-up runs, then this command ends in one
    line with 128 + the signal."""
    interruption = Interruption(deferring=False)
    interruption.install()
    try:
        return work()
    except KeyboardInterrupt:
        interruption.cleaning_up = True
        print(f"conformance: {command}: stopped by {interruption.signal or 'SIGINT'}{stopped}", file=sys.stderr)
        return interruption.exit_status() or 130
    finally:
        interruption.restore()


def filesystems(args: argparse.Namespace) -> int:
    from .filesystems import options, runner

    checked = options.checked(args)
    # SIGINT or SIGTERM ends the run under way (its process group) and undoes every mount and loop device
    # (filesystems/mounting.py); without this SIGTERM would leave the filesystems mounted.
    return _stoppable("filesystems", lambda: runner.main(checked))


def compat(args: argparse.Namespace) -> int:
    from .compat import options

    checked = options.checked(args)
    from .compat import runner  # after the checks: bad input is refused before the runner's imports

    # SIGINT or SIGTERM ends the run under way (its whole process group), every process left inside the userland,
    # and its mounts, then this command, in one line.
    return _stoppable("compat", lambda: runner.main(checked))


def arch(args: argparse.Namespace) -> int:
    from .arches import options

    checked = options.checked(args)
    from .arches import runner  # after the checks: bad input is refused before the runner's imports

    # SIGINT or SIGTERM ends the guest (its whole process group) or the build under way, and the build's mounts.
    return _stoppable("arch", lambda: runner.main(checked))


def bench(args: argparse.Namespace) -> int:
    from .bench.command import run_bench

    settings.deadline_scale()
    settings.temp_dir()
    settings.target_dir(args.dir, "--dir")
    report_dir = settings.report_dir(args.report_dir, "--report-dir")
    status, table = run_bench(report_dir, args.dir, args.quick, args.pytest_args)
    if table is None:
        return fail("bench", "the benchmarks wrote no report") if status == 0 else status
    _print(table)
    return status


def mutants(args: argparse.Namespace) -> int:
    from .faults.command import listing, run_mutants

    if args.list:
        _print(listing())
        return 0
    settings.deadline_scale()
    settings.temp_dir()
    target = settings.target_dir(args.dir, "--dir")
    report_dir = settings.report_dir(args.report_dir, "--report-dir")
    workers = settings.whole_number(args.workers, "-n", 1, settings.workers_limit())
    # SIGINT or SIGTERM kills every run under way (each is a session of its own) and ends this command in one line,
    # with no kill matrix: runs that did not finish measured nothing.
    return _stoppable("mutants", lambda: run_mutants(args.fault, Path(report_dir), workers, target),
                      "; no kill matrix written")


# --area: the cases of conformance/cases/test_exploration.py that explore it, as a pytest -k expression
EXPLORE_AREAS = {"gc": "graph", "locks": "lock_histories"}


def explore(args: argparse.Namespace) -> int:
    """The exploration cases with a time budget for their random part: `conformance run` of those cases, with
    --conformance-explore-seconds and --conformance-explore-seed; the seed is printed before and after, to replay."""
    import random

    seconds = settings.seconds(args.seconds, "--seconds", settings.MAX_EXPLORE_SECONDS)
    seed = settings.explore_seed(args.seed, "--seed") if args.seed is not None \
        else random.SystemRandom().randrange(settings.MAX_SEED)
    args.stress, args.stress_seconds, args.strict, args.ktap = 0, settings.DEFAULT_STRESS_SECONDS, False, False
    _check_run(argparse.Namespace(**vars(args)))  # every setting refused before the seed is printed: one line
    replay = f"conformance explore --area {args.area} --seconds {seconds:g} --seed {seed}"
    print(f"conformance explore: seed {seed} (replay: {replay})", file=sys.stderr, flush=True)
    args.pytest_args = [
        "-v", "-v",  # over run's -q: a line per case as it ends, the progress of a long exploration
        str(settings.CASES_DIR / "test_exploration.py"), "-k", EXPLORE_AREAS[args.area],
        "--conformance-explore-seconds", f"{seconds:g}", "--conformance-explore-seed", str(seed),
        "--timeout", f"{settings.case_timeout() + seconds:g}",  # a case's share of the budget is at most all of it
    ]
    status = run(args, cases=[])
    print(f"conformance explore: seed {seed} (replay: {replay})", file=sys.stderr, flush=True)
    return status


def _selection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("-k", dest="keyword", metavar="EXPR",
                         help="only the cases whose id matches this pytest -k expression, e.g. 'rights and not peek'")
    command.add_argument("--area", metavar="A", help="only the cases of this area (rights, locks, ...)")


def parser() -> argparse.ArgumentParser:
    from .bench import QUICK_DIVISOR
    from .faults import NOT_MEASURED

    top = Parser(prog="conformance", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True,
                             help="run, list, render, matrix, diff, ktap, kernels, filesystems, compat, arch, bench, "
                             "explore or mutants")
    r = sub.add_parser("run", help="run the conformance suite on this machine and write the report")
    r.add_argument("--report-dir", default=settings.DEFAULT_REPORT_DIR,
                   help=f"where <platform-id>.json/.md/.html/.ktap go (default: {settings.DEFAULT_REPORT_DIR})")
    r.add_argument("--dir", help="directory on the filesystem to test, where cases make their files "
                   "(default: $CONFORMANCE_DIR, else $TMPDIR)")
    r.add_argument("-n", "--workers", default="auto",
                   help="pytest-xdist workers: auto (default), logical, 0 (one process) or 1 to 4 per CPU")
    r.add_argument("--strict", action="store_true", help="an unexpected-pass fails the run")
    r.add_argument("--stress", default=0, metavar="N",
                   help="only the race-prone cases, each N times within --stress-seconds (N at most "
                   f"{settings.MAX_STRESS_ITERATIONS}); names iterations that differ")
    r.add_argument("--stress-seconds", default=settings.DEFAULT_STRESS_SECONDS, metavar="S",
                   help=f"with --stress: the time budget (default {settings.DEFAULT_STRESS_SECONDS:g}, at most "
                   f"{settings.MAX_STRESS_SECONDS:g})")
    r.add_argument("--ktap", action="store_true",
                   help="stream the results as KTAP on standard output as the cases finish (pytest's output goes to "
                   "standard error)")
    _selection_options(r)
    r.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments, e.g. -m race")
    r.set_defaults(func=run)
    s = sub.add_parser("list", help="list the cases a run would run here: area, references, the probes each needs and "
                       "whether this machine has them, its expectation; nothing runs")
    _selection_options(s)
    s.add_argument("--format", choices=("text", "json"), default="text", help="output (default: text)")
    s.set_defaults(func=list_cases, pytest_args=[])
    d = sub.add_parser("render", help="write the Markdown, HTML and KTAP of a JSON report again")
    d.add_argument("report", help="a report written by `conformance run`")
    d.add_argument("--out", help="directory for the pages (default: beside the report)")
    d.add_argument("--force", action="store_true",
                   help="replace another report of the same platform id already in the directory")
    d.set_defaults(func=render)
    m = sub.add_parser("matrix", help="merge reports of several platforms into one Markdown, HTML and JSON matrix")
    m.add_argument("reports", nargs="*", metavar="REPORT", help="reports written by `conformance run`")
    m.add_argument("--out", default=".", help="directory for matrix.md, matrix.html and matrix.json (default: .)")
    m.set_defaults(func=matrix)
    f = sub.add_parser("diff", help="what changed from OLD to NEW; exit 1 on a regression, 2 on bad input, "
                       f"{NO_REFERENCE} when --reference-dir holds no reference of NEW's platform family")
    f.add_argument("reports", nargs="+", metavar="REPORT",
                   help="OLD NEW: the reference report and the report to check; with --reference-dir, NEW alone")
    f.add_argument("--reference-dir", action="append", metavar="DIR",
                   help="choose OLD among the complete reports in DIR (repeatable): the one of NEW's platform family "
                        "(OS, architecture, privilege, filesystem), the same release and Python first")
    f.add_argument("--allow-selection", action="store_true",
                   help="NEW is a selection of the suite on purpose: the cases it did not select are not compared, and "
                        "its selection is not incompleteness (an interrupted or stopped run still is)")
    f.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="output (default: text)")
    f.add_argument("--fail-on-observations", action="store_true",
                   help="a changed or vanished observation is a regression too (perf.* measurements never are)")
    f.set_defaults(func=diff)
    k = sub.add_parser("ktap", help="print a report as KTAP version 1, for kernel CI systems")
    k.add_argument("report", help="a report written by `conformance run`")
    k.set_defaults(func=ktap)
    v = sub.add_parser("kernels", help="run the suite on several Linux kernels (virtme-ng) and the host, "
                       "then the matrix and the diffs between consecutive kernels")
    v.add_argument("kernels", nargs="*", metavar="KERNEL",
                   help="a kernel image or build tree, a Debian series (6.1), ABI (6.1.0-50) or package "
                   "(linux-image-...), or an upstream tag (v6.6.17)")
    v.add_argument("--out", default="reports/runs/kernels",
                   help="reports, console logs, matrix and kernels.md go here (default: reports/runs/kernels)")
    v.add_argument("--report-dir", help="put the reports here instead (default: --out), e.g. beside other runs' "
                   "for one matrix")
    v.add_argument("--kvm", choices=("auto", "yes", "no"), default="auto",
                   help="auto (default): KVM when /dev/kvm opens, falling back to emulation if a guest shows "
                   "no sign of life")
    v.add_argument("--no-host", action="store_true", help="do not run the suite on the host kernel too")
    v.add_argument("--dir", default="/dev/shm", help="the filesystem under test, the same on the host and in "
                   "every guest (default: /dev/shm, a tmpfs)")
    v.add_argument("--cpus", default="2", help="guest CPUs (default: 2)")
    v.add_argument("--memory", default="2G", help="guest memory (default: 2G)")
    v.add_argument("--user", help="the user the suite runs as in the guests (default: the same as here)")
    v.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers in each run (default: auto)")
    v.add_argument("--cache", help="where Debian kernel packages are unpacked (default: ~/.cache/conformance/kernels)")
    v.add_argument("--boot-timeout",
                   help="seconds for a guest to boot (default: 300 emulated, 45 with KVM)")
    v.add_argument("--timeout", default="1800",
                   help="seconds for the suite in each kernel (default: 1800)")
    v.add_argument("--reference-dir", action="append", metavar="DIR",
                   help="judge each report against the reference of its platform family among the reports in DIR "
                   "(repeatable): exit 1 only for a failure, regression or incomplete run the reference does not "
                   "record, as the project's test command judges; without it, exit 1 when any case failed")
    v.set_defaults(func=kernels)
    c = sub.add_parser("compat", help="run the suite in a 32-bit userland on this 64-bit kernel (a Debian chroot, "
                       "built once into the cache), as root and unprivileged, and natively; the matrix and the diffs")
    c.add_argument("arch", metavar="USERLAND", help="the userland's Debian architecture: i386")
    c.add_argument("--out", default="reports/runs/compat",
                   help="reports, logs, matrix and compat.md go here (default: reports/runs/compat)")
    c.add_argument("--report-dir", help="put the reports here instead (default: --out)")
    _userland_arguments(c)
    c.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers in each run (default: auto)")
    c.add_argument("--no-user", action="store_true", help="run as root only, not also unprivileged")
    c.add_argument("--no-native", action="store_true", help="do not run the same selection natively for the diff")
    c.add_argument("--timeout", default="1800", help="seconds for the suite in each run (default: 1800)")
    c.add_argument("--reference-dir", action="append", metavar="DIR",
                   help="judge each report against the reference of its platform family among the reports in DIR "
                   "(repeatable), as `conformance kernels --reference-dir` does")
    c.set_defaults(func=compat)
    a = sub.add_parser("arch", help="run the suite on another architecture's Debian kernel and userland (arm64, "
                       "s390x) under QEMU's emulation; the userland is built once into the cache (as root)")
    a.add_argument("arch", metavar="ARCH", help="the Debian architecture: arm64 or s390x")
    a.add_argument("--out", default="reports/runs/arch",
                   help="the report, console log, matrix and arch.md go here (default: reports/runs/arch)")
    a.add_argument("--report-dir", help="put the report here instead (default: --out)")
    _userland_arguments(a)
    a.add_argument("--cpus", default="2", help="guest CPUs (default: 2)")
    a.add_argument("--memory", default="2G", help="guest memory (default: 2G)")
    a.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers in the guest (default: auto)")
    a.add_argument("--boot-timeout", help="seconds for the guest to boot (default: 600)")
    a.add_argument("--timeout", default="3600", help="seconds for the suite in the guest (default: 3600)")
    a.add_argument("--reference-dir", action="append", metavar="DIR",
                   help="judge the report against the reference of its platform family among the reports in DIR "
                   "(repeatable), as `conformance kernels --reference-dir` does")
    a.set_defaults(func=arch)
    v.epilog = "After --, extra pytest arguments for every run, e.g. -- -k locks."
    s = sub.add_parser("filesystems", help="mount each filesystem this machine can (tmpfs, ext4, xfs and btrfs on "
                       "loop devices, overlayfs, bindfs over FUSE), run the file and lock cases on it, then the matrix "
                       "and the diff of each against ext4 (as root)")
    s.add_argument("--fs", metavar="LIST", help="comma-separated, in this order (default: all but bindfs-forwarding "
                   "and the NFS ones): tmpfs,ext4,xfs,btrfs,overlay,bindfs,bindfs-forwarding,nfs3,nfs4.2")
    s.add_argument("--out", default="reports/runs/filesystems",
                   help="reports, logs, matrix and filesystems.md go here (default: reports/runs/filesystems)")
    s.add_argument("--user", help="run the cases as this user (a name or a uid) too, on each filesystem")
    s.add_argument("-n", "--workers", default="2", help="pytest-xdist workers in each run (default: 2)")
    s.add_argument("--timeout", default="900", help="seconds for the cases on each filesystem (default: 900)")
    s.add_argument("--kernel", metavar="KERNEL", help="boot this kernel in a virtme-ng guest for nfs3 and nfs4.2 "
                   "(served by its nfsd over loopback): a Debian series such as 6.12, or any KERNEL of conformance "
                   "kernels")
    s.add_argument("--cache", help="where a Debian kernel is unpacked (default: ~/.cache/conformance/kernels)")
    s.add_argument("--kvm", choices=("auto", "yes", "no"), default="auto",
                   help="boot the guest with KVM: auto tries it when /dev/kvm opens (default: auto)")
    s.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments for every run, e.g. -k flock")
    s.set_defaults(func=filesystems)
    b = sub.add_parser("bench", help="measure the suite's wall time and its helpers against C on this machine; "
                       "the figures go into a report as perf.* observations")
    b.add_argument("--report-dir", default=settings.DEFAULT_REPORT_DIR + "/bench",
                   help=f"where the report goes (default: {settings.DEFAULT_REPORT_DIR}/bench)")
    b.add_argument("--dir", help="the filesystem under test for the lock figures and the suite runs "
                   "(default: $CONFORMANCE_DIR, else $TMPDIR)")
    b.add_argument("--quick", action="store_true",
                   help=f"{QUICK_DIVISOR} times fewer iterations and one timed run per figure")
    b.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments for both timed suite runs, "
                   "e.g. -k rights")
    b.set_defaults(func=bench)
    x = sub.add_parser("explore", help="search, for a time budget, for graphs of sockets in flight the collector gets "
                       "wrong or lock histories the kernel answers otherwise than the model; what fails is shrunk and "
                       "written as a reproducer beside the report")
    x.add_argument("--area", choices=sorted(EXPLORE_AREAS), default="gc",
                   help="gc (default): graphs of AF_UNIX sockets in flight and the garbage collector; locks: random "
                   "histories of the three lock families against the model")
    x.add_argument("--seconds", default=settings.DEFAULT_EXPLORE_SECONDS, metavar="N",
                   help=f"time budget of the random part (default {settings.DEFAULT_EXPLORE_SECONDS:g}, at most "
                   f"{settings.MAX_EXPLORE_SECONDS:g}); the fixed part of every run comes first")
    x.add_argument("--seed", metavar="S", help="draw the random graphs from S (default: a new seed, printed)")
    x.add_argument("--report-dir", default=settings.DEFAULT_REPORT_DIR + "/explore",
                   help=f"where the report and reproducers/ go (default: {settings.DEFAULT_REPORT_DIR}/explore)")
    x.add_argument("--dir", help="where cases make their files (default: $CONFORMANCE_DIR, else $TMPDIR)")
    x.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers (default: auto)")
    x.set_defaults(func=explore)
    u = sub.add_parser("mutants", help="plant each fault of the catalogue in the platform's C library calls, run the "
                       "cases of the areas it touches, and write the kill matrix; exit 1 when a fault is caught by no "
                       f"case, {NOT_MEASURED} when the fault layer cannot be loaded here")
    u.add_argument("--fault", action="append", metavar="NAME", help="only this fault (repeatable; default: all)")
    u.add_argument("--list", action="store_true", help="list the faults, the areas each touches and where it applies")
    u.add_argument("-n", "--workers", default=str(2 * (os.cpu_count() or 1)),
                   help="runs at a time, each one pytest process (default: twice the CPUs: most of a run under a fault "
                   "is waiting)")
    u.add_argument("--report-dir", default=settings.DEFAULT_REPORT_DIR + "/mutants",
                   help="where mutants.md, mutants.json and each run go "
                   f"(default: {settings.DEFAULT_REPORT_DIR}/mutants)")
    u.add_argument("--dir", help="where cases make their files (default: $CONFORMANCE_DIR, else $TMPDIR)")
    u.set_defaults(func=mutants)
    return top


def _userland_arguments(command: argparse.ArgumentParser) -> None:
    """Where a Debian userland is built, and from which mirror: `compat` and `arch` build theirs alike."""
    command.add_argument("--cache", help="where the userland is built (default: ~/.cache/conformance/compat)")
    command.add_argument("--mirror", default="http://deb.debian.org/debian",
                         help="the Debian mirror debootstrap fetches from (default: http://deb.debian.org/debian)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    # Two lists of positionals: argparse cannot tell them apart.
    if argv[:1] in (["kernels"], ["compat"], ["arch"]) and "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    try:
        args, unknown = parser().parse_known_args(argv)
        if unknown:
            raise UsageError(args.command, "unrecognized arguments: " + " ".join(unknown))
    except UsageError as e:
        return fail(e.subcommand, str(e))
    if args.command in ("kernels", "compat", "arch"):
        args.pytest_args = extra
    try:
        return args.func(args)
    except UsageError as e:
        return fail(e.subcommand, str(e))
    except (ReportError, settings.BadSetting) as e:
        return fail(args.command, str(e))
    except OSError as e:
        # Writing the output (a full disk, a read-only directory) is the only other way to fail.
        return fail(args.command, f"{e.filename or 'output'}: {e.strerror or e}")


if __name__ == "__main__":
    sys.exit(main())
