"""The lock model (conformance/explore/lockmodel.py) against histories worked out by hand from the documents, and the
lock-history explorer catching a planted fault: a model that forgets to merge disagrees with the real kernel, and
the difference is found, shrunk to three steps and written as a reproducer that runs on its own."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from conformance.explore import lockhistory, lockreproducer, lockrun
from conformance.explore.lockhistory import Step
from conformance.explore.lockmodel import EOF, Lock, Model

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


@pytest.mark.parametrize("call, answer", [("lock", "EAGAIN"), ("wait", "blocked")], ids=["fails", "waits"])
def test_a_flock_conversion_that_conflicts_has_already_dropped_the_old_lock(call, answer):
    """flock(2): converting "is not guaranteed to be atomic: the existing lock is first removed"; a conversion that
    fails leaves no lock, one that waits holds none while it waits."""
    model = model_with((0, "a"), (1, "a"))
    model.lock(0, "a", "flock", "read")
    model.lock(1, "a", "flock", "read")
    assert getattr(model, call)(0, "a", "flock", "write") == answer
    assert model.locks == [Lock("flock", ("description", 1), "read", 0, EOF)]
    model.unlock(1, "a", "flock")
    assert model.settle() == ([0] if call == "wait" else [])  # nothing of the waiter's was left to block it


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
    assert lockhistory.valid(history)
    assert not lockhistory.valid(history[:1] + history[2:3] + (Step(0, "lock", ("a", "posix", "read", 0, 1)),))
    rng = random.Random(5)
    assert all(lockhistory.valid(lockhistory.random_history(rng, 3, 40, ("posix", "ofd", "flock"))) for _ in range(50))


def make_bench(tmp_path, actors: int, needed: str) -> lockrun.Bench:
    """A bench on a new file for the fcntl families this platform has; skipped without the `needed` one."""
    path = tmp_path / "locked"
    path.write_bytes(b"")
    families = tuple(f for f in lockrun.available_families() if f != "flock")
    if needed not in families:
        pytest.skip(f"no {needed} locks here")
    return lockrun.Bench(actors, str(path), families, "independent")


@pytest.fixture
def bench(tmp_path):
    with make_bench(tmp_path, 2, "posix") as bench:
        yield bench


def test_the_kernel_agrees_with_the_model_on_random_histories(bench):
    rng = random.Random(11)
    histories = [lockhistory.random_history(rng, 2, 30, bench.families) for _ in range(20)]
    found = lockrun.explore(histories, bench, None, "a self-test")
    assert found.failed == 0, found.summary()
    assert found.steps == sum(len(h) for h in histories)


def test_a_model_that_forgets_to_merge_is_caught_and_shrunk(bench, tmp_path):
    bench.merges = False
    rng = random.Random(3)
    histories = [lockhistory.random_history(rng, 2, 30, bench.families) for _ in range(30)]
    found = lockrun.explore(histories, bench, tmp_path / "reproducers", "a self-test")
    assert found.failed > 0 and found.failures
    for failure in found.failures:
        steps = failure.minimal.history
        # a history that shows a merge: a description (opened, perhaps passed on), then two touching locks of one type
        assert len(steps) <= 4 and steps[0].operation == "open", failure.minimal.text()
        assert all(s.operation in ("lock", "wait") for s in steps[-2:]), failure.minimal.text()
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


# ---- waiters ---------------------------------------------------------------------------------------------------


def test_a_waiter_is_granted_when_what_blocks_it_goes():
    """POSIX F_SETLKW: the request waits "until the request can be satisfied"; then it holds its lock."""
    model = model_with((0, "a"), (1, "a"))
    model.lock(0, "a", "posix", "write", 0, 4)
    assert model.wait(1, "a", "posix", "read", 2, 4) == "blocked" and model.blocked(1)
    assert model.settle() == []
    model.unlock(0, "a", "posix", 0, 2)
    assert model.settle() == []  # the unlocked part is not what it waits for
    model.unlock(0, "a", "posix", 2, 2)
    assert model.settle() == [1] and not model.blocked(1)
    assert model.locks == [Lock("posix", ("process", 1), "read", 2, 6)]


def test_a_waiter_whose_process_ends_is_gone():
    model = model_with((0, "a"), (1, "a"))
    model.lock(0, "a", "ofd", "write", 0, 0)
    model.wait(1, "a", "ofd", "write", 0, 1)
    model.exit(1)
    model.unlock(0, "a", "ofd", 0, 0)
    assert model.settle() == [] and model.locks == [] and model.waiters == []


def test_a_grant_that_downgrades_frees_the_next_waiter():
    """A classic lock replaces its owner's lock over its range: P1's read over its own write lets P2's read in."""
    model = model_with((0, "a"), (1, "a"), (2, "a"))
    model.lock(1, "a", "posix", "write", 5, 1)
    model.lock(0, "a", "posix", "write", 0, 1)
    assert model.wait(1, "a", "posix", "read", 0, 10) == "blocked"
    assert model.wait(2, "a", "posix", "read", 5, 1) == "blocked"
    model.unlock(0, "a", "posix", 0, 1)
    assert model.settle() == [1, 2] and not model.raced


