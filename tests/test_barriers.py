"""Self-tests for conformance.harness.barriers.Event across real forks."""

from __future__ import annotations

import select
import time

import pytest

from conformance.harness.barriers import BarrierBroken, BarrierTimeout, Event
from conformance.harness.children import Child, run_in_child


def test_event_set_in_a_child_is_seen_by_the_parent():
    with Event() as event:
        run_in_child(event.set, b"ready")
        assert event.wait(5) == b"ready"


def test_event_set_by_the_parent_releases_a_waiting_child_with_its_payload():
    with Event() as waiting, Event() as go:

        def child() -> bytes:
            waiting.set(b"waiting")
            return go.wait(5)

        with Child(child) as c:
            assert waiting.wait(5) == b"waiting"
            go.set(b"EAGAIN")
            assert c.join(5) == b"EAGAIN"


def test_payloads_keep_their_boundaries_and_order():
    with Event() as event:
        event.set()
        event.set(b"ab")
        event.set(bytes(range(255)))
        assert event.wait(1) == b"!"
        assert event.wait(1) == b"ab"
        assert event.wait(1) == bytes(range(255))


def test_wait_times_out_within_its_deadline():
    with Event() as event:
        started = time.monotonic()
        with pytest.raises(BarrierTimeout, match="0.3s"):
            event.wait(0.3)
        elapsed = time.monotonic() - started
        assert 0.3 <= elapsed < 2, f"wait(0.3) took {elapsed:.2f}s"


def test_a_watched_peer_that_ends_without_signalling_breaks_the_wait_at_once():
    with Event() as event, Child(lambda: None) as child:
        started = time.monotonic()
        with pytest.raises(BarrierBroken, match=f"child {child.pid} ended without signalling"):
            event.wait(5, peer=child)
        assert time.monotonic() - started < 2, "the wait ran on towards its deadline"


def test_a_watched_peer_that_signals_and_then_ends_is_not_broken():
    with Event() as event, Child(event.set, b"bye") as child:
        select.select([child], [], [], 5)  # it has signalled, reported and ended: both pipes are readable
        assert event.wait(5, peer=child) == b"bye"
        assert child.join(5) is None


@pytest.mark.parametrize("payload", [b"", b"x" * 256], ids=["empty", "256-bytes"])
def test_payload_size_limits(payload):
    with Event() as event:
        with pytest.raises(ValueError, match="1..255"):
            event.set(payload)
        with pytest.raises(BarrierTimeout):
            event.wait(0)  # the refused set wrote nothing
        event.set(b"y" * 255)
        assert event.wait(1) == b"y" * 255
