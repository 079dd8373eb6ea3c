"""Bad arguments to fcntl, flock, sendmsg and recvmsg: each is refused with the errno the references name, and a
refused or faulted call passes, installs and keeps no descriptor.

Python's own calls cannot make these mistakes (fcntl.fcntl refuses a negative descriptor and copies its argument,
socket.sendmsg writes every cmsghdr itself), so these calls go through ctypes, with struct msghdr, struct cmsghdr and
struct iovec laid out as the platform module says (conformance.platforms: MSGHDR_FORMAT, CMSGHDR_FORMAT,
IOVEC_FORMAT, CMSG_ALIGNMENT, MSG_FUNCTIONS). Memory the kernel must not read or write is an anonymous mapping made
PROT_NONE, never a wild pointer.

Anchors: LTP testcases/kernel/syscalls fcntl13, fcntl18, flock02, sendmsg01; XNU tests/uipc_uaf.c; FreeBSD
tests/sys/kern/unix_passfd_test.c copyout_rights_error and empty_rights_message; CPython Lib/test/test_socket.py
CmsgMacroTests.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import mmap
import os
import resource
import socket
import struct
import sys
from functools import cache

import pytest

from conformance import locks
from conformance.harness import fds as fdlist
from conformance.harness import rights
from conformance.outcomes import Unsupported
from conformance.platforms import constants, detect, lookup

from ._support import InFlightMarker, data_file, errno_name, nothing_queued, require_lock_family

LTP = "LTP testcases/kernel/syscalls"
PASSFD = "FreeBSD tests/sys/kern/unix_passfd_test.c"
CPYTHON = "CPython Lib/test/test_socket.py CmsgMacroTests"
POSIX_FCNTL = "POSIX.1-2024 XSH fcntl(): [EINVAL] cmd is invalid or the struct flock data is not valid; [EBADF]"
LINUX_FCNTL = "Linux fcntl(2): EFAULT lock is outside your accessible address space"
LINUX_FLOCK = "Linux flock(2): EBADF fd is not an open file descriptor; EINVAL operation is invalid"
LINUX_SENDMSG = "Linux sendmsg(2): EFAULT an invalid user space address was specified for an argument"
LINUX_SCM = "Linux net/core/scm.c __scm_send: CMSG_OK (cmsg_len at least a header, within msg_controllen)"
RFC3542 = "RFC 3542 section 20: CMSG_SPACE and CMSG_LEN"

FCNTL_FAMILIES = locks.families(system_call="fcntl")
FLOCK = locks.family("flock")
COMMANDS = ("query", "set", "wait")  # the order of locks.commands(): F_GETLK, F_SETLK, F_SETLKW or their OFD forms
INT = array.array("i").itemsize

# Room after a struct msghdr for a kernel whose own msghdr is larger than the record says (a record of another OS
# simulated on this one): recvmsg writes msg_flags there instead of past the buffer.
MSGHDR_SLACK = 64


# ---- calls through ctypes -----------------------------------------------------------------------------------------

@cache
def _function(name: str, libraries: tuple = (None,)):
    """The C function `name` from the first library that has it (None: the C library itself), or Unsupported."""
    for library in libraries:
        path = library if library is None else ctypes.util.find_library(library)
        if library is not None and path is None:
            continue
        try:
            function = getattr(ctypes.CDLL(path, use_errno=True), name, None)
        except OSError:
            continue
        if function is not None:
            return function
    where = ", ".join("the C library" if library is None else f"lib{library}" for library in libraries)
    raise Unsupported(f"{name} is not found in {where}")


def _checked(result: int, name: str) -> int:
    if result == -1:
        number = ctypes.get_errno()
        raise OSError(number, f"{name}: {os.strerror(number)}")
    return result


def _refusal(call, *args) -> int | None:
    """The errno call(*args) failed with, None if it succeeded."""
    try:
        call(*args)
    except OSError as e:
        return e.errno
    return None


def _said(refused: int | None, success: str = "accepted") -> str:
    """What a call answered, for messages and observations: refused:<errno name>, or `success`."""
    return success if refused is None else f"refused:{errno_name(refused)}"


def c_fcntl(fd: int, command: int, address: int) -> int:
    """fcntl(fd, command, address) as the kernel gets it: the C library's fcntl, which passes the argument on unread,
    or the syscall itself where the C library reads it first (a 32-bit glibc converts a struct flock: platforms)."""
    number = constants().FCNTL_SYSCALL.get(detect.arch().split()[0])
    if number is not None:
        syscall = _function("syscall")
        syscall.restype = ctypes.c_long
        return _checked(syscall(ctypes.c_long(number), ctypes.c_long(fd), ctypes.c_long(command),
                                ctypes.c_void_p(address)), "fcntl")
    function = _function("fcntl")
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_int, ctypes.c_int]  # fixed arguments only: the pointer goes as fcntl's variadic one
    return _checked(function(fd, command, ctypes.c_void_p(address)), "fcntl")


def c_flock(fd: int, operation: int) -> int:
    """flock(fd, operation) unchanged (Python's fcntl.flock emulates flock with fcntl where the C library lacks it)."""
    function = _function("flock")
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    return _checked(function(fd, operation), "flock")


@contextlib.contextmanager
def unreadable_memory():
    """The address of a page nothing may read or write (an anonymous mapping made PROT_NONE), unmapped afterwards."""
    prot_none = lookup("PROT_NONE", mmap)
    if prot_none is None:
        raise Unsupported(f"PROT_NONE is not known on {constants().NAME}")
    mprotect = _function("mprotect")
    mprotect.restype = ctypes.c_int
    mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    region = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        view = ctypes.c_char.from_buffer(region)
        address = ctypes.addressof(view)
        del view  # the mapping cannot be closed while a buffer of it is exported
        _checked(mprotect(address, mmap.PAGESIZE, prot_none), "mprotect")
        yield address
    finally:
        region.close()  # munmap: the protection does not matter


def _not_open(which: str) -> int:
    """A descriptor number that names no open file: -1, or the soft RLIMIT_NOFILE (one past the highest allowed)."""
    if which == "minus_one":
        return -1
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    number = 2**31 - 1 if soft == resource.RLIM_INFINITY or soft > 2**31 - 1 else soft
    assert fdlist.identity(number) is None, f"descriptor {number} is open"
    return number


# ---- messages built by hand ---------------------------------------------------------------------------------------

def _layouts():
    c = constants()
    missing = [name for name in ("IOVEC_FORMAT", "MSGHDR_FORMAT", "CMSGHDR_FORMAT", "CMSG_ALIGNMENT")
               if getattr(c, name) is None] + ([] if c.MSG_FUNCTIONS else ["MSG_FUNCTIONS"])
    if missing:
        raise Unsupported(f"{', '.join(missing)} not known on {c.NAME}: a message cannot be built by hand")
    return c


def header_size() -> int:
    """sizeof(struct cmsghdr)."""
    return struct.calcsize(_layouts().CMSGHDR_FORMAT)


def _align(n: int) -> int:
    alignment = _layouts().CMSG_ALIGNMENT
    return (n + alignment - 1) // alignment * alignment


def platform_cmsg_len(n: int) -> int:
    """CMSG_LEN(n) as the platform's headers define it: the aligned header, then n bytes."""
    return _align(header_size()) + n


def platform_cmsg_space(n: int) -> int:
    """CMSG_SPACE(n): the aligned header and the aligned data."""
    return _align(header_size()) + _align(n)


def cmsg(level: int, kind: int, data: bytes = b"", length: int | None = None) -> bytes:
    """One control message padded to CMSG_SPACE(len(data)); cmsg_len is CMSG_LEN(len(data)) unless `length` says."""
    c = _layouts()
    header = struct.pack(c.CMSGHDR_FORMAT, platform_cmsg_len(len(data)) if length is None else length, level, kind)
    return (header.ljust(_align(len(header)), b"\0") + data).ljust(platform_cmsg_space(len(data)), b"\0")


def rights_cmsg(*fds: int, length: int | None = None) -> bytes:
    return cmsg(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds), length)