def test_waiters_whose_order_decides_the_outcome_are_a_race():
    model = model_with((0, "a"), (1, "a"), (2, "a"))
    model.lock(0, "a", "posix", "write", 0, 0)
    model.wait(1, "a", "posix", "write", 0, 1)
    model.wait(2, "a", "posix", "read", 0, 1)
    model.unlock(0, "a", "posix", 0, 0)
    model.settle()
    assert model.raced  # P1 or P2: the scheduler's choice
    shared = model_with((0, "a"), (1, "a"))
    shared.passed(1, "a", 2, "b")  # P1 and P2 share one description
    shared.lock(0, "a", "posix", "write", 6, 4)
    shared.wait(2, "b", "ofd", "read", 5, 2)
    shared.wait(1, "a", "ofd", "write", 5, 3)
    shared.unlock(0, "a", "posix", 0, 0)
    shared.settle()
    assert shared.raced  # which of the description's two requests comes last decides the type of 5..6


def test_a_wait_behind_a_sleeping_owner_is_stuck():
    model = model_with((0, "a"), (1, "a"))
    model.lock(0, "a", "posix", "write", 0, 1)
    model.lock(1, "a", "posix", "write", 5, 1)
    model.wait(0, "a", "posix", "write", 5, 1)
    assert model.stuck(1, "a", "posix", "write", 0, 1)  # a cycle: only classic locks may detect it
    assert not model.stuck(1, "a", "posix", "write", 2, 1)
    assert model.stuck(1, "a", "ofd", "write", 5, 1)  # its own classic lock: only it could release it
    history = (Step(0, "open", ("a",)), Step(1, "open", ("a",)), Step(0, "lock", ("a", "posix", "write", 0, 1)),
               Step(1, "wait", ("a", "posix", "write", 0, 1)))
    assert lockhistory.valid(history)
    assert not lockhistory.valid(history + (Step(1, "close", ("a",)),))  # a sleeping process takes no step
    assert lockhistory.valid(history + (Step(1, "exit", ()),))  # but it may be killed


def test_random_histories_have_waiters_that_sleep_and_wake():
    rng = random.Random(7)
    slept = woke = 0
    for _ in range(60):
        model = Model()
        for step in lockhistory.random_history(rng, 3, 30, ("posix", "ofd", "flock")):
            expected, granted = lockhistory.advance(model, step)
            slept += expected == "blocked"
            woke += len(granted)
    assert slept > 20 and woke > 5, (slept, woke)


WAITS = (Step(0, "open", ("a",)), Step(1, "open", ("a",)), Step(0, "lock", ("a", "posix", "write", 0, 4)),
         Step(1, "wait", ("a", "posix", "read", 2, 4)), Step(0, "unlock", ("a", "posix", 0, 0)))


def test_the_kernel_wakes_a_waiter_when_the_model_does(bench):
    steps, found = bench.run(WAITS)
    assert found is None and steps == len(WAITS), found and found.text()
    steps, found = bench.run(WAITS[:-1] + (Step(1, "exit", ()),))  # a sleeping waiter killed, then replaced
    assert found is None, found.text()


