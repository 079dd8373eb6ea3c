"""A minimal headless-Chromium driver for tests: the Chrome DevTools Protocol over ``--remote-debugging-pipe``.

No dependency beyond the standard library.  Chromium reads NUL-terminated JSON messages on its fd 3 and writes
them on its fd 4; a one-line ``/bin/sh`` trampoline moves the two pipe ends from stdin/stdout onto fds 3 and 4
(``subprocess`` cannot renumber descriptors, and dash only handles single-digit ones in redirections).

Every read and write has a deadline; a hang raises :class:`BrowserError` carrying the tail of Chromium's stderr.
Run as root, Chromium runs as a uid of its own (see :func:`_own_uid`), and a page given by path is copied where that
uid can read it.

Events that arrive while a reply is awaited are queued.  Leaving the :class:`Browser` context (also through an
exception) closes the browser over CDP, kills what is left of its process group, reaps it, closes every pipe and
removes the temporary profile.

Usage::

    with Browser(require_chromium()) as browser:
        page = browser.open(tmp_path / "page.html")
        page.click("label[for=f-fail]")
        assert not page.visible("tr.ok")
        page.screenshot(tmp_path / "page.png")
"""

from __future__ import annotations

import base64
import collections
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

DEFAULT_TIMEOUT = 30.0
# Whether an element is rendered; older Chromium lacks checkVisibility, and there a box is the test.
_RENDERED = "(e => e.checkVisibility ? e.checkVisibility() : e.getClientRects().length > 0)"
_KILL_TIMEOUT = 5.0  # for killed processes to disappear
REQUIRE_ENV = "CONFORMANCE_REQUIRE_BROWSER"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")

# Chromium writes its pipe end as fd 4 and reads fd 3; stdin becomes /dev/null, stdout joins stderr.
_TRAMPOLINE = 'exec 3<&0 4>&1 0</dev/null 1>&2; exec "$@"'

_FLAGS = (
    "--headless",
    "--remote-debugging-pipe",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--use-mock-keychain",
    "--hide-scrollbars",
    "--mute-audio",
    "--force-color-profile=srgb",
)


class BrowserError(RuntimeError):
    """Chromium failed, hung, died, or answered a command with an error."""


class JavaScriptError(BrowserError):
    """An expression given to :meth:`Page.evaluate` threw; ``text`` is the JavaScript exception's description."""

    def __init__(self, text: str, expression: str) -> None:
        super().__init__(f"JavaScript exception: {text}\n  in: {expression[:300]}")
        self.text = text
        self.expression = expression


def find_chromium() -> Optional[str]:
    """``$CHROMIUM`` if set (resolved on PATH; None if it is not an executable), else the first known name on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium executable, or skip the calling test; fail instead when ``$CONFORMANCE_REQUIRE_BROWSER=1``."""
    import pytest

    found = find_chromium()
    if found:
        return found
    if os.environ.get("CHROMIUM"):
        reason = f"$CHROMIUM={os.environ['CHROMIUM']!r} is not an executable"
    else:
        reason = "no Chromium found on PATH (tried " + ", ".join(CANDIDATES) + "; or set $CHROMIUM)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, but {REQUIRE_ENV}=1", pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")  # pragma: no cover - pytest.skip raises


def _to_url(target: str | os.PathLike[str]) -> str:
    if not isinstance(target, os.PathLike) and re.match(r"^(about|data|file|https?):", target):
        return target
    path = Path(target).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no such page: {path}")
    return path.as_uri()