def _msg_function(which: int):
    c = _layouts()
    function = _function(c.MSG_FUNCTIONS[which], tuple(c.MSG_LIBRARIES) or (None,))
    function.restype = ctypes.c_ssize_t
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    return function


def _msghdr(iov_address: int, control_address: int, controllen: int) -> ctypes.Array:
    c = _layouts()
    packed = struct.pack(c.MSGHDR_FORMAT, 0, 0, iov_address, 1, control_address, controllen, 0)
    return ctypes.create_string_buffer(packed, len(packed) + MSGHDR_SLACK)


def raw_sendmsg(sock: socket.socket, data: bytes, control, controllen: int | None = None) -> int:
    """sendmsg with one iovec of data and this control buffer: bytes, or an address (then controllen is needed)."""
    c = _layouts()
    payload = ctypes.create_string_buffer(data, max(len(data), 1))
    iov = ctypes.create_string_buffer(struct.pack(c.IOVEC_FORMAT, ctypes.addressof(payload), len(data)))
    if isinstance(control, bytes):
        buffer = ctypes.create_string_buffer(control, max(len(control), 1))
        address, length = ctypes.addressof(buffer), len(control) if controllen is None else controllen
    else:
        address, length = control, controllen
    header = _msghdr(ctypes.addressof(iov), address, length)
    return _checked(_msg_function(0)(sock.fileno(), header, 0), c.MSG_FUNCTIONS[0])


