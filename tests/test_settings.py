"""Self-tests of the run settings (conformance/settings.py): each bound and check on its own, then the same checks as
`conformance run` and plain pytest meet them: one line, the same message from both, exit status 2 from the command
(pytest's own convention, 4, from pytest), before any work starts."""

from __future__ import annotations

import os

import pytest
from commands import conformance, environment, pytest_refused, pytest_run, read_only_dir, refused

from conformance import settings
from conformance.settings import BadSetting

# ---- the bounds -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["auto", "logical", "0", "1", str(settings.workers_limit())])
def test_workers_accepted(value):
    assert settings.workers(value) == value


@pytest.mark.parametrize("value", ["-1", str(settings.workers_limit() + 1), "100000", "foo", "no", "", "1.5", "1_0"])
def test_workers_refused(value):
    with pytest.raises(BadSetting, match=rf"^-n {value}: not auto, logical, 0 \(one process\) or a number of workers "
                                         rf"from 1 to {settings.workers_limit()} \(4 per CPU, at least 8\)$"):
        settings.workers(value)


def test_the_workers_limit_is_four_per_cpu_and_at_least_eight():
    assert settings.workers_limit(1) == 8 and settings.workers_limit(2) == 8 and settings.workers_limit(16) == 64


@pytest.mark.parametrize(("value", "number"), [("0", 0), ("1", 1), (" 7 ", 7), (200, 200)])
def test_stress_iterations_accepted(value, number):
    assert settings.stress_iterations(value, "--stress") == number


@pytest.mark.parametrize("value", ["-1", "201", "100000", "1e20", "ten", "", "2.0"])
def test_stress_iterations_refused(value):
    with pytest.raises(BadSetting, match=r"^--stress .*: not a whole number from 0 to 200$"):
        settings.stress_iterations(value, "--stress")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1", "86401", "1e20", "soon", ""])
def test_stress_seconds_refused(value):
    with pytest.raises(BadSetting, match=r"^--stress-seconds .*: not a number of seconds above 0 and at most 86400$"):
        settings.stress_seconds(value, "--stress-seconds")


def test_stress_seconds_accepted():
    assert settings.stress_seconds("0.5", "--stress-seconds") == 0.5
    assert settings.stress_seconds(86400, "--stress-seconds") == 86400.0


# ---- directories ------------------------------------------------------------------------------------------------

