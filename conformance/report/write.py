"""Write a report or a matrix in every format of report/formats.py, replacing the files as nearly as a set as a
filesystem allows.

No filesystem renames several files at once, so the set is replaced in two steps: first every file is written and
fsync'ed under a temporary name (``.<name>.XXXXXXXX.tmp``) in the target directory, then each is renamed over its
final name, the JSON last, and the directory is fsync'ed. A crash while writing leaves only temporary files beside
the old set; a crash between renames leaves some new pages beside the old JSON. That is safe because the JSON is the
authority: every reader (render, matrix, diff, ktap, kernels) reads the JSON only, the pages are derived from it
(`conformance render` makes them again), and a JSON file is always whole, old or new. Temporary files that a killed
writer left are removed by the next write into the directory once they are STALE_AFTER seconds old.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import stat
import tempfile

from ..model import Report
from .formats import MATRIX_FORMATS, REPORT_FORMATS, Format
from .load import ReportError, read_report
from .matrix import Matrix
from .schema import validate

MATRIX_STEM = "matrix"
AUTHORITY_SUFFIX = ".json"  # renamed last: what every reader reads
# A writer's temporary file lives for as long as writing the set takes (well under a second; seconds on a slow
# network filesystem). Older than this, measured by the filesystem's own clock, it was left by a killed writer.
STALE_AFTER = 60.0
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")  # tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")
_SUFFIXES = frozenset(form.suffix for form in (*REPORT_FORMATS, *MATRIX_FORMATS))
# What an incomplete report's files add to the platform id: a partial run (interrupted, stopped, a selection of the
# suite) never replaces the complete report of its platform.
PARTIAL = ".partial"


def report_stem(report: Report) -> str:
    """The name of a report's files without the suffix: the platform id, and PARTIAL unless the report is complete."""
    return _file_stem(report.platform.id) + ("" if report.complete else PARTIAL)


def write_report(report: Report, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Validate ``report`` and write ``<platform id>.json``, ``.md``, ``.html`` and ``.ktap`` into ``directory``
    (``<platform id>.partial.json`` and so on for an incomplete report).

    Raises ValueError, writing nothing, if the report is invalid.
    """
    problems = validate(report.to_json())
    if problems:
        raise ValueError("refusing to write an invalid report:\n  " + "\n  ".join(problems))
    return _write(report, REPORT_FORMATS, report_stem(report), pathlib.Path(directory))


def write_matrix(matrix: Matrix, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write ``matrix.md``, ``matrix.html`` and ``matrix.json`` into ``directory``."""
    return _write(matrix, MATRIX_FORMATS, MATRIX_STEM, pathlib.Path(directory))


def replaced_report(report: Report, directory: pathlib.Path, source: pathlib.Path) -> pathlib.Path | None:
    """The JSON file that writing ``report`` into ``directory`` would replace, if it holds anything but this
    report (read from ``source``): another run's report of the same platform id, or something that is no report."""
    target = pathlib.Path(directory) / f"{report_stem(report)}{AUTHORITY_SUFFIX}"
    if not os.path.lexists(target):
        return None
    with contextlib.suppress(OSError):
        if os.path.samefile(target, source):
            return None  # rendered again in place
    try:
        return None if read_report(target).to_json() == report.to_json() else target
    except ReportError:
        return target


def _write(document, formats: tuple[Format, ...], stem: str, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    # Render everything before touching the disk so a rendering bug writes nothing.
    contents = [(form.name, directory / f"{stem}{form.suffix}", form.render(document).encode("utf-8", "replace"))
                for form in formats]
    directory.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, pathlib.Path]] = []
    try:
        for _, path, data in sorted(contents, key=lambda entry: entry[1].suffix == AUTHORITY_SUFFIX):  # JSON last
            staged.append((_write_temporary(path, data), path))
        _remove_stale_temporaries(directory, now=os.stat(staged[0][0]).st_mtime,
                                  keep={os.path.basename(temporary) for temporary, _ in staged})
        while staged:
            temporary, path = staged[0]
            os.replace(temporary, path)
            staged.pop(0)
    finally:
        for temporary, _ in staged:  # left only by a failure
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    _fsync_directory(directory)
    return {name: path for name, path, _ in contents}


class UnusablePlatformId(ValueError):
    """The report is valid, but its platform id cannot name a file."""


# Room in NAME_MAX (255 bytes) for the suffix and the temporary name's prefix and random part.
MAX_ID_BYTES = 200


def platform_id_problem(platform_id: str) -> str:
    """Why ``platform_id`` cannot name the report's files, or "" if it can.

    Detection builds ids from safe characters; this guards against a bug or a crafted report escaping the
    directory, or naming a file with bytes that are not UTF-8 (a lone surrogate) or with control characters.
    """
    if "/" in platform_id:
        return "contains '/'"
    if platform_id.startswith("."):
        return "starts with '.'"
    if any(ord(char) < 0x20 or ord(char) == 0x7F or 0xD800 <= ord(char) < 0xE000 for char in platform_id):
        return "contains a control character or a lone surrogate"
    if len(platform_id.encode("utf-8")) > MAX_ID_BYTES:
        return f"is longer than {MAX_ID_BYTES} bytes"
    return ""


def _file_stem(platform_id: str) -> str:
    problem = platform_id_problem(platform_id)
    if problem:
        raise UnusablePlatformId(f"platform id {platform_id!r} is not usable as a file name: it {problem}")
    return platform_id


def _write_temporary(path: pathlib.Path, data: bytes) -> str:
    """``data`` in a new temporary file beside ``path``, fsync'ed; its name."""
    # In the target directory, so that os.replace never crosses filesystems.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; reports are meant to be shared
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary


def _remove_stale_temporaries(directory: pathlib.Path, now: float, keep: set[str]) -> None:
    """Remove the temporary files a killed writer left in ``directory``: this writer's names only, regular files
    only, and only those older than STALE_AFTER by the filesystem's clock (``now`` is a file just written there), so
    that a concurrent writer's files are left alone."""
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if not match or os.path.splitext(match["name"])[1] not in _SUFFIXES or entry.name in keep:
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < now - STALE_AFTER:
                    os.unlink(entry.path)


def _fsync_directory(directory: pathlib.Path) -> None:
    # Makes the renames durable; not every platform lets a directory be opened, so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
