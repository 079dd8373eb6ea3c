"""The fault layer and `conformance mutants`: a handful of real faults, planted in the real C library calls of real
runs, are caught by the cases that should catch them (the whole catalogue runs in `tox -e mutants`); the kill
matrix's arithmetic on crafted runs; a fault no case catches is a blind spot and exit status 1; a platform where
the layer cannot be loaded is `unsupported`, never a clean result."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from commands import conformance, refused

from conformance import settings
from conformance.faults import NOT_MEASURED, catalogue, command, killmatrix, layer
from conformance.faults.catalogue import AREAS, BY_NAME, CATALOGUE, Fault
from conformance.faults.runner import Outcome
from conformance.platforms import constants, os_name

pytestmark = pytest.mark.skipif(not constants().PRELOAD_ENVIRONMENT, reason="no way to preload a library here")

# A fixed handful, one per family of the catalogue, and the area whose cases must turn red under each (a run stops at
# its tenth red case, so which cases of the area it reaches depends on the order of the cases).
HANDFUL = {
    "rights-drop-last": ("rights", "format"),
    "creds-wrong-pid": ("credentials",),
    "ofd-degraded": ("exploration", "locks", "lock_ranges"),
    # The lock histories find a lock table that does not merge, as the explorer's brief says they must.
    "getlk-range-clipped": ("exploration",),
    "apue-status-altered": ("protocol",),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return layer.build(tmp_path_factory.mktemp("layer"))


def _close_errno(library: Path, fault: str | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-S", "-c", layer._CHECK], env=layer.environment(library, fault),
                          capture_output=True, text=True, timeout=60)


def test_the_catalogue_has_at_least_thirty_faults_each_aimed_and_referenced():
    assert len(CATALOGUE) >= 30
    assert len(BY_NAME) == len(CATALOGUE)
    for fault in CATALOGUE:
        assert fault.breaks and fault.reference and fault.areas, fault
        assert set(fault.areas) <= set(AREAS), fault
        assert set(fault.platforms) <= set(catalogue.EVERYWHERE), fault
    for paths in AREAS.values():
        for path in paths:
            assert (settings.CASES_DIR / path.split("::")[0]).is_file(), path


def test_the_layer_knows_exactly_the_catalogues_faults(library):
    assert sorted(layer.known_faults(library)) == sorted([f.name for f in CATALOGUE] + ["layer-check"])


def test_the_layer_without_a_fault_passes_calls_through(library):
    assert _close_errno(library, None).stdout.strip() == str(errno.EBADF)
    assert _close_errno(library, "layer-check").stdout.strip() == str(errno.EDOM)


def test_an_unknown_fault_name_ends_the_process_at_load(library):
    done = _close_errno(library, "no-such-fault")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "conformance fault layer: unknown fault no-such-fault\n"


@pytest.mark.heavy
def test_a_handful_of_real_faults_is_caught_by_the_cases_that_should_catch_them(tmp_path):
    args = [arg for name in HANDFUL for arg in ("--fault", name)]
    done = conformance("mutants", *args, "--report-dir", tmp_path, "-n", "2", timeout=900)
    assert done.status == 0, done.err
    result = json.loads((tmp_path / "mutants.json").read_text())
    assert result["headline"].startswith(f"{len(HANDFUL)} of {len(HANDFUL)} faults caught"), result["headline"]
    verdicts = {v["fault"]: v for v in result["faults"]}
    for name, areas in HANDFUL.items():
        killed = verdicts[name]["killed"]
        assert any(case.split("/")[0] in areas for case in killed), (name, sorted(killed)[:10])
    # Each run is kept with its report and output, for whoever reads the matrix.
    assert (tmp_path / "runs" / "control" / "output.txt").is_file()
    assert "## Kill matrix" in (tmp_path / "mutants.md").read_text()


def test_a_fault_no_case_catches_is_a_blind_spot_and_exit_status_1(tmp_path, monkeypatch, capsys):
    # A real fault aimed at an area that cannot see it: flock's errno is not what the argument cases look at.
    misaimed = Fault("flock-ewouldblock-as-eacces", "flock's conflict errno", "flock(2)", ("arguments",))
    monkeypatch.setitem(command.BY_NAME, misaimed.name, misaimed)
    status = command.run_mutants([misaimed.name], tmp_path, 2, None)
    assert status == 1
    result = json.loads((tmp_path / "mutants.json").read_text())
    assert [v["status"] for v in result["faults"]] == [killmatrix.BLIND]
    assert "## Blind spots" in (tmp_path / "mutants.md").read_text()
    assert "blind spot: flock-ewouldblock-as-eacces" in capsys.readouterr().err


@pytest.mark.parametrize("preload", [{}, {"CONFORMANCE_NOT_A_LINKER_VARIABLE": "{library}"}],
                         ids=["no_preloading_known", "variable_ignored"])
def test_a_platform_where_the_layer_does_not_load_measures_nothing(preload, tmp_path, monkeypatch, capsys):
    """As on macOS when System Integrity Protection strips DYLD_INSERT_LIBRARIES: no fault runs, and the exit status
    is not 0."""
    monkeypatch.setattr(constants(), "PRELOAD_ENVIRONMENT", preload)
    assert command.run_mutants(["rights-drop-last"], tmp_path, 1, None) == NOT_MEASURED
    err = capsys.readouterr().err
    assert err.startswith("conformance mutants: unsupported here: ") and err.count("\n") == 1, err
    assert not (tmp_path / "mutants.json").exists()


def test_bad_input_is_one_line_and_exit_status_2(tmp_path):
    assert "no such fault" in refused(conformance("mutants", "--fault", "nope", "--report-dir", tmp_path), "mutants")
    assert "-n 0" in refused(conformance("mutants", "-n", "0", "--report-dir", tmp_path), "mutants")


# ---- the kill matrix on crafted runs ---------------------------------------------------------------------------------

FAULT = Fault("rights-reorder", "order", "unix(7)", ("rights", "format"))


def _run(cases: dict, problem: str = "") -> Outcome:
    return Outcome("x", ["rights", "format"], 1.0, None, problem, 0, cases)


CONTROL = _run({"rights/a": "pass", "rights/b": "fail", "format/c": "pass", "format/d": "pass"})


def test_a_case_red_in_the_control_never_counts_as_a_kill():
    verdict = killmatrix.judge(FAULT, _run({"rights/a": "pass", "rights/b": "fail"}), CONTROL, os_name())
    assert (verdict.status, verdict.killed) == (killmatrix.BLIND, {})


def test_cases_turned_red_are_the_kills_and_count_in_their_area():
    verdict = killmatrix.judge(FAULT, _run({"rights/a": "error", "format/c": "fail", "format/d": "pass"}), CONTROL,
                               os_name())
    assert verdict.status == killmatrix.CAUGHT
    assert verdict.killed == {"rights/a": "error", "format/c": "fail"}
    assert (verdict.killed_in("rights"), verdict.killed_in("format")) == (1, 1)
    assert killmatrix.scores([verdict]) == {"format": (1, 1), "rights": (1, 1)}
    by_harness = killmatrix.judge(FAULT, _run({"rights/a": "error"}), CONTROL, os_name())
    assert by_harness.status == killmatrix.CAUGHT and by_harness.why == "only as harness errors: no case failed"


def test_a_run_that_did_not_finish_is_never_a_clean_survival():
    broke = killmatrix.judge(FAULT, _run({"rights/a": "pass"}, "did not end within 600 s and was killed"), CONTROL,
                             os_name())
    assert broke.status == killmatrix.BROKEN and "did not end" in broke.why
    assert killmatrix.uncaught([broke]) == [broke]
    partial = killmatrix.judge(FAULT, _run({"rights/a": "fail"}, "stopped early"), CONTROL, os_name())
    assert partial.status == killmatrix.CAUGHT and "did not finish" in partial.why


def test_a_pass_that_became_unsupported_is_named_as_hidden():
    verdict = killmatrix.judge(FAULT, _run({"rights/a": "unsupported", "format/c": "fail"}), CONTROL, os_name())
    assert verdict.hidden == ["rights/a"]


def test_faults_elsewhere_or_shown_unobservable_are_neither_caught_nor_blind():
    elsewhere = Fault("x", "b", "r", ("rights",), platforms=("no-such-os",))
    shown = Fault("y", "b", "r", ("rights",), unobservable="no interface reaches it")
    verdicts = [killmatrix.judge(f, None, CONTROL, os_name()) for f in (elsewhere, shown)]
    assert [v.status for v in verdicts] == [killmatrix.NOT_APPLICABLE, killmatrix.UNOBSERVABLE]
    assert killmatrix.uncaught(verdicts) == []
    assert killmatrix.scores(verdicts) == {}


def test_the_markdown_puts_blind_spots_first_and_the_control_reds_last():
    caught = killmatrix.judge(FAULT, _run({"rights/a": "fail"}), CONTROL, os_name())
    blind = killmatrix.judge(BY_NAME["ctrunc-hidden"], _run({}), CONTROL, os_name())
    text = killmatrix.render_markdown("p", CONTROL, [caught, blind], 3.0)
    assert text.index("## Blind spots") < text.index("## Kill matrix") < text.index("## Red in the control run")
    assert "| `rights-reorder` |" in text and "`rights/b`" in text
    assert killmatrix.headline([caught, blind], CONTROL) == "1 of 2 faults caught, 1 blind spot"


# ---- a mechanism every release has is never "unsupported" ----------------------------------------------------------

def test_a_failed_probe_of_a_mechanism_the_platform_always_has_fails_the_case(monkeypatch):
    """What rights-drop-last showed: a platform that loses every passed descriptor made every descriptor case
    `unsupported` ("a descriptor sent with SCM_RIGHTS did not arrive"), a clean-looking run of a broken kernel."""
    from conformance import outcomes
    from conformance.platforms import probes

    lost = "a descriptor sent with SCM_RIGHTS did not arrive"
    monkeypatch.setitem(probes.PROBES, "scm_rights", lambda: (False, lost))
    probes.probe.cache_clear()
    try:
        monkeypatch.setattr(constants(), "ALWAYS_HAS", {"scm_rights": "unix(7): SCM_RIGHTS"})
        with pytest.raises(outcomes.MissingMechanism, match=r"did not arrive, but .* always has scm_rights \(unix"):
            outcomes.require("scm_rights")
        monkeypatch.setattr(constants(), "ALWAYS_HAS", {})
        with pytest.raises(outcomes.Unsupported, match="did not arrive"):
            outcomes.require("scm_rights")
    finally:
        probes.probe.cache_clear()


def test_a_missing_mechanism_found_by_a_fixture_is_a_fail_not_a_harness_error():
    from conformance.model import ERROR, FAIL
    from conformance.outcomes import MissingMechanism
    from conformance.plugin.classify import classify

    missing = MissingMechanism("a descriptor sent with SCM_RIGHTS did not arrive, but linux always has scm_rights")
    assert classify("setup", "failed", missing).outcome == FAIL
    assert classify("call", "failed", missing).outcome == FAIL
    assert classify("setup", "failed", AssertionError("x")).outcome == ERROR


def test_every_mechanism_a_platform_always_has_is_a_probe_with_a_source():
    from conformance.platforms import probes

    for name in catalogue.EVERYWHERE:
        for mechanism, source in constants(name).ALWAYS_HAS.items():
            assert mechanism in probes.PROBES and source, (name, mechanism)


def _reap_adopted(seconds: float = 10.0) -> None:
    """The killed runs' own children, orphaned, come to this process when it is the child subreaper (the plugin makes
    it one): reap them, as init would."""
    import time

    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_signal_ends_every_run_and_writes_no_kill_matrix(signal_name, tmp_path):
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "conformance", "mutants", "--fault", "waiter-never-woken",
                                "--report-dir", str(tmp_path), "-n", "2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # Both runs under way: each has its output file, and the fault's pytest has printed its first results.
        outputs = [tmp_path / "runs" / name / "output.txt" for name in ("control", "waiter-never-woken")]
        give_up = time.monotonic() + 60
        while not (all(path.exists() for path in outputs) and outputs[1].stat().st_size > 0):
            assert time.monotonic() < give_up and process.poll() is None, process.poll()
            time.sleep(0.05)  # polling the files, not waiting for a moment
        process.send_signal(getattr(signal, signal_name))
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    _reap_adopted()
    assert process.returncode == 128 + getattr(signal, signal_name), err
    assert err.endswith(f"conformance: mutants: stopped by {signal_name}; no kill matrix written\n"), err
    assert not (tmp_path / "mutants.json").exists()
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes of the run survived: {left}"
