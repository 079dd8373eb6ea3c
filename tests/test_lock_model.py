"""The lock model (conformance/explore/lockmodel.py) against histories worked out by hand from the documents, and the
lock-history explorer catching a planted fault: a model that forgets to merge disagrees with the real kernel, and
the difference is found, shrunk to three steps and written as a reproducer that runs on its own."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from conformance.explore import lockreproducer, lockrun
from conformance.explore.lockmodel import EOF, Lock, Model
from conformance.explore.lockrun import Step

PIDS = {0: 100, 1: 101, 2: 102}


def model_with(*descriptors, flock_vs_fcntl: str = "independent") -> Model:
    model = Model(flock_vs_fcntl)
    for actor, name in descriptors:
        model.open(actor, name)
    return model


def test_an_owners_adjacent_locks_of_one_type_are_one_lock():
    model = model_with((0, "a"))
    assert model.lock(0, "a", "posix", "read", 0, 2) is None
    assert model.lock(0, "a", "posix", "read", 2, 3) is None
    assert model.locks == [Lock("posix", ("process", 0), "read", 0, 5)]
    assert model.query("posix", "write", 4, 1, PIDS) == {("read", 0, 5, 100)}


def test_a_lock_of_the_other_type_splits_the_owners_lock():
    model = model_with((0, "a"))
    model.lock(0, "a", "posix", "read", 0, 0)
    model.lock(0, "a", "posix", "write", 3, 2)
    assert sorted(model.locks, key=lambda lock: lock.start) == [
        Lock("posix", ("process", 0), "read", 0, 3), Lock("posix", ("process", 0), "write", 3, 5),
        Lock("posix", ("process", 0), "read", 5, EOF)]
    assert model.query("posix", "read", 0, 0, PIDS) == {("write", 3, 2, 100)}
    assert model.query("ofd", "write", 6, 1, PIDS) == {("read", 5, 0, 100)}


def test_unlocking_the_middle_leaves_head_and_tail():
    model = model_with((1, "a"))
    model.lock(1, "a", "ofd", "write", 2, 6)
    model.unlock(1, "a", "ofd", 4, 2)
    assert model.query("posix", "read", 0, 0, PIDS) in ({("write", 2, 2, -1), ("write", 6, 2, -1)},)
    assert model.boundaries() == [0, 2, 4, 6, 8]


def test_closing_any_descriptor_ends_the_processs_classic_locks_but_not_the_descriptions():
    """POSIX fcntl: a process's locks go with the close of any of its descriptors of the file; an OFD lock goes with
    the last descriptor of its description (Linux fcntl(2))."""
    model = model_with((0, "a"), (0, "b"))
    model.lock(0, "a", "posix", "write", 0, 1)
    model.lock(0, "a", "ofd", "write", 5, 1)
    model.dup(0, "a", "c")
    model.close(0, "b")
    assert model.locks == [Lock("ofd", ("description", 0), "write", 5, 6)]
    model.close(0, "a")
    assert model.locks == [Lock("ofd", ("description", 0), "write", 5, 6)]  # "c" still refers to it
    model.close(0, "c")
    assert model.locks == []


def test_classic_and_ofd_locks_conflict_across_owners_but_not_within_a_process():
    model = model_with((0, "a"), (1, "a"))
    assert model.lock(0, "a", "posix", "write", 0, 4) is None
    assert model.lock(1, "a", "ofd", "read", 2, 1) == "EAGAIN"
    assert model.lock(0, "a", "ofd", "read", 2, 1) == "EAGAIN"  # the OFD's owner is the description, not process 0
    assert model.lock(1, "a", "posix", "write", 4, 0) is None


@pytest.mark.parametrize("choice, refused", [("independent", False), ("conflicting", True)])
def test_flock_meets_fcntl_locks_as_the_platform_chose(choice, refused):
    model = model_with((0, "a"), (1, "a"), flock_vs_fcntl=choice)
    model.lock(0, "a", "posix", "write", 7, 1)
    assert (model.lock(1, "a", "flock", "read") == "EAGAIN") is refused
    assert model.flock_free("read") is not refused


def test_a_failed_flock_conversion_leaves_no_lock():
    """flock(2): converting a lock first removes the existing one."""
    model = model_with((0, "a"), (1, "a"))
    model.lock(0, "a", "flock", "read")
    model.lock(1, "a", "flock", "read")
    assert model.lock(0, "a", "flock", "write") == "EAGAIN"
    assert model.locks == [Lock("flock", ("description", 1), "read", 0, EOF)]


def test_a_passed_descriptor_is_the_same_description_in_another_process():
    """unix(7): SCM_RIGHTS gives the receiver a descriptor of the same open file description, so its OFD lock is
    the receiver's too, and survives the sender's exit; the sender's classic locks do not."""
    model = model_with((0, "a"))
    model.lock(0, "a", "ofd", "write", 0, 4)
    model.lock(0, "a", "posix", "read", 8, 1)
    model.passed(0, "a", 1, "b")
    model.exit(0)
    assert model.locks == [Lock("ofd", ("description", 0), "write", 0, 4)]
    model.unlock(1, "b", "ofd", 1, 2)
    assert model.query("posix", "read", 0, 0, PIDS) == {("write", 0, 1, -1), ("write", 3, 1, -1)}
    model.close(1, "b")
    assert model.locks == []


