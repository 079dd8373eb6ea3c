"""The filesystem under test: CONFORMANCE_DIR (or --conformance-dir) chooses it, the report records it, and the
platform id ends with its type, so runs on two filesystems never overwrite each other's report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conformance.platforms.detect import filesystem_type, platform_id

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, env_dir: str | None, *args: str) -> dict:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    env.pop("CONFORMANCE_DIR", None)
    if env_dir:
        env["CONFORMANCE_DIR"] = env_dir
    report_dir = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "cases" / "test_locks.py"), "-q",
         "-p", "no:cacheprovider", "-p", "no:randomly", "-k", "splits and posix",
         "--conformance-report", str(report_dir), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = report_dir.glob("*.json")
    return json.loads(path.read_text())


def test_conformance_dir_environment_variable_chooses_the_filesystem(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    report = _run(tmp_path, str(target))
    fs = report["platform"]["filesystem"]
    assert fs["path"] == os.path.realpath(target)
    assert fs["type"] == filesystem_type(str(target))
    assert report["platform"]["id"].endswith("-" + fs["type"])
    assert report["cases"] and all(c["outcome"] == "pass" for c in report["cases"])


def test_the_option_wins_over_the_environment(tmp_path):
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    report = _run(tmp_path, "/nonexistent-dir", "--conformance-dir", str(chosen))
    assert report["platform"]["filesystem"]["path"] == os.path.realpath(chosen)


def test_platform_ids_differ_by_filesystem():
    assert platform_id("linux", "tmpfs") != platform_id("linux", "ext4")
    assert platform_id("linux", "tmpfs").endswith("-tmpfs")
