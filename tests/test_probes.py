"""Self-tests for the capability probes, `require`, and the facts of each OS."""

from __future__ import annotations

import ast
import dataclasses
import errno
import fcntl
import importlib
import inspect
import os
import re
import socket

import pytest

from conformance import platforms
from conformance.cases.conftest import require
from conformance.outcomes import Unsupported
from conformance.platforms import constants, os_name
from conformance.platforms.facts import Facts
from conformance.platforms.probes import PROBES, Capability, probe, run_probe

# Every OS module: those os_name() maps a sys.platform to, then the fallback for any other OS.
OS_MODULES = (*dict.fromkeys(platforms._MODULES.values()), "generic")


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_probe_answers_without_raising(name):
    result = PROBES[name]()  # the raw probe, not run_probe's safety net
    assert isinstance(result, tuple) and len(result) == 2
    supported, reason = result
    assert isinstance(supported, bool)
    assert isinstance(reason, str) and reason.strip()
    capability = run_probe(name)
    assert isinstance(capability, Capability)
    assert capability.name == name and capability.supported is supported
    assert not capability.reason.startswith("probe raised"), capability.reason


# probe, attributes deleted from Python's modules, platform constants set to None, a regex the reason must match
MISSING = [
    ("scm_rights", [(socket, "SCM_RIGHTS")], [], "socket.SCM_RIGHTS is not defined"),
    ("sock_seqpacket", [(socket, "SOCK_SEQPACKET")], [], "socket.SOCK_SEQPACKET is not defined"),
    ("msg_cmsg_cloexec", [(socket, "MSG_CMSG_CLOEXEC")], ["MSG_CMSG_CLOEXEC"], "MSG_CMSG_CLOEXEC is not defined"),
    ("ofd_locks", [(fcntl, "F_OFD_GETLK")], ["F_OFD_GETLK"], "F_OFD_GETLK or the struct flock layout is not known"),
    ("pidfd_open", [(os, "pidfd_open")], [], "os.pidfd_open is not available"),
    ("pidfd_getfd", [(os, "pidfd_open")], [], "os.pidfd_open is not available|no pidfd_getfd syscall number"),
    ("posix_mqueue", [], ["MQ_LIBRARIES"], "no POSIX message queue library or struct mq_attr layout"),
    ("posix_mqueue", [], ["MQ_ATTR_FORMAT"], "no POSIX message queue library or struct mq_attr layout"),
]


@pytest.mark.parametrize(("name", "deleted", "nulled", "named"), MISSING,
                         ids=[f"{m[0]}-{'-'.join(m[2]) or 'python'}" for m in MISSING])
def test_absent_mechanism_is_unsupported_with_a_reason(monkeypatch, name, deleted, nulled, named):
    for module, attribute in deleted:
        monkeypatch.delattr(module, attribute, raising=False)
    for constant in nulled:
        # constants() is Linux's facts here: the fallback lookup() consults after Python's modules
        monkeypatch.setattr(constants(), constant, None)
    capability = run_probe(name)
    assert capability == Capability(name, False, capability.reason)
    assert re.search(named, capability.reason), capability.reason


def test_a_failing_system_call_is_a_reason(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EAFNOSUPPORT, "refused")

    monkeypatch.setattr(socket, "socketpair", refuse)
    capability = run_probe("sock_stream")
    assert not capability.supported
    assert capability.reason == "socketpair(AF_UNIX, SOCK_STREAM) failed: EAFNOSUPPORT"


def test_a_probe_that_raises_is_unsupported_not_a_crash(monkeypatch):
    def explode():
        raise RuntimeError("kaboom")

    monkeypatch.setitem(PROBES, "selftest_exploding", explode)
    assert run_probe("selftest_exploding") == Capability(
        "selftest_exploding", False, "probe raised RuntimeError: kaboom")


@pytest.fixture
def fresh_probe_cache():
    probe.cache_clear()
    yield
    probe.cache_clear()


def test_require_raises_unsupported_with_the_probe_reason(monkeypatch, fresh_probe_cache):
    monkeypatch.setitem(PROBES, "selftest_missing", lambda: (False, "the selftest mechanism is missing"))
    monkeypatch.setitem(PROBES, "selftest_present", lambda: (True, "the selftest mechanism works"))
    assert require("selftest_present") is None
    with pytest.raises(Unsupported) as info:
        require("selftest_missing")
    assert isinstance(info.value, pytest.skip.Exception)  # pytest reports it as a skip
    assert info.value.reason == "the selftest mechanism is missing"
    assert str(info.value) == "unsupported: the selftest mechanism is missing"


# ---- the facts of each OS -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*OS_MODULES, "aix"])
def test_every_os_has_one_facts_record(name):
    facts = constants(name)
    assert type(facts) is Facts
    assert facts is constants(name), "a second record: what a self-test sets on one, callers would not read"


def _keywords_set(name: str) -> list:
    """The fields an OS module passes to Facts(...), as its source spells them."""
    module = importlib.import_module(f"conformance.platforms.{name}")
    tree = ast.parse(inspect.getsource(module))
    calls = [node.value for node in tree.body if isinstance(node, ast.Assign)
             and [target.id for target in node.targets if isinstance(target, ast.Name)] == ["FACTS"]]
    assert len(calls) == 1 and isinstance(calls[0], ast.Call), f"{name}: no single FACTS = Facts(...)"
    assert not calls[0].args, f"{name}: facts are set by name only"
    return [keyword.arg for keyword in calls[0].keywords]


@pytest.mark.parametrize("name", OS_MODULES)
def test_no_os_module_sets_a_field_to_its_default(name):
    """An OS module sets only what its OS has: a default restated would read as a fact with a source."""
    defaults = Facts(NAME=name)
    set_here = _keywords_set(name)
    unknown = sorted(set(set_here) - {f.name for f in dataclasses.fields(Facts)})
    assert not unknown, f"{name}: no such fields {unknown}"
    restated = sorted(field for field in set_here
                      if field != "NAME" and getattr(constants(name), field) == getattr(defaults, field))
    assert not restated, f"{name} sets these to their defaults: {restated}"
    assert len(set_here) == len(set(set_here))
    if name == "generic":
        assert set_here == ["NAME"], "an unknown OS is assumed to have nothing"


def test_constants_picks_the_module_by_os_name():
    assert [constants(n).NAME for n in OS_MODULES] == list(OS_MODULES)
    assert constants("aix").NAME == "generic"
    assert constants("nosuchos") is constants("generic")
    assert constants() is constants(os_name())


@pytest.mark.parametrize(("platform", "expected"), [
    ("freebsd14", "freebsd"), ("darwin", "darwin"), ("sunos5", "illumos"), ("linux", "linux"), ("aix", "aix"),
])
def test_os_name(platform, expected):
    assert os_name(platform) == expected
