"""Which suite made a report: its name, its version and, in a checkout, the commit its code came from."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .. import __version__
from ..model import Suite


def this_suite() -> Suite:
    return Suite("conformance", __version__, _git_commit())


# A copy of the suite installed away from its checkout (conformance compat installs one into a chroot) names the
# commit it came from in this file of the package.
COMMIT_FILE = "COMMIT"


def _git_commit() -> str | None:
    top = Path(__file__).resolve().parents[2]
    if not (top / ".git").exists():
        recorded = Path(__file__).resolve().parents[1] / COMMIT_FILE
        return recorded.read_text(encoding="ascii", errors="replace").strip() or None if recorded.is_file() else None
    try:
        # The suite's code runs from this checkout already, so trusting it adds nothing; without this, git
        # refuses a checkout another uid owns, and an unprivileged run would record no commit.
        out = subprocess.run(["git", "-c", f"safe.directory={top}", "-C", str(top), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
