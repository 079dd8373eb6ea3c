"""Self-tests for reports/filesystems/evidence: the C program that observes the NFS findings a second way must itself
see a local filesystem as the references describe it, and its committed output must show what the README says of
NFS."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import native

EVIDENCE = Path(__file__).resolve().parent.parent / "reports" / "filesystems" / "evidence"
RESULTS = EVIDENCE / "results-6.12.txt"


def parse(text: str) -> dict:
    """{holder description: {question: answer}}, the waiters' lines under "threads", the lock table's under "table",
    and what another process meets once one description let go of its OFD lock ("kept flock") or its flock lock
    ("kept OFD")."""
    blocks: dict = {"threads": {}}
    current = None
    for line in text.splitlines():
        if line == "waiters in the lock table":
            current = blocks.setdefault("table", {})
        elif line.startswith("one description held"):
            current = blocks.setdefault("kept " + ("flock" if "of the OFD lock" in line else "OFD"), {})
        elif line.startswith("holder "):
            current = blocks.setdefault(line.partition(": ")[2], {})
        elif line.startswith("  ") and ": " in line:
            key, _, value = line.strip().partition(": ")
            (blocks["threads"] if "threads of one owner" in key else current)[key] = value
    return blocks


def sections(text: str) -> dict:
    """The results file's runs, by label (tmpfs, nfs3, nfs4.2, "nfs4.2, leases off")."""
    parts = re.split(r"^##### (.+)$", text, flags=re.M)
    return {label: parse(body) for label, body in zip(parts[1::2], parts[2::2])}


def grants(value: str) -> list:
    return [float(x) if x[0].isdigit() or x[0] == "-" else None for x in value.split("after ")[1].split()[:-1]]


