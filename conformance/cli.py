"""The `conformance` command: run the suite and write the report; re-render a report file.

    conformance run [--report-dir reports] [--dir DIR] [-n N|auto] [--strict] [-- PYTEST ARGS...]
    conformance render REPORT.json [--out DIR]

Bad input is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CASES_DIR = Path(__file__).parent / "cases"
# The backstop for a case that hangs despite the harness's own deadlines; the signal method lets the
# case's context managers kill and reap its children.
CASE_TIMEOUT = 120


def _fail(message: str) -> int:
    print(f"conformance: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import pytest

    if args.dir and not Path(args.dir).is_dir():
        return _fail(f"--dir {args.dir}: not a directory")
    pytest_args = [
        str(CASES_DIR),
        "--conformance-report", str(Path(args.report_dir).resolve()),
        "-p", "no:cacheprovider",
        "-o", f"timeout={CASE_TIMEOUT}",
        "-o", "timeout_method=signal",
        "-q",
    ]
    if args.dir:
        pytest_args += ["--conformance-dir", args.dir]
    if args.workers not in ("0", "no"):
        pytest_args += ["-n", args.workers]
    if args.strict:
        pytest_args.append("--conformance-strict")
    return int(pytest.main(pytest_args + args.pytest_args))


def render(args: argparse.Namespace) -> int:
    from .report.schema import validate
    from .report.write import write_report

    path = Path(args.report)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _fail(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as e:
        return _fail(f"{path}: cannot read: {e}")
    except json.JSONDecodeError as e:
        return _fail(f"{path}: not a JSON report (truncated or corrupt?): {e.msg} at line {e.lineno}")
    problems = validate(report)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _fail(f"{path}: invalid report: {problems[0]}{more}")
    for kind, written in write_report(report, Path(args.out or path.parent)).items():
        print(f"{kind}: {written}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="conformance", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the conformance suite on this machine and write the report")
    r.add_argument("--report-dir", default="reports", help="where <platform-id>.json/.md/.html go (default: reports)")
    r.add_argument("--dir", help="directory on the filesystem to test, where cases make their files "
                   "(default: $CONFORMANCE_DIR, else $TMPDIR)")
    r.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers: a number, auto (default), or 0")
    r.add_argument("--strict", action="store_true", help="an unexpected-pass fails the run")
    r.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments, e.g. -k rights")
    r.set_defaults(func=run)
    d = sub.add_parser("render", help="write the Markdown and HTML pages of a JSON report again")
    d.add_argument("report", help="a report written by `conformance run`")
    d.add_argument("--out", help="directory for the pages (default: beside the report)")
    d.set_defaults(func=render)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