def test_a_directory_must_exist_be_a_directory_and_take_files(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(BadSetting, match=r"^--dir .*missing: no such directory$"):
        settings.writable_dir(str(tmp_path / "missing"), "--dir")
    with pytest.raises(BadSetting, match=r"^--dir .*file: not a directory$"):
        settings.writable_dir(str(tmp_path / "file"), "--dir")
    with pytest.raises(BadSetting, match=r"^CONFORMANCE_DIR=.*file: not a directory$"):
        settings.writable_dir(str(tmp_path / "file"), "CONFORMANCE_DIR")
    with pytest.raises(BadSetting, match=r"^--dir : an empty path names no directory$"):
        settings.writable_dir("", "--dir")
    assert settings.writable_dir(str(tmp_path), "--dir") == tmp_path
    assert os.listdir(tmp_path) == ["file"], "the probe file was left behind"


def test_a_signal_while_a_directory_is_probed_comes_after_the_probe_is_gone(tmp_path, monkeypatch):
    """The probe file is made and removed with SIGINT and SIGTERM held back: the signal still stops the command, but
    only once nothing of the probe is left."""
    import signal
    import tempfile

    made = tempfile.mkstemp

    def mkstemp_then_signalled(**options):
        found = made(**options)
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came just after the file was made
        return found

    monkeypatch.setattr(settings.tempfile, "mkstemp", mkstemp_then_signalled)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            settings.writable_dir(str(tmp_path), "--dir")
            for _ in range(1000):  # where the signal lands, if not already at the end of the probe
                pass
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == [], "the probe was left behind"


def test_a_signal_another_thread_takes_while_a_directory_is_probed_comes_after_the_probe_is_gone(tmp_path,
                                                                                                monkeypatch):
    """A signal mask is one thread's: the kernel gives a signal sent while the main thread probes to another thread
    (seen: the Interruption's own resend timer, in `conformance list` stopped at its start), and Python runs the
    handler in the main thread all the same. The Interruption notes it, and raises it once the probe is gone."""
    import signal
    import tempfile
    import threading
    import time

    from conformance.interruption import Interruption

    made = tempfile.mkstemp
    go, sent = threading.Event(), []

    def send() -> None:
        go.wait(60)
        os.kill(os.getpid(), signal.SIGINT)
        sent.append(True)

    def mkstemp_then_signalled_from_a_thread(**options):
        found = made(**options)
        go.set()
        # Spun here, not in Event.wait: a signal landing in threading's code waits for a resend (interruption.py).
        deadline = time.monotonic() + 60
        while not sent and time.monotonic() < deadline:
            pass  # where the main thread runs the handler, unless it is held back
        return found

    # Made before the probe, the thread does not inherit the mask the probe sets: the kernel gives it the signal.
    sender = threading.Thread(target=send)
    sender.start()
    monkeypatch.setattr(settings.tempfile, "mkstemp", mkstemp_then_signalled_from_a_thread)
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    Interruption(deferring=False).install()
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            settings.writable_dir(str(tmp_path), "--dir")
    finally:
        go.set()
        sender.join()
        for number, handler in previous.items():
            signal.signal(number, handler)
    assert list(tmp_path.iterdir()) == [], "the probe was left behind"
    # Raised by the hold once the body was done, not from inside it (the leak check sees the probe's descriptor).
    names = [entry.name for entry in raised.traceback]
    assert names[-3:] == ["interrupts_held", "resume", "_stop"], names


def test_a_report_directory_is_made_unless_it_cannot_be(tmp_path):
    (tmp_path / "file").write_text("")
    assert settings.report_dir(str(tmp_path / "a" / "b"), "--report-dir").is_dir()
    with pytest.raises(BadSetting, match=r"^--report-dir .*file/sub: cannot be made: Not a directory$"):
        settings.report_dir(str(tmp_path / "file" / "sub"), "--report-dir")


def test_the_target_directory_comes_from_the_option_else_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFORMANCE_DIR", str(tmp_path / "missing"))
    assert settings.target_dir(str(tmp_path), "--dir") == os.path.realpath(tmp_path)
    with pytest.raises(BadSetting, match=r"^CONFORMANCE_DIR=.*missing: no such directory$"):
        settings.target_dir(None, "--dir")
    monkeypatch.delenv("CONFORMANCE_DIR")
    assert settings.target_dir(None, "--dir") is None


@pytest.mark.parametrize("variable", settings.TEMP_DIR_VARIABLES)
def test_the_temporary_directory_python_would_use_must_be_usable(tmp_path, monkeypatch, variable):
    for name in settings.TEMP_DIR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "missing"))
    with pytest.raises(BadSetting, match=rf"^{variable}=.*missing: no such directory \(Python would silently use "
                                         r"another directory\)$"):
        settings.temp_dir()
    monkeypatch.setenv(variable, "")  # tempfile skips an empty one too
    settings.temp_dir()


# ---- the same checks from `conformance run` and plain pytest -------------------------------------------------------

def _both(tmp_path, run_args, pytest_args, prefix=(), **env):
    """The message of `conformance run` and of plain pytest for the same bad setting, both refused at once; neither
    made a report directory."""
    environ = environment(**{"TMPDIR": str(tmp_path), **env})
    ran = refused(conformance("run", "--report-dir", tmp_path / "run-report", *run_args, env=environ,
                              prefix=prefix), "run")
    tested = pytest_refused(pytest_run("--conformance-report", tmp_path / "pytest-report", *pytest_args,
                                       env=environ, prefix=prefix))
    assert not (tmp_path / "run-report").exists() and not (tmp_path / "pytest-report").exists()
    return ran, tested


def test_a_missing_directory_under_test(tmp_path):
    missing = tmp_path / "missing"
    ran, tested = _both(tmp_path, ["--dir", missing], ["--conformance-dir", missing])
    assert (ran, tested) == (f"--dir {missing}: no such directory", f"--conformance-dir {missing}: no such directory")


