"""Self-tests of `conformance list` (the cases a run would run, what each needs and what is known of its outcome here),
of `run -k` / `--area`, of "no case selected", and of what the installed package ships.

The probes `list` declares for a case are checked against every committed reference report: a case a reference
records as unsupported must be one whose declared probe that platform lacked, or one `list` says is decided when it
runs; a case whose declared probe a platform lacked must be unsupported there (or fail, where the OS always has the
mechanism). The references come from several kernels, so this holds on any machine.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from commands import ROOT, conformance, environment

from conformance import needs
from conformance.model import DEVIATION, FAIL, UNSUPPORTED
from conformance.outcomes import require
from conformance.platforms import constants
from conformance.platforms.probes import probe
from conformance.plugin import revision

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9 and 3.10
    import tomli as tomllib

NO_CASE_SELECTED = 5
JSON_KEYS = {"id", "area", "references", "needs", "decided_when_it_runs", "expected_values", "expectation",
             "outcome_here"}


@pytest.fixture(scope="module")
def listed() -> list[dict]:
    """`conformance list --format json` of the whole suite, once per module."""
    done = conformance("list", "--format", "json")
    assert (done.status, done.err) == (0, ""), done.err
    return json.loads(done.out)


def _references() -> list[dict]:
    found = []
    for path in sorted((ROOT / "reports").rglob("*.json")):
        if path.relative_to(ROOT / "reports").parts[0] in ("runs", "artifacts"):
            continue  # this checkout's own runs (bench, mutants...), not references
        report = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(report, dict) and "cases" in report and "platform" in report:
            found.append(report)
    return found


@pytest.mark.parametrize("reference", _references(), ids=lambda report: report["platform"]["id"])
def test_the_declared_probes_explain_every_unsupported_case_of_a_reference(listed, reference):
    capabilities = reference["platform"]["capabilities"]
    always = constants(reference["platform"]["os"]).ALWAYS_HAS
    outcomes = {case["id"]: case["outcome"] for case in reference["cases"]}
    unexplained, not_unsupported = [], []
    for case in listed:
        if case["id"] not in outcomes or any(need["probe"] not in capabilities for need in case["needs"]):
            continue  # a case or a probe newer than the reference
        missing = [need["probe"] for need in case["needs"] if not capabilities[need["probe"]]["supported"]]
        outcome = outcomes[case["id"]]
        if outcome == UNSUPPORTED and not missing and not case["decided_when_it_runs"]:
            unexplained.append(case["id"])
        if missing and outcome != (FAIL if any(probe in always for probe in missing) else UNSUPPORTED):
            not_unsupported.append((case["id"], outcome, missing))
    assert unexplained == []
    assert not_unsupported == []
    assert sum(1 for case in listed if case["id"] in outcomes) > 0.9 * len(outcomes)


def test_json_lists_every_case_once_with_the_documented_keys(listed):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Finding and choosing cases"):]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section[:section.index("\n## ", 1)], re.M))
    assert documented == JSON_KEYS
    assert all(set(case) == JSON_KEYS for case in listed)
    ids = [case["id"] for case in listed]
    assert len(ids) == len(set(ids)) > 500
    assert all(case["id"].startswith(case["area"] + "/") and case["references"] for case in listed)


def test_a_missing_probe_carries_its_reason_and_makes_the_case_unsupported(listed):
    missing = [(case, need) for case in listed for need in case["needs"] if not need["supported"]]
    assert missing, "every platform lacks some mechanism (STREAMS or another OS's credentials)"
    for case, need in missing:
        assert need["reason"] == probe(need["probe"]).reason
        assert case["outcome_here"] == (FAIL if need["always_has"] else UNSUPPORTED), case["id"]
    for case in listed:
        if case["expectation"] is not None and case["outcome_here"] not in (UNSUPPORTED, FAIL):
            assert case["outcome_here"] == DEVIATION and case["expectation"]["reason"]


def test_text_is_one_aligned_line_per_case_and_its_notes_give_the_reasons(listed):
    done = conformance("list")
    assert (done.status, done.err) == (0, "")
    lines = done.out.splitlines()
    header, rows = lines[0], lines[1:1 + len(listed)]
    needs_column, case_column = header.index("needs"), header.index("case")
    for row, case in zip(rows, listed):
        here, needs_and_id = row[:needs_column].rstrip(), row[needs_column:]
        assert here.split(" [")[0] == (case["outcome_here"] or "runs"), row
        assert not needs_and_id.startswith(" ") and row.endswith("  " + case["id"]), row
        if len(needs_and_id) - len(case["id"]) <= case_column - needs_column:
            assert row[case_column:] == case["id"], row  # needs that fit their column leave the id aligned
        for need in case["needs"]:
            if not need["supported"]:
                number = re.search(re.escape(need["probe"]) + r" \[(\d+)\]", row).group(1)
                note = next(line for line in lines if line.startswith(f"[{number}] "))
                assert need["reason"] in note
        if case["decided_when_it_runs"]:
            assert needs_and_id[:-len(case["id"])].rstrip().endswith("+"), row
    assert sum(row[case_column:] in {case["id"] for case in listed} for row in rows) > 0.9 * len(rows)
    assert lines[-1].startswith(f"{len(listed)} cases: ")


def test_list_and_run_select_the_same_cases(tmp_path):
    selection = ("--area", "flock_modes", "-k", "not table")
    done = conformance("list", *selection, "--format", "json")
    assert done.status == 0, done.err
    listed = json.loads(done.out)
    run = conformance("run", "-n", "0", "--report-dir", tmp_path, *selection)
    assert run.status in (0, 1), run.err
    (path,) = tmp_path.glob("*.partial.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    outcomes = {case["id"]: case["outcome"] for case in report["cases"]}
    assert sorted(case["id"] for case in listed) == sorted(outcomes) and outcomes  # a run's order is random
    for case in listed:
        if case["outcome_here"] == UNSUPPORTED:
            assert outcomes[case["id"]] == UNSUPPORTED
    keyword, files = report["completeness"]["selection"]
    assert keyword == "-k not table" and files.startswith("only ") and files.endswith("/test_flock_modes.py")


@pytest.mark.parametrize("argv", [["list", "-k", "no_such_case"], ["run", "-n", "0", "-k", "no_such_case"],
                                  ["run", "-n", "0", "--area", "streams", "-k", "no_such_case"],
                                  ["run", "-n", "0", "--", "-k", "no_such_case"]],
                         ids=["list", "run", "run --area", "run --"])
def test_a_selection_of_no_case_says_so_and_exits_5_without_a_report(argv, tmp_path):
    report_dir = ["--report-dir", tmp_path] if argv[0] == "run" else []
    done = conformance(*argv[:1], *report_dir, *argv[1:])
    assert done.status == NO_CASE_SELECTED
    assert done.out.strip() == "" or "deselected" in done.out or "no tests ran" in done.out
    lines = [line for line in done.err.splitlines() if line.startswith("conformance: ")]
    assert len(lines) == 1 and "no case selected" in lines[0] and "no_such_case" in lines[0], done.err
    assert list(tmp_path.iterdir()) == []


# ---- what is declared, read from crafted functions --------------------------------------------------------------

def _declares_at_the_top(kind):
    require("scm_rights")
    require(f"sock_{kind}")


def _decides_when_it_runs(kind):
    if kind == "dgram":
        require("sock_dgram")


def _asks_after_a_loop(kinds):
    for kind in kinds:
        require(f"sock_{kind}")


def _item(function, **params):
    return SimpleNamespace(function=function, callspec=SimpleNamespace(params=params), fixturenames=list(params),
                           _fixtureinfo=SimpleNamespace(name2fixturedefs={}))


@pytest.mark.parametrize(("function", "params", "probes", "later"), [
    (_declares_at_the_top, {"kind": "seqpacket"}, ("scm_rights", "sock_seqpacket"), False),
    (_decides_when_it_runs, {"kind": "dgram"}, (), True),
    (_asks_after_a_loop, {"kinds": ("stream",)}, (), True),
])
def test_only_a_require_nothing_can_skip_is_declared(function, params, probes, later):
    found = needs.of(_item(function, **params))
    assert (found.probes, found.decided_when_it_runs) == (probes, later)


# ---- what the installed package ships ----------------------------------------------------------------------------

def _shipped_patterns() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-data"]["conformance"]


def _package_files() -> list[str]:
    """Every file of the package that is not Python source, as git tracks them (else as they are on disk)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "conformance"], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = [str(p.relative_to(ROOT)) for p in (ROOT / "conformance").rglob("*") if p.is_file()]
    return sorted(name[len("conformance/"):] for name in out
                  if not name.endswith((".py", ".pyc")) and "__pycache__" not in name)