def check_local(blocks: dict) -> None:
    """What every local filesystem does: a query answers what the request meets, flock and fcntl locks are apart, an
    OFD holder's l_pid is -1, F_UNLCK queries find nothing, every waiting thread is granted at once, and the lock
    table lists every waiter."""
    assert len(blocks) == 12, sorted(blocks)
    for holder, answers in blocks.items():
        if holder in ("threads", "table", "kept flock", "kept OFD"):
            continue
        for query, request in (("F_GETLK write", "F_SETLK write"), ("F_GETLK read", "F_SETLK read"),
                               ("F_OFD_GETLK write", "F_OFD_SETLK write")):
            free = answers[f"{query} whole"] == "unlck"
            assert free == (answers[f"{request} whole"] == "granted"), (holder, answers)
        assert answers["F_OFD_GETLK unlck whole"] == "unlck", (holder, answers)
        if holder.startswith("flock"):
            assert answers["F_SETLK write whole"] == "granted", (holder, answers)
        else:
            assert answers["flock(LOCK_SH|LOCK_NB)"] == "granted", (holder, answers)
    assert blocks["F_OFD_SETLK write 0+10"]["F_GETLK write whole"].endswith("l_pid -1 (-1)")
    assert len(blocks["threads"]) == 3
    assert len(blocks["table"]) == 9
    # The lock a description still holds refuses what meets it: locally only its own family.
    assert blocks["kept flock"] == {"F_GETLK write whole": "unlck", "F_SETLK write whole": "granted",
                                    "flock(LOCK_EX|LOCK_NB)": "Resource temporarily unavailable"}
    assert blocks["kept OFD"]["F_SETLK write whole"] == "Resource temporarily unavailable"
    assert blocks["kept OFD"]["flock(LOCK_EX|LOCK_NB)"] == "granted"
    for pair, seen in blocks["table"].items():
        waiting = seen.startswith("waiting")
        assert seen.endswith("lists 1 waiter(s)" if waiting else "lists 0 waiter(s)"), (pair, seen)
        assert waiting == (pair.count("flock") != 1), (pair, seen)  # the same call meets; flock and fcntl do not
    for line, value in blocks["threads"].items():
        assert all(t is not None and -0.5 < t < 1.0 for t in grants(value)), (line, value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the program is Linux's: OFD locks, /proc/locks")
def test_the_program_sees_a_local_filesystem_as_the_references_describe_it(tmp_path):
    compiler = native.compiler()
    if compiler is None:
        pytest.skip("no C compiler")
    program = tmp_path / "nfslocks"
    built = subprocess.run([*shlex.split(compiler), "-O1", "-Wall", "-Werror", "-pthread", "-o", str(program),
                            str(EVIDENCE / "nfslocks.c")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    files = tmp_path / "files"
    files.mkdir()
    done = subprocess.run([str(program), str(files)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CAP="10"))
    assert (done.returncode, done.stderr) == (0, ""), done
    assert_every_holder_held(done.stdout)
    check_local(parse(done.stdout))
    assert list(files.iterdir()) == [], "the program removes its files"


def assert_every_holder_held(text: str) -> None:
    """A holder that could not take its lock makes its scenario say nothing: the program says so, and so must fail."""
    refused = [line for line in text.splitlines() if "did not get its lock" in line or " failed: " in line
               or "could not" in line]
    assert refused == [], refused


def test_the_committed_output_shows_what_the_readme_says_of_nfs():
    text = RESULTS.read_text()
    assert_every_holder_held(text)
    runs = sections(text)
    assert list(runs) == ["tmpfs", "nfs3", "nfs4.2", "nfs4.2, leases off"]
    check_local(runs["tmpfs"])
    v3, v4, v4_plain = runs["nfs3"], runs["nfs4.2"], runs["nfs4.2, leases off"]
    # NFSv3: F_GETLK misses a shared flock lock that F_SETLK meets; it reports an exclusive one, with -svid.
    shared = v3["flock(LOCK_SH)"]
    assert shared["F_GETLK write whole"] == "unlck" and shared["F_SETLK write whole"] != "granted"
    assert re.fullmatch(r"write 0\+0 l_pid -\d+", v3["flock(LOCK_EX)"]["F_GETLK write whole"])
    # NFSv4.2: under a delegation flock and fcntl locks are apart; without one they meet, and queries say so.
    assert v4["flock(LOCK_EX)"]["F_SETLK write whole"] == "granted"
    assert v4["F_SETLK read whole"]["flock(LOCK_EX|LOCK_NB)"] == "granted"
    assert v4_plain["flock(LOCK_EX)"]["F_SETLK write whole"] != "granted"
    assert v4_plain["flock(LOCK_EX)"]["F_GETLK write whole"] != "unlck"
    # An OFD holder's l_pid: its pid over NFSv3 and under NFSv4.2's delegation; -1 without one.
    for blocks, expected in ((v3, "holder's pid"), (v4, "holder's pid"), (v4_plain, "(-1)")):
        assert expected in blocks["F_OFD_SETLK write 0+10"]["F_GETLK write whole"]
    # The F_UNLCK query about one's own locks answers with another's write lock over NFSv3, not under a delegation.
    assert v3["F_SETLK write whole"]["F_OFD_GETLK unlck whole"].startswith("write 0+0")
    assert v4["F_SETLK write whole"]["F_OFD_GETLK unlck whole"] == "unlck"
    assert v4_plain["F_SETLK read whole"]["F_OFD_GETLK unlck whole"].startswith("read 0+0")
    # A waiter that only the server sees blocked is not in the client's lock table (lock_table.py leaves NFS out).
    for blocks in (v3, v4_plain):
        assert blocks["table"]["holder F_SETLK write whole, waiter flock LOCK_EX"] == (
            "waiting; the lock table lists 0 waiter(s)")
    # Letting go of one of a description's two locks lets go of the other at the server: the flock lock still held
    # no longer refuses the write lock it refuses alone, the OFD lock still held no longer refuses flock.
    for blocks in (v3, v4_plain):
        assert blocks["flock(LOCK_SH)"]["F_SETLK write whole"] == "Resource temporarily unavailable"
        assert blocks["kept flock"]["F_SETLK write whole"] == "granted"
        assert blocks["F_SETLK read whole"]["flock(LOCK_EX|LOCK_NB)"] == "Resource temporarily unavailable"
        assert blocks["kept OFD"]["flock(LOCK_EX|LOCK_NB)"] == "granted"
    # NFSv3's waiters: some threads of one owner granted only at the client's 30 s poll.
    late = [t for value in v3["threads"].values() for t in grants(value) if t is not None and t > 25]
    assert late and all(29 < t < 35 for t in late), v3["threads"]