def test_a_directory_under_test_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    ran, tested = _both(tmp_path, ["--dir", tmp_path / "file"], ["--conformance-dir", tmp_path / "file"])
    assert ran.endswith(": not a directory") and tested.endswith(": not a directory")


def test_a_read_only_directory_under_test(tmp_path):
    read_only = tmp_path / "read-only"
    prefix = read_only_dir(read_only)
    ran, tested = _both(tmp_path, ["--dir", read_only], ["--conformance-dir", read_only], prefix=prefix)
    assert ran.startswith(f"--dir {read_only}: not writable: ") and tested.startswith(
        f"--conformance-dir {read_only}: not writable: "), (ran, tested)


def test_a_bad_conformance_dir_is_named_as_the_variable(tmp_path):
    missing = tmp_path / "missing"
    ran, tested = _both(tmp_path, [], [], CONFORMANCE_DIR=str(missing))
    assert ran == tested == f"CONFORMANCE_DIR={missing}: no such directory"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_an_unusable_tmpdir_is_refused_not_replaced(tmp_path, kind):
    (tmp_path / "file").write_text("")
    bad = tmp_path / kind
    ran, tested = _both(tmp_path, [], [], TMPDIR=str(bad))
    problem = "no such directory" if kind == "missing" else "not a directory"
    assert ran == tested == f"TMPDIR={bad}: {problem} (Python would silently use another directory)"


@pytest.mark.parametrize(("run_args", "pytest_args", "message"), [
    (["--stress", "100000"], ["--conformance-stress", "100000"], "100000: not a whole number from 0 to 200"),
    (["--stress", "1e20"], ["--conformance-stress", "1e20"], "1e20: not a whole number from 0 to 200"),
    (["--stress", "1", "--stress-seconds", "inf"], ["--conformance-stress", "1", "--conformance-stress-seconds", "inf"],
     "inf: not a number of seconds above 0 and at most 86400"),
    (["--stress", "1", "--stress-seconds", "nan"], ["--conformance-stress", "1", "--conformance-stress-seconds", "nan"],
     "nan: not a number of seconds above 0 and at most 86400"),
])
def test_stress_bounds(tmp_path, run_args, pytest_args, message):
    ran, tested = _both(tmp_path, run_args, pytest_args)
    assert ran.endswith(message) and tested.endswith(message), (ran, tested)
    assert ran.startswith(run_args[-2]) and tested.startswith(pytest_args[-2])


def test_a_report_directory_that_is_a_file_is_refused_before_the_run(tmp_path):
    (tmp_path / "file").write_text("")
    environ = environment(TMPDIR=str(tmp_path))
    ran = refused(conformance("run", "--report-dir", tmp_path / "file", env=environ), "run")
    tested = pytest_refused(pytest_run("--conformance-report", tmp_path / "file", env=environ))
    assert (ran, tested) == (f"--report-dir {tmp_path / 'file'}: not a directory",
                             f"--conformance-report {tmp_path / 'file'}: not a directory")
    ran = refused(conformance("bench", "--report-dir", tmp_path / "file" / "sub", env=environ), "bench")
    assert ran == f"--report-dir {tmp_path / 'file' / 'sub'}: cannot be made: Not a directory"


def test_a_read_only_report_directory_is_refused_before_the_run(tmp_path):
    read_only = tmp_path / "read-only"
    prefix = read_only_dir(read_only)
    environ = environment(TMPDIR=str(tmp_path))
    for subcommand in ("run", "bench"):
        message = refused(conformance(subcommand, "--report-dir", read_only, env=environ, prefix=prefix), subcommand)
        assert message.startswith(f"--report-dir {read_only}: not writable: "), message


@pytest.mark.parametrize("workers", ["-1", "100000", "foo"])
def test_run_refuses_a_bad_worker_count(tmp_path, workers):
    message = refused(conformance("run", "-n", workers, "--report-dir", tmp_path / "r",
                                  env=environment(TMPDIR=str(tmp_path))), "run")
    assert message.startswith(f"-n {workers}: not auto, logical, 0")
    assert not (tmp_path / "r").exists()