def test_a_model_that_never_wakes_waiters_is_caught_with_a_reproducer(bench, tmp_path):
    bench.wakes = False
    found = lockrun.explore([WAITS + (Step(1, "close", ("a",)),)], bench, tmp_path / "reproducers", "a self-test")
    assert found.failed == 1, found.summary()
    failure = found.failures[0]
    # the woken waiter has answered, or (still on its way) is no longer in the kernel's lock table
    assert failure.minimal.history[-1] == WAITS[-1], failure.minimal.text()
    assert failure.minimal.check[0] in ("waiting", "table"), failure.minimal.text()
    text = failure.reproducer.read_text()
    assert "P1 wait(a, posix, read, 2, 4) (sleeps)" in text
    done = subprocess.run([sys.executable, "-I", str(failure.reproducer)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done  # the kernel wakes it


@pytest.mark.parametrize("check", [("granted", 1), ("table", [])], ids=["granted", "table"])
def test_a_waiter_reproducer_exits_0_where_the_kernel_wakes_it(tmp_path, check):
    if check[0] == "table" and lockrun.lock_table.blocked(__file__) is None:
        pytest.skip("no lock table here")
    path = lockreproducer.write(tmp_path, WAITS, check, "seen in a self-test", "a self-test")
    assert "P0 unlock(a, posix, 0, 0); then P1 is granted" in path.read_text()
    done = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done


def test_a_table_reproducer_exits_1_where_the_table_lists_another_waiter(tmp_path):
    if lockrun.lock_table.blocked(__file__) is None:
        pytest.skip("no lock table here")
    check = ("table", [["POSIX", "READ", "1", "2", "5"]])  # as if P1 still waited
    path = lockreproducer.write(tmp_path, WAITS, check, "seen in a self-test", "a self-test")
    done = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done


def test_a_waiter_the_lock_table_does_not_list_is_a_difference(bench, monkeypatch):
    if not bench.table:
        pytest.skip("no lock table here")
    listed = lockrun._listed
    monkeypatch.setattr(lockrun, "_listed", lambda waiter, pids: listed(waiter, pids)[:3] + ("3", "5"))
    monkeypatch.setattr(lockrun, "TABLE_SETTLES", 0.2)
    steps, found = bench.run(WAITS)
    assert found is not None and found.check == ("table", [["POSIX", "READ", "1", "3", "5"]]), found
    assert "lists waiters [POSIX READ" in found.problem and steps == 4


# ---- exec -------------------------------------------------------------------------------------------------------


def test_an_exec_closes_what_is_close_on_exec_and_with_it_the_processs_classic_locks():
    """POSIX exec closes FD_CLOEXEC descriptors; dup's and SCM_RIGHTS' new descriptors are not marked; a close ends
    the process's classic locks on the file, which otherwise survive the exec (Linux fcntl(2))."""
    model = model_with((1, "a"))
    model.open(0, "a")
    model.lock(0, "a", "posix", "write", 0, 1)
    assert model.exec(0) == ["a"] and model.locks == [Lock("posix", ("process", 0), "write", 0, 1)]
    model.open(0, "b", cloexec=True)
    model.dup(0, "b", "c")
    model.passed(0, "b", 1, "b")
    model.lock(0, "c", "ofd", "read", 4, 1)
    assert model.exec(0) == ["a", "c"]
    assert model.locks == [Lock("ofd", ("description", 2), "read", 4, 5)]  # its description is still open


EXECS = (Step(0, "open", ("a",)), Step(1, "open", ("a",)), Step(0, "open", ("b", "cloexec")),
         Step(0, "lock", ("a", "posix", "write", 0, 2)), Step(0, "dup", ("b", "c")), Step(0, "exec", ()),
         Step(1, "lock", ("a", "posix", "write", 1, 1)), Step(0, "open", ("d", "cloexec")), Step(0, "exec", ()),
         Step(1, "lock", ("a", "posix", "write", 1, 1)))


def test_the_kernel_keeps_and_closes_across_exec_as_the_model_does(bench):
    steps, found = bench.run(EXECS)
    assert found is None and steps == len(EXECS), found and found.text()


def test_a_model_that_keeps_close_on_exec_descriptors_is_caught_with_a_reproducer(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(Model, "exec", lambda self, actor: sorted(n for a, n in self.descriptors if a == actor))
    found = lockrun.explore([EXECS], bench, tmp_path / "reproducers", "a self-test")
    assert found.failed == 1, found.summary()
    minimal = found.failures[0].minimal
    assert minimal.check[0] == "kept" and minimal.history[-1] == Step(0, "exec", ()), minimal.text()
    assert any("cloexec" in step.args for step in minimal.history), minimal.text()
    done = subprocess.run([sys.executable, "-I", str(found.failures[0].reproducer)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done  # the kernel closes it


# ---- fork -------------------------------------------------------------------------------------------------------


def test_a_forked_child_shares_descriptions_but_not_classic_locks():
    """POSIX fork: the child's descriptors refer to the parent's open file descriptions; "File locks set by the
    parent process shall not be inherited by the child process"."""
    model = model_with((0, "a"), (1, "x"))
    model.open(0, "b", cloexec=True)
    model.lock(0, "a", "posix", "write", 0, 1)
    model.lock(0, "b", "ofd", "write", 5, 1)
    model.fork(0, 1)  # P1's process exits; P0's child takes its place
    assert sorted(name for actor, name in model.descriptors if actor == 1) == ["a", "b"]
    assert (1, "b") in model.cloexec and model.children(0) == [1]
    assert model.lock(1, "a", "posix", "write", 0, 1) == "EAGAIN"  # the parent's, not the child's
    assert model.lock(1, "b", "ofd", "write", 5, 1) is None  # the same description's
    model.close(1, "a")
    assert Lock("posix", ("process", 0), "write", 0, 1) in model.locks  # the child's close is not the parent's
    history = (Step(0, "open", ("a",)), Step(1, "open", ("a",)), Step(0, "fork", (1,)))
    assert lockhistory.valid(history)
    assert not lockhistory.valid(history + (Step(0, "exit", ()),))  # its child would be left to init
    assert lockhistory.valid(history + (Step(1, "exit", ()), Step(0, "exit", ())))


FORKS = (Step(0, "open", ("a",)), Step(1, "open", ("a",)), Step(0, "open", ("b", "cloexec")),
         Step(0, "lock", ("a", "posix", "write", 0, 2)), Step(0, "lock", ("b", "ofd", "write", 5, 1)),
         Step(0, "fork", (1,)), Step(1, "lock", ("a", "posix", "write", 3, 1)),
         Step(1, "lock", ("b", "ofd", "write", 5, 2)), Step(1, "close", ("a",)), Step(1, "exec", ()),
         Step(1, "fork", (2,)), Step(2, "open", ("z",)), Step(2, "wait", ("z", "posix", "write", 0, 1)),
         Step(0, "unlock", ("a", "posix", 0, 0)))


def test_the_kernel_forks_as_the_model_does_and_every_process_is_reaped(tmp_path):
    """A fork, an exec of the child, a fork of that (a grandchild), a wait granted in the grandchild; histories
    that end with a grandchild asleep, or alive: every process ends, reaped by its parent's kernel."""
    with make_bench(tmp_path, 3, "ofd") as bench:
        for history in (FORKS, FORKS[:-1], FORKS[:11]):
            steps, found = bench.run(history)
            assert found is None and steps == len(history), found and found.text()
        pids = [bench.pids[actor] for actor in (1, 2)]
        bench.run(FORKS[:-1])
    for pid in pids:  # replaced by fresh helpers at each history's end: gone, not left to init as zombies
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_model_whose_child_inherits_classic_locks_is_caught_with_a_reproducer(bench, tmp_path, monkeypatch):
    fork = Model.fork

    def inheriting(self, actor, to):
        fork(self, actor, to)
        self.locks += [Lock(lock.family, ("process", to), lock.kind, lock.start, lock.end)
                       for lock in self.locks if lock.owner == ("process", actor)]
    monkeypatch.setattr(Model, "fork", inheriting)
    history = FORKS[:6] + (Step(0, "unlock", ("a", "posix", 0, 0)),)  # the parent's lock gone: no classic lock
    found = lockrun.explore([history], bench, tmp_path / "reproducers", "a self-test")
    assert found.failed == 1, found.summary()
    minimal = found.failures[0].minimal
    assert any(step.operation == "fork" for step in minimal.history), minimal.text()
    done = subprocess.run([sys.executable, "-I", str(found.failures[0].reproducer)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done  # the kernel's child holds no classic lock
