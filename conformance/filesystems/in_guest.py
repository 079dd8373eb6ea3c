"""The filesystems that run in a guest (plans.IN_GUEST: NFS served by the kernel's nfsd over loopback): one virtme-ng
guest of --kernel runs `conformance filesystems` again for them, with IN_GUEST_VARIABLE set, on this machine's root
filesystem as `conformance kernels` boots it (kernels/guest.py). Its NFS server, exports and /var/lib/nfs are the
guest's and end with it; its runs, reports and logs come back through a shared directory under --out.

A guest that shows no sign of running its command is booted once more (without KVM, when KVM was only tried), as
`conformance kernels` does; a guest that never runs it is a problem of each of its filesystems.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..kernels import console, guest
from ..kernels.options import MAX_WAIT
from ..kernels.runner import KVM_START, move_results, say
from ..kernels.sources import Kernel, KernelSourceError, resolve
from ..kernels.tools import MissingTools, Tools, find_tools, kvm_usable
from .options import IN_GUEST_VARIABLE, BadInput, Options
from .runs import RUNS_FILE, Run, read_runs

CPUS = 2
MEMORY = "2G"
EMULATED_START = 300.0  # seconds for a guest without KVM to run its command (about 60 here)
BOOTS = 2
SHARED = ".guest"  # under --out: what the guest writes, until it is moved beside the host's runs


@dataclass(frozen=True)
class Booting:
    tools: Tools
    kernel: Kernel


def prepare(options: Options) -> Booting:
    """virtme-ng and the kernel, found (a Debian kernel fetched into the cache) before anything is mounted."""
    try:
        tools = find_tools()
        kernel = resolve(options.kernel, options.cache, lambda text: say(f"kernel {options.kernel}: {text}"))
    except (MissingTools, KernelSourceError) as e:
        raise BadInput(str(e)) from None
    if guest.unsafe_path(kernel.image):
        raise BadInput(f"{kernel.image}: virtme-ng cannot boot an image whose path has blanks, quotes, '=' or ','")
    return Booting(tools, kernel)


def guest_argv(options: Options, out: Path) -> list[str]:
    """The command the guest runs: this one again, for the guest's filesystems, its results in `out`."""
    argv = [sys.executable, "-m", "conformance", "filesystems", "--fs", ",".join(options.guest_runs()),
            "--out", str(out), "-n", options.workers, "--timeout", f"{options.timeout:g}"]
    if options.user is not None:
        argv += ["--user", str(options.user[0])]  # the guest sees this machine's accounts; a bare uid works as well
    if options.pytest_args:
        argv += ["--", *options.pytest_args]
    return argv


def run(booting: Booting, options: Options, prefix: str) -> list[Run]:
    shared = (options.out / SHARED).resolve()
    log = options.out / "logs" / f"guest-{booting.kernel.label}.console.log"
    log.unlink(missing_ok=True)  # the watcher appends
    kvm = {"yes": True, "no": False}.get(options.kvm)
    kvm = kvm_usable() if kvm is None else kvm
    runs_at_most = 2 * len(options.guest_runs())  # root and --user on each
    boot = 1
    while True:
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir()
        scale = guest.SCALE_KVM if kvm else guest.SCALE_EMULATED
        command = guest.shell_command(guest_argv(options, shared / "out"), str(shared), scale,
                                      env=(f"{IN_GUEST_VARIABLE}=1",))
        argv = guest.vng_command(booting.tools, booting.kernel, kvm=kvm, cpus=CPUS, memory=MEMORY, user=None,
                                 shared_dir=str(shared), command=command)
        start = KVM_START if kvm else EMULATED_START
        # Each run's own --timeout bounds it in the guest; this bounds the guest, should its command hang anyway.
        finish = min(start + runs_at_most * options.timeout * scale + 300.0, MAX_WAIT)
        say(f"{prefix}: booting {booting.kernel.label} ({'KVM' if kvm else 'emulated, no KVM'}), try {boot} of "
            f"{BOOTS}")
        watched = console.watch(argv, env=dict(os.environ, PATH=booting.tools.path), log_path=log,
                                marker=guest.MARKER.encode(), start_deadline=start, finish_deadline=finish,
                                on_event=lambda kind, value: say(f"{prefix}: booted in {value:.0f} s")
                                if kind == "started" else None, marker_file=shared / guest.BOOTED)
        if watched.started is None and boot < BOOTS:
            kvm = kvm and options.kvm == "yes"  # KVM that was only tried is not tried again
            boot += 1
            continue
        break
    runs = _collected(watched, shared, options, log)
    shutil.rmtree(shared, ignore_errors=True)
    return runs


def _collected(watched: console.Watched, shared: Path, options: Options, log: Path) -> list[Run]:
    """The guest's runs, their reports moved into --out and their logs into --out/logs; or, when it wrote none, one
    run per filesystem of the guest with the reason."""
    out = shared / "out"
    if watched.started is None:
        why = f"the guest showed no sign of running its command ({watched.last_lines()}); console log: {log}"
    elif watched.timed_out:
        why = f"the guest did not finish within {watched.elapsed:.0f} s; console log: {log}"
    elif not (out / RUNS_FILE).is_file():
        why = f"the guest wrote no runs (exit status {watched.status}): {watched.last_lines()}; console log: {log}"
    else:
        why = None
    if why is None:
        try:
            runs = read_runs(out / RUNS_FILE, options.out, options.out / "logs")
        except (OSError, ValueError) as e:
            why = f"the guest's runs cannot be read: {e}"
    if why is not None:
        say(f"  {why}")
        return [Run(name, "-", problem=why) for name in options.guest_runs()]
    # Each report in each of its formats, and the reproducers; the guest's matrix is made again here.
    move_results(out, options.out, {run.report.name[:-len(run.report.suffix)] for run in runs if run.report})
    for path in (out / "logs").glob("*"):
        shutil.move(str(path), str(options.out / "logs" / path.name))
    guest_log = shared / guest.GUEST_LOG
    if guest_log.is_file():
        shutil.move(str(guest_log), str(log.with_name(log.name.replace(".console.", ".guest."))))
    return runs
