"""Self-tests of the lock family registry (conformance.locks): selection by property, registration and its undoing,
the probes that come from the entries, and, in a nested run of the lock cases, that a family registered by a plugin
is parametrised wherever its properties match, under its own name, and passes, while one whose probe fails is
`unsupported` with the probe's reason."""

from __future__ import annotations

import dataclasses
import itertools
import os

import nested_run
import pytest

from conformance import locks
from conformance.cases._support import require_lock_family
from conformance.outcomes import Unsupported
from conformance.platforms.probes import PROBES, Capability, probe, run_probe


def names(families) -> list:
    return [family.name for family in families]


# ---- the registry, in this process --------------------------------------------------------------------------------

def test_the_built_in_families_in_registration_order():
    assert names(locks.families()) == ["posix", "ofd", "flock"]
    assert names(locks.families(owner="description")) == ["ofd", "flock"]
    assert names(locks.families(owner="process")) == ["posix"]
    assert names(locks.families(ranges=True)) == ["posix", "ofd"]
    assert names(locks.families(queryable=True)) == ["posix", "ofd"]
    assert names(locks.families(system_call="flock")) == ["flock"]
    assert names(locks.families(detects_deadlock=True)) == ["posix"]
    assert names(locks.families(checks_open_mode=False)) == ["flock"]
    assert names(locks.families(owner="description", ranges=True)) == ["ofd"]
    assert [locks.family(name).query_command for name in ("posix", "ofd", "flock")] == ["F_GETLK", "F_OFD_GETLK",
                                                                                         None]


def test_a_family_is_named_by_its_case_id():
    assert str(locks.family("ofd")) == "ofd"
    assert f"the {locks.family('flock')} lock" == "the flock lock"


def test_an_unknown_property_or_name_is_refused():
    with pytest.raises(TypeError, match="no property onwer"):
        locks.families(onwer="process")  # a typo must not select nothing, and so run nothing
    with pytest.raises(LookupError, match="no lock family 'fcntl' is registered"):
        locks.family("fcntl")
    with pytest.raises(ValueError, match="owner 'thread'"):
        dataclasses.replace(locks.family("posix"), name="threaded", probe="threaded_locks", owner="thread")


@pytest.fixture
def registered():
    """registered(family): the family stays registered until the test ends (unless the test unregisters it), and
    probe results are forgotten then."""
    added = []

    def register(family: locks.Family) -> locks.Family:
        added.append(locks.register(family).name)
        return family

    yield register
    for name in added:
        if name in names(locks.families()):
            locks.unregister(name)
    probe.cache_clear()


def test_a_registered_family_is_selected_by_its_properties_after_the_others(registered):
    again = registered(dataclasses.replace(locks.family("posix"), name="classic_again", probe="classic_again_locks"))
    assert locks.family("classic_again") is again
    assert names(locks.families(owner="process")) == ["posix", "classic_again"]
    assert names(locks.families(ranges=True)) == ["posix", "ofd", "classic_again"]
    assert names(locks.families(owner="description")) == ["ofd", "flock"]
    assert locks.unregister("classic_again") is again
    assert names(locks.families()) == ["posix", "ofd", "flock"]


def test_a_name_or_probe_name_taken_is_refused():
    posix = locks.family("posix")
    with pytest.raises(ValueError, match="clashes with posix"):
        locks.register(dataclasses.replace(posix, probe="another_probe"))
    with pytest.raises(ValueError, match="clashes with ofd"):
        locks.register(dataclasses.replace(posix, name="another_name", probe="ofd_locks"))
    assert names(locks.families()) == ["posix", "ofd", "flock"]


def test_the_lock_probes_are_the_entries(registered):
    for family in locks.families():
        assert PROBES[family.probe] == family.check
    assert list(PROBES)[-3:] == ["posix_locks", "ofd_locks", "flock"]  # the probes' names, as reports had them
    registered(dataclasses.replace(locks.family("ofd"), name="absent", probe="absent_locks",
                                   check=lambda: (False, "no absent locks here")))
    assert list(PROBES)[-1] == "absent_locks" and len(PROBES) == len(list(PROBES))
    assert run_probe("absent_locks") == Capability("absent_locks", False, "no absent locks here")
    with pytest.raises(ValueError, match="registry entry"):
        PROBES["absent_locks"] = lambda: (True, "")
    locks.unregister("absent")
    assert "absent_locks" not in PROBES


def test_require_lock_family_gives_the_probes_reason_then_the_operations(registered, monkeypatch):
    absent = registered(dataclasses.replace(locks.family("ofd"), name="absent", probe="absent_locks",
                                            check=lambda: (False, "no absent locks here")))
    with pytest.raises(Unsupported, match="no absent locks here"):
        require_lock_family(absent)
    probe("flock")  # answered and cached while fcntl.flock exists
    monkeypatch.delattr("fcntl.flock")
    with pytest.raises(Unsupported, match="fcntl.flock is not available"):
        require_lock_family(locks.family("flock"))


