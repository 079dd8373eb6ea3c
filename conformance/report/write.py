"""Write a report or a matrix in every format of report/formats.py; each file is replaced atomically."""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

from ..model import Report
from .formats import MATRIX_FORMATS, REPORT_FORMATS, Format
from .matrix import Matrix
from .schema import validate

MATRIX_STEM = "matrix"
# What an incomplete report's files add to the platform id: a partial run (interrupted, stopped, a selection of the
# suite) never replaces the complete report of its platform.
PARTIAL = ".partial"


def report_stem(report: Report) -> str:
    """The name of a report's files without the suffix: the platform id, and PARTIAL unless the report is complete."""
    return _file_stem(report.platform.id) + ("" if report.complete else PARTIAL)


def write_report(report: Report, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Validate ``report`` and write ``<platform id>.json``, ``.md``, ``.html`` and ``.ktap`` into ``directory``
    (``<platform id>.partial.json`` and so on for an incomplete report).

    Raises ValueError, writing nothing, if the report is invalid. Each file is replaced
    atomically, so a crash leaves either the previous file or the new one, never a torn one.
    """
    problems = validate(report.to_json())
    if problems:
        raise ValueError("refusing to write an invalid report:\n  " + "\n  ".join(problems))
    return _write(report, REPORT_FORMATS, report_stem(report), pathlib.Path(directory))


def write_matrix(matrix: Matrix, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write ``matrix.md``, ``matrix.html`` and ``matrix.json`` into ``directory``, each atomically."""
    return _write(matrix, MATRIX_FORMATS, MATRIX_STEM, pathlib.Path(directory))


def _write(document, formats: tuple[Format, ...], stem: str, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    # Render everything before touching the disk so a rendering bug writes nothing.
    contents = {form.name: (form.suffix, form.render(document).encode("utf-8", "replace")) for form in formats}
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (suffix, data) in contents.items():
        paths[name] = directory / f"{stem}{suffix}"
        _atomic_write(paths[name], data)
    _fsync_directory(directory)
    return paths


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


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    # The temporary file lives in the target directory so os.replace never crosses filesystems.
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp creates 0600; reports are meant to be shared
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


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