def raw_recvmsg(sock: socket.socket, bufsize: int, control_address: int, controllen: int) -> tuple[bytes, int]:
    """recvmsg into a bufsize buffer with this control buffer, never waiting: (data, msg_flags)."""
    c = _layouts()
    payload = ctypes.create_string_buffer(bufsize)
    iov = ctypes.create_string_buffer(struct.pack(c.IOVEC_FORMAT, ctypes.addressof(payload), bufsize))
    header = _msghdr(ctypes.addressof(iov), control_address, controllen)
    received = _checked(_msg_function(1)(sock.fileno(), header, getattr(socket, "MSG_DONTWAIT", 0)),
                        c.MSG_FUNCTIONS[1])
    fields = struct.unpack_from(c.MSGHDR_FORMAT, header.raw)
    return payload.raw[:received], fields[-1]


# ---- fcntl: LTP fcntl13, fcntl18 ----------------------------------------------------------------------------------

@pytest.fixture
def lockfile(workdir):
    fd = data_file(workdir, "locked", b"\0" * 64)
    yield fd
    os.close(fd)


def _command(family: locks.Family, which: str) -> int:
    return locks.commands(family)[COMMANDS.index(which)]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("family", FCNTL_FAMILIES, ids=str)
@pytest.mark.refs(f"{LTP}/fcntl/fcntl13.c: F_SETLK, F_SETLKW, F_GETLK with a bad address",
                  f"{LTP}/fcntl/fcntl18.c: F_GETLK with a bad address", LINUX_FCNTL)
def test_a_lock_command_with_an_unreadable_struct_flock_fails_efault(lockfile, family, command):
    require_lock_family(family)
    number = _command(family, command)
    with unreadable_memory() as address:
        refused = _refusal(c_fcntl, lockfile, number, address)
    assert refused == errno.EFAULT, f"{family} {command} command with an unreadable struct flock: {_said(refused)}"


@pytest.mark.parametrize("command", [999, -1], ids=["999", "minus_one"])
@pytest.mark.refs(f"{LTP}/fcntl/fcntl13.c: F_BADCMD 999", f"{LTP}/fcntl/fcntl18.c: cmd -1", POSIX_FCNTL)
def test_an_unknown_fcntl_command_fails_einval(lockfile, command):
    request = ctypes.create_string_buffer(locks.pack_flock("write"))  # a valid argument, as the anchors pass
    refused = _refusal(c_fcntl, lockfile, command, ctypes.addressof(request))
    assert refused == errno.EINVAL, f"fcntl command {command}: {_said(refused)}"