def _own_uid() -> Optional[int]:
    """The uid Chromium runs as: None (the caller's) unless the caller is root, then a fresh uid. Chromium's zygote and
    renderers pass descriptors without CAP_SYS_ADMIN, so Linux refuses them (ETOOMANYREFS) once the user has more
    sockets in flight than RLIMIT_NOFILE; as root, that is the machine's whole history of root's in-flight sockets,
    including any that a kernel's collector leaked (seen: Chromium hung at its first page). A uid no process ever had
    starts from nothing, and an unprivileged browser is how Chromium is meant to run anyway."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    from conformance.harness.privileges import fresh_uid

    return fresh_uid()


def _searchable_by_all(path: str) -> bool:
    """Whether any uid can reach entries of ``path``: every directory from / down to it has search permission for
    others."""
    current = os.path.abspath(path)
    while True:
        try:
            if not os.stat(current).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def _scan_processes(pgid: int, marker: str = "") -> dict[int, bool]:
    """{pid: is_zombie} of the processes in group ``pgid`` and, if ``marker`` is given, of the live ones whose command
    line contains it; read from /proc, so {} where there is none."""
    found: dict[int, bool] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    needle = marker.encode()
    me = os.getpid()
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # pid (comm) state ppid pgrp session ...; comm may contain spaces and parentheses.
            fields = stat[stat.rfind(b")") + 2 :].split()
            zombie = fields[0] == b"Z"
            if int(fields[2]) == pgid:
                found[int(entry)] = zombie
            elif needle and not zombie:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        found[int(entry)] = False
        except (OSError, ValueError, IndexError):
            continue
    return found


def chromium_processes(pgid: int, marker: str = "") -> list[int]:
    """Live (non-zombie) processes in process group ``pgid`` or, if ``marker`` is given, whose command line contains
    it: Chromium's crashpad handlers leave the group (setsid) but name the profile's directory.  Linux (/proc) only."""
    return sorted(pid for pid, zombie in _scan_processes(pgid, marker).items() if not zombie)


def _has_proc() -> bool:
    return os.path.isdir("/proc/self")


class Browser:
    """A headless Chromium driven over a CDP pipe; use as a context manager."""

    def __init__(
        self,
        executable: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        extra_args: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found (set $CHROMIUM)")
        self.timeout = timeout
        self.extra_args = list(extra_args)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.tmpdir: Optional[str] = None
        self._short_tmp: Optional[str] = None
        self._rfd = -1  # we read Chromium's fd 4 here
        self._wfd = -1  # we write Chromium's fd 3 here
        self._buf = bytearray()
        self._scanned = 0
        self._eof = False
        self._next_id = 0
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=10000)
        self._closed = False
        self._known: set[int] = set()  # its processes seen so far, crashpad handlers outside the group included
        self.version: dict[str, Any] = {}
        self.uid = _own_uid()  # None: Chromium runs as the caller
        self._copies = 0  # pages copied for Chromium's uid so far

    # -- life cycle ------------------------------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> Optional[int]:
        """Chromium's pid, which is also its process group and session id."""
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        if self.proc is not None or self._closed:
            raise BrowserError("a Browser can be started once")
        try:
            self._spawn()
            self.version = self.send("Browser.getVersion")
            self._known.update(self._scan())
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> None:
        # Short names: Chromium's singleton socket goes to $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket, and
        # a socket path has at most 104 bytes on BSD and macOS (108 on Linux).
        parent = None
        if self.uid is not None and not _searchable_by_all(tempfile.gettempdir()):
            parent = "/tmp"  # Chromium's own uid must reach its profile
        self.tmpdir = tempfile.mkdtemp(prefix="cdp-", dir=parent)
        profile, home, tmp = (os.path.join(self.tmpdir, name) for name in ("profile", "home", "t"))
        if len(tmp) > 55:
            tmp = self._short_tmp = tempfile.mkdtemp(prefix="cdp-", dir="/tmp")
        for path in (profile, home, tmp):
            os.makedirs(path, exist_ok=True)
        if self.uid is not None:
            for path in (self.tmpdir, self._short_tmp, profile, home, tmp):
                if path:
                    os.chown(path, self.uid, self.uid)
        # Chromium writes ~/.pki, crash reports under ~/.config and shared memory files into $TMPDIR (with
        # --disable-dev-shm-usage, left there when it is killed): keep all of it in the temporary directory.
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), TMPDIR=tmp)
        env.pop("XDG_CACHE_HOME", None)
        args = [*_FLAGS, f"--user-data-dir={profile}", *self.extra_args]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Chromium refuses its sandbox to root; as a uid with no account, its set-up may fail as well
            args.append("--no-sandbox")
        as_uid = {} if self.uid is None else {"user": self.uid, "group": self.uid, "extra_groups": []}
        args.append("about:blank")
        child_in_r, child_out_w = -1, -1
        err = None
        try:
            child_in_r, self._wfd = os.pipe()
            self._rfd, child_out_w = os.pipe()
            err = open(os.path.join(self.tmpdir, "stderr.log"), "wb")
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", _TRAMPOLINE, "sh", self.executable, *args],
                stdin=child_in_r,
                stdout=child_out_w,
                stderr=err,
                env=env,
                close_fds=True,
                start_new_session=True,
                **as_uid,
            )
        finally:
            for fd in (child_in_r, child_out_w):
                if fd >= 0:
                    os.close(fd)
            if err is not None:
                err.close()
        os.set_blocking(self._rfd, False)
        os.set_blocking(self._wfd, False)

    def close(self) -> None:
        """Browser.close over CDP, then kill and reap the process group, close the pipes, remove the profile."""
        if self._closed:
            return
        self._closed = True
        problems = []
        graceful = False
        try:
            if self.proc is not None and not self._leader_exited(self.proc) and self._wfd >= 0 and not self._eof:
                try:
                    self.send("Browser.close", timeout=min(5.0, self.timeout))
                    graceful = True
                except BrowserError:
                    graceful = self._eof  # it may exit before replying; if it hangs, it is killed at once
        finally:
            try:
                problems += self._reap(grace=5.0 if graceful else 0.0)
            finally:
                for name in ("_rfd", "_wfd"):
                    fd = getattr(self, name)
                    if fd >= 0:
                        setattr(self, name, -1)
                        os.close(fd)
                for path in (self.tmpdir, self._short_tmp):
                    if path:
                        shutil.rmtree(path, ignore_errors=True)
                        if os.path.exists(path):
                            problems.append(f"could not remove {path}")
        if problems:
            raise BrowserError("; ".join(problems))

    def _reap(self, grace: float) -> list[str]:
        """Kill and reap everything of this browser, after ``grace`` seconds for it to exit by itself."""
        proc = self.proc
        if proc is None:
            return []
        pgid = proc.pid
        # The leader is not reaped before the SIGKILL below, so its (zombie) entry keeps the process group id from
        # being reused meanwhile.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self._leader_exited(proc):
            time.sleep(0.01)
        scan = self._scan()
        self._known.update(scan)
        for pid, zombie in scan.items():
            if pid != pgid and not zombie:
                self._kill(pid)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        problems = []
        try:
            proc.wait(timeout=_KILL_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"Chromium (pid {pgid}) did not die after SIGKILL")
        # Orphans are adopted by init, or by this process where it is a child subreaper (the conformance plugin makes
        # it one): then they are reaped here, or they would stay zombies.
        deadline = time.monotonic() + _KILL_TIMEOUT
        while True:
            scan = self._scan()
            live = [pid for pid, zombie in scan.items() if not zombie]
            for pid in live:
                self._kill(pid)
            self._known.update(scan)
            for pid in list(self._known):
                if pid == pgid:
                    self._known.discard(pid)
                    continue
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        self._known.discard(pid)  # an adopted orphan, reaped
                except ChildProcessError:
                    if pid not in live:
                        self._known.discard(pid)  # gone, or a zombie for init to reap
            if not _has_proc():
                try:
                    os.killpg(pgid, 0)
                    live = [pgid]
                except (ProcessLookupError, PermissionError):
                    live = []
            if not live and not self._known:
                break
            if time.monotonic() > deadline:
                problems.append(f"Chromium processes survived SIGKILL: {sorted(set(live) | self._known)}")
                break
            time.sleep(0.01)
        return problems

    def _scan(self) -> dict[int, bool]:
        return _scan_processes(self.proc.pid, self.tmpdir or "") if self.proc else {}

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def leftover_processes(self) -> list[int]:
        """Live processes of this browser (its process group, or naming its temporary directory); Linux only."""
        return sorted(pid for pid, zombie in self._scan().items() if not zombie)

    def _exit_status(self) -> str:
        """How Chromium ended, or "" while it runs; it is not reaped here (see _reap)."""
        proc = self.proc
        if proc is None:
            return ""
        code = proc.returncode
        if code is None and hasattr(os, "waitid") and hasattr(os, "WNOWAIT"):
            try:
                info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
            if info is not None:
                code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        if code is None:
            return ""
        return f"exited with status {code}" if code >= 0 else f"was killed by signal {-code}"

    @staticmethod
    def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
        if proc.returncode is not None:
            return True
        waitid = getattr(os, "waitid", None)
        if waitid is None or not hasattr(os, "WNOWAIT"):
            return proc.poll() is not None
        try:
            return waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    # -- protocol --------------------------------------------------------------------------------------------------

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines of Chromium's stderr, without its D-Bus complaints (there is no bus in CI containers)."""
        if not self.tmpdir:
            return ""
        try:
            with open(os.path.join(self.tmpdir, "stderr.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if ":ERROR:dbus/" not in line]
        return "\n".join(kept[-lines:])

    def _fail(self, message: str) -> BrowserError:
        if self._eof and self.proc is not None:
            # The pipe reads EOF while the dying process still closes its descriptors: let it finish, for the status.
            deadline = time.monotonic() + 2.0
            while not self._leader_exited(self.proc) and time.monotonic() < deadline:
                time.sleep(0.01)
        status = self._exit_status()
        status = f" (Chromium {status})" if status else ""
        tail = self.stderr_tail()
        return BrowserError(f"{message}{status}" + (f"\n--- Chromium stderr (last lines) ---\n{tail}" if tail else ""))

    def _wait_fd(self, fd: int, writing: bool, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(f"timed out waiting for {what}")
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLOUT if writing else select.POLLIN)
            poller.poll(remaining * 1000)
        elif writing:
            select.select([], [fd], [], remaining)
        else:
            select.select([fd], [], [], remaining)

    def _write(self, data: bytes, deadline: float, what: str) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._wfd, view)
            except BlockingIOError:
                self._wait_fd(self._wfd, True, deadline, f"Chromium to accept {what}")
                continue
            except (BrokenPipeError, OSError) as e:
                raise self._fail(f"cannot send {what}: {e}") from None
            view = view[n:]

    def _read_message(self, deadline: float, what: str) -> dict[str, Any]:
        while True:
            end = self._buf.find(b"\0", self._scanned)
            if end >= 0:
                raw = bytes(self._buf[:end])
                del self._buf[: end + 1]
                self._scanned = 0
                return json.loads(raw)
            self._scanned = len(self._buf)
            if self._eof:
                raise self._fail(f"Chromium closed its pipe while waiting for {what}")
            try:
                data = os.read(self._rfd, 1 << 20)
            except BlockingIOError:
                self._wait_fd(self._rfd, False, deadline, what)
                continue
            if not data:
                self._eof = True
            self._buf += data

    def send(
        self,
        method: str,
        params: Optional[dict[str, Any]] = None,
        *,
        session_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """Send one command and return its result; events read meanwhile are queued for :meth:`wait_event`."""
        if self._rfd < 0 or self._wfd < 0:
            raise BrowserError("the browser is not running")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._next_id += 1
        msg_id = self._next_id
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        what = f"the reply to {method}"
        self._write(json.dumps(message).encode() + b"\0", deadline, method)
        while True:
            reply = self._read_message(deadline, what)
            if "id" not in reply:
                self._events.append(reply)
            elif reply["id"] == msg_id:
                if "error" in reply:
                    err = reply["error"]
                    raise BrowserError(f"{method} failed: {err.get('message')} ({err.get('data', err.get('code'))})")
                return reply.get("result", {})
            # else: the late reply of a command that timed out earlier; drop it.

    def wait_event(
        self,
        method: str,
        predicate: Optional[Callable[[dict[str, Any]], bool]] = None,
        *,
        session_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> dict[str, Any]:
        """The params of the first (queued or next) event ``method`` of ``session_id`` that satisfies ``predicate``."""

        def matches(event: dict[str, Any]) -> bool:
            return (
                event.get("method") == method
                and event.get("sessionId") == session_id
                and (predicate is None or predicate(event.get("params", {})))
            )

        for event in list(self._events):
            if matches(event):
                self._events.remove(event)
                return event.get("params", {})
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            event = self._read_message(deadline, f"event {method}")
            if "id" in event:
                continue
            if matches(event):
                return event.get("params", {})
            self._events.append(event)

    def _drop_events(self, session_id: str) -> None:
        kept = [e for e in self._events if e.get("sessionId") != session_id]
        self._events.clear()
        self._events.extend(kept)

    # -- pages -----------------------------------------------------------------------------------------------------

    def url_for(self, target: str | os.PathLike[str]) -> str:
        """The URL Chromium loads for ``target`` (a path or URL): a page given by path is copied into the profile's
        directory first when Chromium runs as a uid of its own, since that uid may not reach the original (pytest's
        temporary directories are private to their user)."""
        url = _to_url(target)
        if self.uid is None or not url.startswith("file:") or self.tmpdir is None:
            return url
        source = Path(target) if isinstance(target, os.PathLike) or not target.startswith("file:") else None
        if source is None:
            return url  # a file: URL was given: the caller chose it
        self._copies += 1
        folder = os.path.join(self.tmpdir, "pages", str(self._copies))
        os.makedirs(folder, mode=0o755)
        copy = shutil.copyfile(source.resolve(), os.path.join(folder, source.name))
        os.chmod(copy, 0o644)
        for path in (os.path.dirname(folder), folder):
            os.chmod(path, 0o755)
        return Path(copy).as_uri()

    def open(self, target: str | os.PathLike[str], width: int = 1280, height: int = 900) -> Page:
        """A new tab of ``width`` x ``height`` CSS pixels showing ``target`` (a path or URL), after its load event."""
        url = self.url_for(target)
        target_id = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        page = Page(self, target_id, session_id)
        page.send("Page.enable")
        page.send("Page.setLifecycleEventsEnabled", {"enabled": True})
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.navigate(url)
        return page


class Page:
    """One tab, attached through a flattened CDP session."""

    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id

    def send(self, method: str, params: Optional[dict[str, Any]] = None, *, timeout: Optional[float] = None) -> dict:
        return self.browser.send(method, params, session_id=self.session_id, timeout=timeout)

    def navigate(self, target: str | os.PathLike[str], *, timeout: Optional[float] = None) -> None:
        """Navigate and wait for the load event of the new document."""
        url = self.browser.url_for(target)
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        loader_id, frame_id = result.get("loaderId"), result.get("frameId")
        if loader_id:  # absent for a same-document navigation
            self.browser.wait_event(
                "Page.lifecycleEvent",
                lambda p: p.get("name") == "load" and p.get("loaderId") == loader_id and p.get("frameId") == frame_id,
                session_id=self.session_id,
                timeout=timeout,
            )

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target_id})
        self.browser._drop_events(self.session_id)

    @staticmethod
    def _raise_for(result: dict[str, Any], expression: str) -> None:
        details = result.get("exceptionDetails")
        if details:
            exception = details.get("exception") or {}
            text = exception.get("description") or str(exception.get("value", "")) or details.get("text", "")
            raise JavaScriptError(text, expression)

    def evaluate(self, expression: str, *, timeout: Optional[float] = None) -> Any:
        """The JSON value of ``expression`` (promises awaited); :class:`JavaScriptError` if it throws."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        self._raise_for(result, expression)
        return result.get("result", {}).get("value")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the first element matching ``selector``, scrolled into view.

        Raises :class:`BrowserError` if nothing matches, the element has no box (display:none), or another element
        covers its centre (the click would land there instead).
        """
        self.send("Page.bringToFront")  # a background tab produces no frames, and input to it lags
        expression = f"document.querySelector({json.dumps(selector)})"
        found = self.send("Runtime.evaluate", {"expression": expression})
        self._raise_for(found, expression)
        obj = found.get("result", {})
        if "objectId" not in obj:
            raise BrowserError(f"click: no element matches {selector!r}")
        object_id = obj["objectId"]
        try:
            try:
                self.send("DOM.scrollIntoViewIfNeeded", {"objectId": object_id})
                quads = self.send("DOM.getContentQuads", {"objectId": object_id}).get("quads", [])
            except BrowserError as e:
                raise BrowserError(f"click: {selector!r} has no box (not rendered?): {e}") from None
            # Click where the element is at rest (not moved by a scroll or transition), and only if it is on top there.
            deadline = time.monotonic() + 2.0
            previous = None
            while True:
                boxes = [q for q in quads if _quad_area(q) > 0.5]
                if not boxes:
                    raise BrowserError(f"click: {selector!r} has no box (not rendered?)")
                x, y = sum(boxes[0][0::2]) / 4, sum(boxes[0][1::2]) / 4
                if (x, y) == previous:
                    covered = self._covered(object_id, x, y)
                    if covered:
                        raise BrowserError(f"click: {selector!r} is covered at ({x:.0f}, {y:.0f}) by {covered}")
                    break
                if previous is not None and time.monotonic() > deadline:
                    raise BrowserError(f"click: {selector!r} keeps moving")
                previous = (x, y)
                # Two frames later (a timer bounds it in a background tab, where frames are not produced).
                self.evaluate(
                    "new Promise(r => { requestAnimationFrame(() => requestAnimationFrame(r)); setTimeout(r, 100); })"
                )
                quads = self.send("DOM.getContentQuads", {"objectId": object_id}).get("quads", [])
        finally:
            try:
                self.send("Runtime.releaseObject", {"objectId": object_id})
            except BrowserError:
                pass
        common = {"x": x, "y": y, "button": "left", "clickCount": 1}
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "button": "none"})
        self.send("Input.dispatchMouseEvent", {"type": "mousePressed", "buttons": 1, **common})
        self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "buttons": 0, **common})

    def _covered(self, object_id: str, x: float, y: float) -> str:
        """Empty if a click at (x, y) lands on the element (or inside it), else a description of what it lands on."""
        hit = self.send(
            "Runtime.callFunctionOn",
            {
                "objectId": object_id,
                "functionDeclaration": (
                    "function(x, y) { const h = document.elementFromPoint(x, y);"
                    " if (h === this || this.contains(h)) return ''; if (!h) return 'nothing';"
                    " const c = typeof h.className === 'string' ? h.className.trim() : '';"
                    " return h.tagName.toLowerCase() + (h.id ? '#' + h.id : '')"
                    " + (c ? '.' + c.split(/\\s+/).join('.') : ''); }"
                ),
                "arguments": [{"value": x}, {"value": y}],
                "returnByValue": True,
            },
        )
        self._raise_for(hit, "elementFromPoint")
        return hit.get("result", {}).get("value") or ""

    def count(self, selector: str) -> int:
        """How many elements match ``selector``."""
        return self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")

    def count_visible(self, selector: str) -> int:
        """How many elements matching ``selector`` are rendered: neither they nor an ancestor are display:none,
        nor inside a closed ``<details>`` (content-visibility), as ``checkVisibility`` judges where it exists."""
        return self.evaluate(
            f"Array.from(document.querySelectorAll({json.dumps(selector)})).filter({_RENDERED}).length"
        )

    def visible(self, selector: str) -> bool:
        """Whether the first element matching ``selector`` is rendered; :class:`BrowserError` if none matches."""
        state = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            f" return e === null ? null : ({_RENDERED})(e); }})()"
        )
        if state is None:
            raise BrowserError(f"visible: no element matches {selector!r}")
        return bool(state)

    def screenshot(self, path: str | os.PathLike[str], full_page: bool = True) -> Path:
        """Write a PNG of the viewport, or of the whole document with ``full_page``; returns the path."""
        self.send("Page.bringToFront")
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": max(1, math.ceil(size["width"])),
                "height": max(1, math.ceil(size["height"])),
                "scale": 1,
            }
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        out = Path(path)
        out.write_bytes(data)
        return out


def _quad_area(quad: list[float]) -> float:
    xs, ys = quad[0::2], quad[1::2]
    return abs(sum(xs[i] * ys[(i + 1) % 4] - xs[(i + 1) % 4] * ys[i] for i in range(4))) / 2


if __name__ == "__main__":  # manual check: python tests/browser.py page.html [shot.png]
    with Browser() as b:
        p = b.open(sys.argv[1])
        print(json.dumps(b.version), p.evaluate("document.title"))
        if len(sys.argv) > 2:
            p.screenshot(sys.argv[2])