def _catches(pid: int, number: int) -> bool:
    """Whether the process has a handler for the signal (/proc's SigCgt mask), False once it has ended."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(line for line in f if line.startswith("SigCgt:")).split()[1]
    except (OSError, StopIteration):
        return False
    return bool(int(mask, 16) >> (number - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="tells when the handler is in from /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_listing_ends_it_in_one_line_with_the_shells_status(sig):
    # Python catches SIGINT from its start; SIGTERM is caught once the command's handler is in, before collection.
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment())
    try:
        deadline = time.monotonic() + 60
        while not _catches(proc.pid, signal.SIGTERM):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert err.splitlines() == [f"conformance: list: stopped by {sig.name}"], err[-2000:]


def test_the_wheel_ships_every_file_the_package_reads():
    """A wheel holds the package's Python modules and, of its other files, only those the package data names: an
    expectation file, the schema or a C source left out works from a checkout and breaks once installed."""
    patterns, files = _shipped_patterns(), _package_files()
    assert files, "the package has data files"
    assert [name for name in files if not any(fnmatch.fnmatch(name, p) for p in patterns)] == []
    # The commit a copy of the suite was made from is written into that copy (compat/build.py), never committed.
    written_by_copies = {revision.COMMIT_FILE}
    assert [p for p in patterns if p not in written_by_copies and not any(fnmatch.fnmatch(n, p) for n in files)] == []