@pytest.mark.parametrize("command", ["query", "set"])
@pytest.mark.parametrize("family", FCNTL_FAMILIES, ids=str)
@pytest.mark.refs(f"{LTP}/fcntl/fcntl13.c: F_SETLK with l_whence -1", POSIX_FCNTL)
def test_a_lock_request_with_an_invalid_l_whence_fails_einval(lockfile, family, command):
    require_lock_family(family)
    request = ctypes.create_string_buffer(locks.pack_flock("write", whence=-1))
    refused = _refusal(c_fcntl, lockfile, _command(family, command), ctypes.addressof(request))
    assert refused == errno.EINVAL, f"{family} {command} command with l_whence -1: {_said(refused)}"


@pytest.mark.parametrize("fd", ["minus_one", "above_the_limit"])
@pytest.mark.parametrize("family", FCNTL_FAMILIES, ids=str)
@pytest.mark.refs(f"{LTP}/fcntl/fcntl13.c: F_GETLK on fd -1", POSIX_FCNTL)
def test_a_lock_query_on_a_descriptor_that_is_not_open_fails_ebadf(family, fd):
    require_lock_family(family)
    request = ctypes.create_string_buffer(locks.pack_flock("write"))
    refused = _refusal(c_fcntl, _not_open(fd), _command(family, "query"), ctypes.addressof(request))
    assert refused == errno.EBADF, f"{family} query on fd {fd}: {_said(refused)}"


# ---- flock: LTP flock02 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fd", ["minus_one", "above_the_limit"])
@pytest.mark.refs(f"{LTP}/flock/flock02.c: EBADF", LINUX_FLOCK, "FreeBSD flock(2): EBADF")
def test_flock_on_a_descriptor_that_is_not_open_fails_ebadf(fd):
    require_lock_family(FLOCK)
    refused = _refusal(c_flock, _not_open(fd), fcntl.LOCK_SH)
    assert refused == errno.EBADF, f"flock on fd {fd}: {_said(refused, 'granted')}"


@pytest.mark.parametrize("operation", ["nonblocking_alone", "shared_and_exclusive"])
@pytest.mark.refs(f"{LTP}/flock/flock02.c: EINVAL for LOCK_NB alone and for LOCK_SH|LOCK_EX", LINUX_FLOCK)
def test_flock_with_an_invalid_operation_fails_einval(lockfile, operation, observe):
    require_lock_family(FLOCK)
    code = fcntl.LOCK_NB if operation == "nonblocking_alone" else fcntl.LOCK_SH | fcntl.LOCK_EX
    refused = _refusal(c_flock, lockfile, code)
    observe("invalid_flock", _said(refused, "granted"))
    assert refused == errno.EINVAL, f"flock operation {code:#x}: {_said(refused, 'granted')}"


# ---- sendmsg: LTP sendmsg01 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmsg_len", ["zero", "whole_message"])
@pytest.mark.refs(f"{LTP}/sendmsg/sendmsg01.c: invalid cmsg length (msg_controllen 0, cmsg_len 0) succeeds",
                  "POSIX.1-2024 XBD <sys/socket.h>: msg_controllen is the ancillary data buffer length")
def test_a_control_buffer_of_length_zero_sends_plain_data(pair, cmsg_len, observe):
    a, b = pair
    with InFlightMarker() as marker:
        # The buffer holds a rights message naming the marker; msg_controllen 0 says none of it is control data.
        control = rights_cmsg(marker.w, length=0 if cmsg_len == "zero" else None)
        refused = _refusal(raw_sendmsg, a, b"x", control, 0)
        observe("zero_controllen", _said(refused, "sent"))
        if refused is not None:
            assert nothing_queued(b), "the refused message was queued"
            marker.drop_local()
            assert marker.released(), "a refused message kept a reference to the descriptor in its buffer"
            raise AssertionError(f"sendmsg with a control pointer and msg_controllen 0: {_said(refused)}, not sent")
        with rights.recv_fds(b, 1) as got:
            assert got.data == b"x", f"the data arrived as {got.data!r}"
            assert not got.fds and not got.other, f"control data arrived: {len(got.fds)} fds, {got.other}"
            assert not got.ctrunc
        marker.drop_local()
        assert marker.released(), "the descriptor beyond msg_controllen is still referenced"


