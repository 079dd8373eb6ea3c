"""Self-tests for the expectation files: the shipped ones load, matching, and every malformed file's message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.expectations import DIRECTORY, ExpectationError, Expectations, load, load_file, path_for

pytest_plugins = ["pytester"]

SHIPPED = ("linux", "freebsd", "darwin", "illumos")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_loads(name):
    path = path_for(name)
    assert path.parent == DIRECTORY and path.is_file()
    loaded = load_file(path)
    for entry in (*loaded.deviations, *loaded.values.values()):
        assert entry.reason.strip() and entry.references
        assert entry.source.startswith(f"{path}:")
    assert load(name).deviations == loaded.deviations and load(name).values == loaded.values


def test_os_without_a_file_has_no_expectations():
    assert load("nosuchos").deviations == []


def write(tmp_path, text, name="crafted.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def entry(case, reason="documented", references='["a reference"]'):
    return f'[[deviation]]\ncase = "{case}"\nreason = "{reason}"\nreferences = {references}\n'


def test_crafted_file_matches_exact_ids_globs_and_literal_brackets(tmp_path):
    text = "# crafted\n\n" + "\n".join([
        entry("rights/test_x[stream]", reason="only stream"),
        entry("rights/test_y[*]", reason="every y"),
        entry("locks/test_*_upgrade", reason="every upgrade"),
    ])
    path = write(tmp_path, text)
    deviations = load_file(path).deviations
    assert [d.source for d in deviations] == [f"{path}:3", f"{path}:8", f"{path}:13"]
    assert deviations[0].references == ("a reference",)
    exact, glob_params, glob_name = deviations

    assert exact.matches("rights/test_x[stream]")
    assert not exact.matches("rights/test_x[dgram]")
    assert not exact.matches("rights/test_xs")  # [stream] is not a character class
    assert not exact.matches("rights/test_x")
    assert not exact.matches("rights/test_x[stream]2")

    assert glob_params.matches("rights/test_y[stream]") and glob_params.matches("rights/test_y[dgram]")
    assert not glob_params.matches("rights/test_y")
    assert not glob_params.matches("rights/test_yy[stream]")

    assert glob_name.matches("locks/test_flock_upgrade") and glob_name.matches("locks/test_ofd_upgrade")
    assert not glob_name.matches("locks/test_flock_downgrade")

    expectations = Expectations(deviations)
    assert expectations.lookup("rights/test_x[dgram]") is None
    assert expectations.lookup("rights/test_y[seqpacket]") is glob_params
    assert expectations.unmatched(["rights/test_y[seqpacket]", "locks/test_flock_upgrade"]) == [exact]


def expected_entry(observation, value='"EPERM"', reason="chosen", references='["a reference"]'):
    return (f'[[expected]]\nobservation = "{observation}"\nvalue = {value}\nreason = "{reason}"\n'
            f"references = {references}\n")


def test_expected_values_are_read_with_their_type_and_source(tmp_path):
    text = "# crafted\n" + entry("rights/test_x") + "\n" + "\n".join([
        expected_entry("rights.limit_errno"),
        expected_entry("rights.max_fds[stream]", value="253"),
        expected_entry("locks.deadlock", value="true"),
    ])
    path = write(tmp_path, text)
    loaded = load_file(path)
    assert [d.case for d in loaded.deviations] == ["rights/test_x"]
    assert {name: (v.value, v.source) for name, v in loaded.values.items()} == {
        "rights.limit_errno": ("EPERM", f"{path}:7"),
        "rights.max_fds[stream]": (253, f"{path}:13"),
        "locks.deadlock": (True, f"{path}:19"),
    }
    assert loaded.expected("rights.limit_errno").references == ("a reference",)
    assert loaded.expected("rights.nothing") is None


TWO_ENTRIES = (
    "# line 1\n"
    "[[deviation]]\n"  # 2
    'case = "rights/test_a"\n'
    'reason = "fine"\n'
    'references = ["r"]\n'
    "\n"
    "[[deviation]]\n"  # 7
    'case = "rights/test_b"\n'
    "{second}\n"
)

MALFORMED = [
    # name, file text, line the message must name, fragment it must contain
    ("toml-syntax", '# line 1\n[[deviation]]\ncase = "rights/test_a\nreason = "r"\n', 3, "Illegal character"),
    ("missing-reason", TWO_ENTRIES.format(second='references = ["r"]'), 7, "missing reason"),
    ("unknown-key",
     TWO_ENTRIES.format(second='reason = "r"\nreferences = ["r"]\nseverity = "high"'), 7, "unknown key(s) severity"),
    ("empty-references", TWO_ENTRIES.format(second='reason = "r"\nreferences = []'), 7,
     "'references' must be a non-empty list"),
    ("blank-reference", TWO_ENTRIES.format(second='reason = "r"\nreferences = ["  "]'), 7,
     "'references' must be a non-empty list"),
    ("reason-not-a-string", TWO_ENTRIES.format(second='reason = 42\nreferences = ["r"]'), 7,
     "'reason' must be a str"),
    ("empty-reason", TWO_ENTRIES.format(second='reason = "  "\nreferences = ["r"]'), 7, "'reason' is empty"),
    ("bad-case-id",
     TWO_ENTRIES.replace("rights/test_b", "Rights test b").format(second='reason = "r"\nreferences = ["r"]'), 7,
     "'Rights test b' is not a case id"),
    ("unknown-top-level-key", '# line 1\n# line 2\ntitle = "mine"\n\n' + entry("rights/test_a"), 3,
     "unknown top-level key(s): title"),
    ("unknown-top-level-table", "# line 1\n" + entry("rights/test_a") + "\n[meta]\nowner = 'me'\n", 7,
     "unknown top-level key(s): meta"),
    ("spaced-header", TWO_ENTRIES.replace("[[deviation]]\n", "[[ deviation ]]\n", 1).format(second=""), 7,
     "missing reason"),
    ("not-tables", "# line 1\ndeviation = [1, 2]\n", 2, "must be written as [[deviation]] tables"),
    ("expected-not-an-observation", "# line 1\n" + expected_entry("Rights limit"), 2,
     "'Rights limit' is not an observation key"),
    ("expected-without-area", "# line 1\n" + expected_entry("limit"), 2, "'limit' is not an observation key"),
    ("expected-twice", "# line 1\n" + expected_entry("rights.limit") + "\n" + expected_entry("rights.limit"), 8,
     "'rights.limit' is expected twice (also at "),
    ("expected-value-a-list", "# line 1\n" + expected_entry("rights.limit", value="[1]"), 2,
     "'value' must be a str or int or float or bool"),
    ("expected-missing-value", "# line 1\n[[expected]]\nobservation = \"rights.x\"\nreason = \"r\"\n"
     "references = [\"r\"]\n", 2, "expected entry: missing value"),
    ("expected-not-tables", "# line 1\n\nexpected = 3\n", 3, "must be written as [[expected]] tables"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_file_names_the_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ExpectationError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'# line 1\n[[deviation]]\ncase = "rights/test_a"\nreason = "caf\xe9"\nreferences = ["r"]\n')
    with pytest.raises(ExpectationError) as info:
        load_file(path)
    assert str(info.value) == f"{path}:4: not UTF-8 text"


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ExpectationError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}: cannot read: ")
    assert os.strerror(2) in str(info.value)


# ---- through the plugin ------------------------------------------------------------------------------------------

@pytest.fixture
def inner(pytester, monkeypatch):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_inner="def test_nothing():\n    pass\n")
    return pytester


def assert_one_line_usage_error(result, expected_start):
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines + result.errlines
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, result.errlines
    assert errors[0].startswith(f"ERROR: {expected_start}"), errors[0]
    assert "Traceback" not in "\n".join(result.outlines + result.errlines)
    assert not any("passed" in line for line in result.outlines)


def test_unknown_conformance_os_is_a_usage_error(inner):
    result = inner.runpytest_subprocess("-p", "no:randomly", "--conformance-os", "nosuchos")
    assert_one_line_usage_error(result, "--conformance-os nosuchos: no expectation file ")


def test_malformed_expectations_file_is_a_usage_error_naming_the_line(inner, tmp_path):
    path = write(tmp_path, TWO_ENTRIES.format(second='references = ["r"]'), name="bad.toml")
    result = inner.runpytest_subprocess("-p", "no:randomly", "--conformance-expectations", str(path))
    assert_one_line_usage_error(result, f"malformed expectation file: {path}:7: deviation entry: missing reason")
    result = inner.runpytest_subprocess("-p", "no:randomly", "--conformance-expectations", str(tmp_path / "no.toml"))
    assert_one_line_usage_error(result, f"--conformance-expectations {tmp_path / 'no.toml'}: no such file")


def _collected_case_ids() -> set:
    """The id of every conformance case, collected in a separate process exactly as a run names them."""
    root = Path(__file__).resolve().parents[1]
    script = (
        "import json, sys, pytest\n"
        "from conformance.plugin import case_id, is_case\n"
        "class Ids:\n"
        "    ids = []\n"
        "    def pytest_collection_modifyitems(self, items):\n"
        "        self.ids += [case_id(i) for i in items if is_case(i)]\n"
        "ids = Ids()\n"
        "code = pytest.main(['--collect-only', '-q', '-p', 'no:randomly', '-p', 'no:cacheprovider', sys.argv[1]],"
        " plugins=[ids])\n"
        "print('IDS=' + json.dumps(ids.ids))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(root / "conformance" / "cases")], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("IDS="))
    return set(json.loads(line[4:]))


def test_every_shipped_deviation_names_an_existing_case():
    """A renamed case or a mistyped glob would leave a deviation that never applies: catch it here."""
    ids = _collected_case_ids()
    assert len(ids) > 100
    stale = [f"{d.source}: {d.case}" for name in SHIPPED for d in load(name).deviations
             if not any(d.matches(i) for i in ids)]
    assert not stale, "deviations that match no case: " + "; ".join(stale)
