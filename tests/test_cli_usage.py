"""Self-tests of the `conformance` command's usage errors: every subcommand's is one line, `conformance: <subcommand>:
<message>`, exit status 2, at once; --help still prints the whole help and exits 0."""

from __future__ import annotations

import pytest
from commands import conformance, refused

from conformance.selection import case_files
from conformance.settings import workers_limit

SUBCOMMANDS = ("run", "list", "render", "matrix", "diff", "ktap", "kernels", "compat", "filesystems", "bench",
               "explore")
AREAS = ", ".join(case_files())

USAGE_ERRORS = [
    (["run", "--bogus"], "run", "unrecognized arguments: --bogus"),
    (["run", "--dir"], "run", "argument --dir: expected one argument"),
    (["run", "-k"], "run", "argument -k: expected one argument"),
    (["run", "-k", "rights and ("], "run", "-k rights and (: at column 13: expected not OR left parenthesis OR "
                                           "identifier; got end of input"),
    (["run", "-k", "rights", "--", "-k", "locks"], "run", "-k is given twice (before and after --): pytest would keep "
                                                          "only the last"),
    (["run", "--area", "sockets"], "run", f"--area sockets: no such area (the areas: {AREAS})"),
    (["list", "--area", "sockets"], "list", f"--area sockets: no such area (the areas: {AREAS})"),
    (["list", "--area"], "list", "argument --area: expected one argument"),
    (["list", "-k", "not"], "list", "-k not: at column 4: expected not OR left parenthesis OR identifier; got end of "
                                    "input"),
    (["list", "--format", "yaml"], "list", "argument --format: invalid choice: 'yaml' (choose from 'text', 'json')"),
    (["list", "rights"], "list", "unrecognized arguments: rights"),
    (["render"], "render", "the following arguments are required: report"),
    (["render", "a.json", "--bogus"], "render", "unrecognized arguments: --bogus"),
    (["matrix", "--out"], "matrix", "argument --out: expected one argument"),
    (["diff", "a.json"], "diff", "give the reference report and the report to check (or --reference-dir DIR and the "
                                 "report to check)"),
    (["diff", "a.json", "b.json", "--format", "html"], "diff", "argument --format: invalid choice: 'html' "
                                                               "(choose from 'text', 'markdown', 'json')"),
    (["ktap"], "ktap", "the following arguments are required: report"),
    (["ktap", "a.json", "b.json"], "ktap", "unrecognized arguments: b.json"),
    (["kernels", "--kvm", "maybe"], "kernels", "argument --kvm: invalid choice: 'maybe' (choose from 'auto', 'yes', "
                                               "'no')"),
    (["kernels", "--bogus"], "kernels", "unrecognized arguments: --bogus"),
    (["bench", "--fast"], "bench", "unrecognized arguments: --fast"),
    (["explore", "--area", "fs"], "explore", "argument --area: invalid choice: 'fs' (choose from 'gc', 'locks')"),
    (["explore", "--seconds", "0"], "explore", "--seconds 0: not a number of seconds above 0 and at most 86400"),
    (["explore", "--seconds", "nan"], "explore", "--seconds nan: not a number of seconds above 0 and at most 86400"),
    (["explore", "--seed", "-1"], "explore", "--seed -1: not a whole number from 0 to 999999999999999999"),
    (["explore", "--seed", "x"], "explore", "--seed x: not a whole number from 0 to 999999999999999999"),
    (["explore", "-n", "lots"], "explore", "-n lots: not auto, logical, 0 (one process) or a number of workers from 1 "
                                           f"to {workers_limit()} (4 per CPU, at least 8)"),
    ([], None, "the following arguments are required: SUBCOMMAND"),
    (["nonsense"], None, "argument SUBCOMMAND: invalid choice: 'nonsense' (choose from 'run', 'list', 'render', "
                         "'matrix', 'diff', 'ktap', 'kernels', 'compat', 'arch', 'filesystems', 'bench', 'explore', "
                         "'mutants')"),
    (["--bogus"], None, "the following arguments are required: SUBCOMMAND"),
]


@pytest.mark.parametrize(("argv", "subcommand", "message"), USAGE_ERRORS, ids=[" ".join(u[0]) or "none"
                                                                              for u in USAGE_ERRORS])
def test_a_usage_error_is_one_line_and_exit_2(argv, subcommand, message):
    assert refused(conformance(*argv), subcommand) == message


@pytest.mark.parametrize("subcommand", [None, *SUBCOMMANDS])
def test_help_prints_the_whole_help_and_exits_0(subcommand):
    done = conformance(*([subcommand] if subcommand else []), "--help")
    assert (done.status, done.err) == (0, "")
    assert done.out.startswith(f"usage: conformance{' ' + subcommand if subcommand else ''} ")
    assert done.out.count("\n") > 5 and "-h, --help" in done.out