@pytest.mark.refs(f"{LTP}/sendmsg/sendmsg01.c: invalid cmsg pointer", LINUX_SENDMSG,
                  "FreeBSD sendmsg(2): EFAULT an invalid user space address was specified for an argument")
def test_an_unreadable_control_buffer_fails_efault(pair):
    a, b = pair
    with unreadable_memory() as address:
        refused = _refusal(raw_sendmsg, a, b"x", address, platform_cmsg_len(INT))
    assert refused == errno.EFAULT, f"sendmsg with an unreadable control buffer: {_said(refused, 'sent')}"
    assert nothing_queued(b), "a sendmsg that failed queued a message"


# ---- a garbage header after a valid one: XNU tests/uipc_uaf.c ------------------------------------------------------

# cmsg_len of the header that ends the buffer (it is followed by nothing: the buffer ends with the header).
GARBAGE = {
    "zero": lambda: 0,
    "shorter_than_a_header": lambda: header_size() - 1,
    "longer_than_what_remains": lambda: 0x41414141,  # as uipc_uaf.c fills its overwrite buffer
}


@pytest.mark.parametrize("garbage", list(GARBAGE))
@pytest.mark.refs("XNU tests/uipc_uaf.c: sendmsg of an overwritten control buffer fails EINVAL", LINUX_SCM,
                  "FreeBSD sys/kern/uipc_usrreq.c unp_internalize: EINVAL for a cmsg_len out of bounds")
def test_a_control_buffer_ending_in_a_garbage_header_passes_nothing(pair, garbage, observe):
    a, b = pair
    with InFlightMarker() as marker:
        control = rights_cmsg(marker.w) + cmsg(socket.SOL_SOCKET, socket.SCM_RIGHTS, length=GARBAGE[garbage]())
        refused = _refusal(raw_sendmsg, a, b"x", control)
        observe("garbage_header", _said(refused, "sent"))
        if refused is None:
            with rights.recv_fds(b, 4) as got:
                delivered = len(got.fds)
            raise AssertionError(f"sendmsg accepted a control buffer ending in a garbage header ({delivered} "
                                 "descriptors delivered)")
        assert refused == errno.EINVAL, f"a garbage cmsghdr after a valid one: {errno_name(refused)}, not EINVAL"
        assert nothing_queued(b), "the refused message was queued"
        marker.drop_local()
        assert marker.released(), "the descriptor of the valid first cmsg is still referenced after the refusal"


# ---- FreeBSD unix_passfd_test.c: empty_rights_message (a) ---------------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: empty_rights_message (cmsg_len sizeof(struct cmsghdr), not CMSG_LEN(0))",
                  "FreeBSD sys/kern/uipc_usrreq.c unp_internalize", "Linux net/core/scm.c scm_fp_copy")
def test_a_rights_cmsg_of_exactly_one_header(pair, observe):
    a, b = pair
    # Where CMSG_LEN(0) is larger than the header (a 12-byte header aligned to 8: 16), a cmsg_len of one header ends in
    # the padding before the data: the anchor expects EINVAL there, and an empty rights message where they are equal.
    header, empty = header_size(), platform_cmsg_len(0)
    control = cmsg(socket.SOL_SOCKET, socket.SCM_RIGHTS, length=header)
    refused = _refusal(raw_sendmsg, a, b"x", control, platform_cmsg_space(0))
    observe("one_header_rights", _said(refused))
    if header != empty:
        assert refused == errno.EINVAL, f"cmsg_len {header} (CMSG_LEN(0) is {empty}): {_said(refused)}"
        assert nothing_queued(b), "the refused message was queued"
        return
    assert refused is None, f"cmsg_len {header}, which is CMSG_LEN(0): refused with {errno_name(refused)}"
    with rights.recv_fds(b, 1) as got:
        assert got.data == b"x" and not got.fds, f"received {got.data!r} with {len(got.fds)} descriptors"