# ---- a family registered by a plugin, in a nested run of the lock cases --------------------------------------------

PLUGIN = '''"""Two made-up lock families for a nested run of the lock cases."""

import dataclasses

from conformance import locks

# Another name for the classic POSIX operations, owned by the process like them.
locks.register(dataclasses.replace(locks.family("posix"), name="classic_again", probe="classic_again_locks",
                                   defined_in=__name__))
# A family this platform does not have: its probe says so.
locks.register(dataclasses.replace(locks.family("ofd"), name="absent", probe="absent_locks", defined_in=__name__,
                                   check=lambda: (False, "no absent locks here")))
'''
# Which built-in family each made-up one copies, and so has the properties of.
COPIES = {"classic_again": "posix", "absent": "ofd"}
NESTED_WALL = 150.0  # about 10 s alone on 2 cores; the bound only ends a hang


def params(case_id: str) -> list:
    inside = case_id.partition("[")[2]
    return inside[:-1].split("-") if inside else []


def with_copies(case_id: str) -> set:
    """Every id case_id becomes when any of its family parameters is replaced by a made-up copy (itself included)."""
    name = case_id.partition("[")[0]
    if not params(case_id):
        return {case_id}
    choices = [[part, *(new for new, old in COPIES.items() if old == part)] for part in params(case_id)]
    return {f"{name}[{'-'.join(chosen)}]" for chosen in itertools.product(*choices)}


def original(case_id: str) -> str:
    """The id of the built-in families' case that a made-up family's case copies."""
    return f"{case_id.partition('[')[0]}[{'-'.join(COPIES.get(p, p) for p in params(case_id))}]"


@pytest.mark.timeout(NESTED_WALL + 30)
def test_a_family_a_plugin_registers_is_parametrised_by_its_properties(tmp_path):
    plugin_dir, tmpdir, report_dir, output = (tmp_path / p for p in ("plugin", "tmp", "report", "output.txt"))
    plugin_dir.mkdir()
    tmpdir.mkdir()
    (plugin_dir / "made_up_lock_families.py").write_text(PLUGIN)
    marker = f"{tmp_path}{os.sep}"  # in its argv and environment, not in a sibling's
    env = nested_run.environment(tmpdir, marker, PYTHONPATH=os.pathsep.join(
        filter(None, [str(plugin_dir), os.environ.get("PYTHONPATH")])))
    status, _ = nested_run.run(
        nested_run.pytest_command(str(nested_run.ROOT / "conformance" / "cases" / "test_locks.py"), "-q",
                                  "-p", "made_up_lock_families", "--basetemp", str(tmp_path / "basetemp"),
                                  "--conformance-report", str(report_dir)),
        cwd=nested_run.ROOT, env=env, output=output, timeout=NESTED_WALL)
    alive = nested_run.survivors(marker)
    nested_run.kill(alive)
    assert not alive and not nested_run.files_under(tmpdir), f"left over: {alive}, {nested_run.files_under(tmpdir)}"
    assert status == 0, output.read_text(errors="replace")[-3000:]
    report = nested_run.report_of(report_dir).to_json()
    capabilities = report["platform"]["capabilities"]
    assert capabilities["absent_locks"] == {"supported": False, "reason": "no absent locks here"}
    assert capabilities["classic_again_locks"] == capabilities["posix_locks"]
    cases = {case["id"]: case for case in report["cases"]}

    # Collected: every case of the built-in families once more for each made-up family in each family parameter.
    built_in = [cid for cid in cases if not set(COPIES) & set(params(cid))]
    expected = set().union(*map(with_copies, built_in))
    assert set(cases) == expected, (
        f"missing {sorted(expected - set(cases))[:5]}, unexpected {sorted(set(cases) - expected)[:5]}")

    # Run: the copy of the classic operations as the classic family (where an expectation file, keyed to the ids,
    # does not make the difference), the family without a probe unsupported with the probe's reason.
    made_up = {cid: case for cid, case in cases.items() if cid not in built_in}
    again = {cid: case for cid, case in made_up.items() if "absent" not in params(cid)}
    differ = {cid: (case["outcome"], cases[original(cid)]["outcome"], case["reason"][:200])
              for cid, case in again.items() if case["outcome"] != cases[original(cid)]["outcome"]
              and cases[original(cid)]["outcome"] not in ("deviation", "unexpected-pass")}
    assert not differ, f"classic_again against posix: {dict(itertools.islice(differ.items(), 5))}"
    assert sum(case["outcome"] == "pass" for case in again.values()) > 100, "too few classic_again cases passed"
    absent = {cid: (case["outcome"], case["reason"]) for cid, case in made_up.items() if cid not in again}
    assert absent and set(absent.values()) == {("unsupported", "no absent locks here")}, set(absent.values())