def test_an_exit_closes_every_descriptor_of_the_process():
    model = model_with((0, "a"), (1, "a"))
    model.dup(0, "a", "b")
    model.lock(0, "b", "flock", "write")
    model.lock(0, "a", "posix", "write", 0, 1)
    model.exit(0)
    assert model.locks == [] and (0, "a") not in model.descriptors and (1, "a") in model.descriptors
    assert model.lock(1, "a", "flock", "write") is None


def test_a_history_names_only_descriptors_its_actor_holds():
    history = (Step(0, "open", ("a",)), Step(0, "dup", ("a", "b")), Step(0, "close", ("a",)),
               Step(0, "lock", ("b", "posix", "read", 0, 1)))
    assert lockrun.valid(history)
    assert not lockrun.valid(history[:1] + history[2:3] + (Step(0, "lock", ("a", "posix", "read", 0, 1)),))
    rng = random.Random(5)
    assert all(lockrun.valid(lockrun.random_history(rng, 3, 40, ("posix", "ofd", "flock"))) for _ in range(50))


@pytest.fixture
def bench(tmp_path):
    path = tmp_path / "locked"
    path.write_bytes(b"")
    families = tuple(f for f in lockrun.available_families() if f != "flock")
    if "posix" not in families:
        pytest.skip("no classic POSIX locks here")
    with lockrun.Bench(2, str(path), families, "independent") as bench:
        yield bench


def test_the_kernel_agrees_with_the_model_on_random_histories(bench):
    rng = random.Random(11)
    histories = [lockrun.random_history(rng, 2, 30, bench.families) for _ in range(20)]
    found = lockrun.explore(histories, bench, None, "a self-test")
    assert found.failed == 0, found.summary()
    assert found.steps == sum(len(h) for h in histories)


def test_a_model_that_forgets_to_merge_is_caught_and_shrunk(bench, tmp_path):
    bench.merges = False
    rng = random.Random(3)
    histories = [lockrun.random_history(rng, 2, 30, bench.families) for _ in range(30)]
    found = lockrun.explore(histories, bench, tmp_path / "reproducers", "a self-test")
    assert found.failed > 0 and found.failures
    for failure in found.failures:
        steps = failure.minimal.history
        # a history that shows a merge: a description (opened, perhaps passed on), then two touching locks of one type
        assert len(steps) <= 4 and steps[0].operation == "open", failure.minimal.text()
        assert [s.operation for s in steps[-2:]] == ["lock", "lock"], failure.minimal.text()
        done = subprocess.run([sys.executable, "-I", str(failure.reproducer)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 1, done  # the kernel merges, as the planted model does not


def test_a_lock_reproducer_replays_a_passed_descriptor_and_an_exit(tmp_path):
    history = (Step(0, "open", ("a",)), Step(0, "lock", ("a", "ofd", "write", 0, 4)), Step(0, "send", ("a", 1, "b")),
               Step(0, "exit", ()), Step(1, "unlock", ("b", "ofd", 2, 1)))
    if "ofd" not in lockrun.available_families():
        pytest.skip("no OFD locks here")
    for allowed, status in (([["write", 0, 2, -1], ["write", 3, 1, -1]], 0), ([["write", 0, 4, -1]], 1)):
        path = lockreproducer.write(tmp_path / str(status), history, ("query", "ofd", "read", 0, 0, allowed),
                                    "seen in a self-test", "a self-test")
        done = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (status, ""), done


def test_a_lock_reproducer_exits_0_where_the_platform_answers_as_the_references_say(tmp_path):
    history = (Step(0, "open", ("a",)), Step(0, "lock", ("a", "posix", "write", 5, 4)),
               Step(0, "lock", ("a", "posix", "write", 2, 4)))
    check = ("query", "posix", "read", 0, 0, [["write", 2, 7, 0]])  # one merged lock, held by actor 0
    path = lockreproducer.write(tmp_path, history, check, "seen in a self-test", "a self-test")
    text = path.read_text()
    assert "P0 lock(a, posix, write, 2, 4)" in text and "POSIX.1-2024" in text and "import conformance" not in text
    done = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done