# ---- FreeBSD unix_passfd_test.c: copyout_rights_error -------------------------------------------------------------

@pytest.mark.refs(f"{PASSFD}: copyout_rights_error (EFAULT, no descriptor leaked)",
                  "POSIX.1-2024 XSH recvmsg(): MSG_CTRUNC", "Linux net/core/scm.c scm_detach_fds")
def test_a_receive_into_an_unwritable_control_buffer_leaks_no_descriptor(pair, observe):
    a, b = pair
    with InFlightMarker() as marker:
        mark = fdlist.identity(marker.w)
        rights.send_fds(a, [marker.w], data=b"0123456789abcdef")
        marker.drop_local()
        before = set(fdlist.open_fds())
        with unreadable_memory() as address:
            try:
                _, flags = raw_recvmsg(b, 16, address, platform_cmsg_space(INT))
                result = "data_with_ctrunc" if flags & socket.MSG_CTRUNC else "data"
            except OSError as e:
                result = f"refused:{errno_name(e)}"
        leaked = [fd for fd, ident in fdlist.open_fds().items() if fd not in before and ident == mark]
        for fd in leaked:
            os.close(fd)
        observe("unwritable_control.result", result)
        consumed = nothing_queued(b)
        observe("unwritable_control.consumed", consumed)
        if not consumed:
            rights.recv_fds(b, 1).close()  # what is still queued, received properly
        assert not leaked, f"{len(leaked)} descriptors installed but not reported ({result})"
        assert marker.released(), f"the descriptor in flight is still referenced after the faulted receive ({result})"


# ---- CPython Lib/test/test_socket.py: CmsgMacroTests --------------------------------------------------------------

def _socklen_t_limit() -> int:
    """CPython's SOCKLEN_T_LIMIT (Modules/socketmodule.c): the smaller of 2**31 - 1 and INT_MAX."""
    return min(0x7FFFFFFF, 2 ** (8 * INT - 1) - 1)


def _macro(name: str):
    function = getattr(socket, name, None)
    if function is None:
        raise Unsupported(f"socket.{name} is not available")
    return function


def _too_big(name: str) -> int:
    """The first size CPython refuses: what would take the result past SOCKLEN_T_LIMIT (CmsgMacroTests' toobig)."""
    reference = socket.CMSG_LEN(0) if name == "CMSG_LEN" else socket.CMSG_SPACE(1)
    return _socklen_t_limit() - reference + 1


@pytest.mark.parametrize("name", ["CMSG_LEN", "CMSG_SPACE"])
@pytest.mark.refs(f"{CPYTHON}.testCMSG_LEN", f"{CPYTHON}.testCMSG_SPACE", RFC3542)
def test_cmsg_macros_follow_the_platforms_header_and_alignment(name):
    macro = _macro(name)
    expected = platform_cmsg_len if name == "CMSG_LEN" else platform_cmsg_space
    too_big = _too_big(name)
    sizes = list(range(257)) + list(range(too_big - 257, too_big))
    answers = {n: macro(n) for n in sizes}
    wrong = {n: (answer, expected(n)) for n, answer in answers.items() if answer != expected(n)}
    assert not wrong, (f"socket.{name}(n) != the platform's header {header_size()} aligned to "
                       f"{constants().CMSG_ALIGNMENT} (n: (Python, platform)): {dict(list(wrong.items())[:5])}")
    assert answers[0] > 2 * INT, "struct cmsghdr has at least two ints and a length"
    assert max(answers.values()) <= _socklen_t_limit()


@pytest.mark.parametrize("name", ["CMSG_LEN", "CMSG_SPACE"])
@pytest.mark.refs(f"{CPYTHON}.testCMSG_LEN", f"{CPYTHON}.testCMSG_SPACE",
                  "CPython Modules/socketmodule.c SOCKLEN_T_LIMIT")
def test_cmsg_macros_refuse_sizes_out_of_range(name):
    macro = _macro(name)
    too_big = _too_big(name)
    macro(too_big - 1)  # the largest size still answered
    for size in (-1, too_big, sys.maxsize):
        with pytest.raises(OverflowError):
            macro(size)
