#!/usr/bin/env python3
"""Run nfslocks.c in a virtme-ng guest of a Debian kernel: on the guest's tmpfs, over NFSv3, over NFSv4.2, and over
NFSv4.2 again with the server's leases off (fs.leases-enable=0: nfsd then hands out no delegation).

    sudo python3 reports/filesystems/evidence/run_in_guest.py OUT [--kernel 6.12]

OUT receives nfslocks (built here with cc), results.txt and the guest's console.log. The NFS server and mounts are
those of `conformance filesystems --fs nfs3,nfs4.2` (conformance/filesystems/plans.py), set up and undone the same way;
the tools are those of `ci/install-filesystem-tools --nfs && ci/install-kernel-tools`. Takes about 5 minutes without
KVM on two cores, most of it the two waits of 30 s that NFS shows (results.txt)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the checkout's conformance package

from conformance.filesystems import mounting, plans  # noqa: E402

GRACE = 12  # seconds: the server's grace period (plans.NFSD_GRACE, 10 s), in which it grants no lock
RUNS = (("tmpfs", "tmpfs", False), ("nfs3", "nfs3", False), ("nfs4.2", "nfs4.2", False),
        ("nfs4.2, leases off", "nfs4.2", True))


def fail(message: str) -> int:
    print(f"run_in_guest: {message}", file=sys.stderr)
    return 2


def on_host(out: Path, kernel_spec: str) -> int:
    from conformance.kernels import guest
    from conformance.kernels.sources import KernelSourceError, resolve
    from conformance.kernels.tools import MissingTools, find_tools

    if os.geteuid() != 0:
        return fail("run it as root: the guest mounts filesystems and starts an NFS server")
    try:
        tools = find_tools()
        kernel = resolve(kernel_spec, Path.home() / ".cache" / "conformance" / "kernels", print)
    except (MissingTools, KernelSourceError) as e:
        return fail(str(e))
    out.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(["cc", "-O1", "-Wall", "-pthread", "-o", str(out / "nfslocks"), str(HERE / "nfslocks.c")])
    if built.returncode:
        return fail("cc could not build nfslocks.c")
    command = f"{sys.executable} {Path(__file__).resolve()} --inside {out}"
    argv = guest.vng_command(tools, kernel, kvm=False, cpus=2, memory="2G", user=None, shared_dir=str(out),
                             command=command)
    with open(out / "console.log", "w") as console:
        booted = subprocess.run(argv, stdout=console, stderr=subprocess.STDOUT, timeout=1800,
                                env=dict(os.environ, PATH=tools.path))
    print((out / "results.txt").read_text() if (out / "results.txt").exists() else "no results: see console.log")
    return booted.returncode


def in_guest(out: Path) -> int:
    with open(out / "results.txt", "w") as results:
        def say(text: str) -> None:
            results.write(text + "\n")
            results.flush()

        say(f"kernel {os.uname().release}")
        top = tempfile.mkdtemp(prefix="nfslocks-")  # the guest's /tmp is an overlay of this machine's
        for label, name, leases_off in RUNS:
            base = os.path.join(top, label.replace(" ", "").replace(",", "-"))
            os.makedirs(base)
            if leases_off:
                Path("/proc/sys/fs/leases-enable").write_text("0\n")
            with mounting.mounted(plans.plan(name, base), on_problem=say) as target:
                if name != "tmpfs":
                    time.sleep(GRACE)
                done = subprocess.run([str(out / "nfslocks"), target], capture_output=True, text=True, timeout=900)
                say(f"##### {label}\n{done.stdout}{done.stderr}(exit {done.returncode})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kernel", default="6.12", help="any KERNEL of `conformance kernels` (default: 6.12)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return in_guest(args.out) if args.inside else on_host(args.out.resolve(), args.kernel)


if __name__ == "__main__":
    sys.exit(main())
