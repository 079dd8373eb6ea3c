"""Per-platform expectations: the deviations a platform is known to show, with their references.

One TOML file per OS (linux.toml, freebsd.toml, darwin.toml, illumos.toml), each a list of tables:

    [[deviation]]
    case = "rights/test_msg_peek_yields_the_descriptors[stream]"   # a case id; * matches anything
    reason = "XNU zero-fills the rights on MSG_PEEK"
    references = ["XNU tests/scm_rights_leak.c"]

A case that fails and matches an entry is a `deviation`; one that passes and matches is an
`unexpected-pass`. A malformed file is an ExpectationError naming the file and the line.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9 and 3.10
    import tomli as tomllib

DIRECTORY = Path(__file__).parent
CASE_PATTERN = re.compile(r"^[a-z0-9_*]+/[A-Za-z0-9_*]+(\[.*\])?$")
_KEYS = {"case": str, "reason": str, "references": list}


class ExpectationError(Exception):
    pass


@dataclass(frozen=True)
class Deviation:
    case: str
    reason: str
    references: tuple
    source: str  # file:line, for messages

    def matches(self, case_id: str) -> bool:
        # Only * is special: the brackets of a parameter id are literal.
        pattern = ".*".join(re.escape(part) for part in self.case.split("*"))
        return re.fullmatch(pattern, case_id) is not None


# TOML allows blanks inside the brackets and a quoted key: [[ deviation ]], [["deviation"]].
_HEADER = re.compile(r"""^\s*\[\[\s*(deviation|"deviation"|'deviation')\s*\]\]""")


def _entry_lines(text: str) -> list[int]:
    """The line number of each [[deviation]] header, in order."""
    return [i for i, line in enumerate(text.splitlines(), 1) if _HEADER.match(line)]


def _key_line(text: str, key: str) -> int:
    """The line where a top-level key is first written: `key = ...` before any table, or a [key] header."""
    name = rf"""\s*["']?{re.escape(key)}["']?\s*"""
    bare, header = re.compile(rf"^{name}[=.]"), re.compile(rf"^\s*\[\[?{name}[\].]")
    in_tables = False
    for i, line in enumerate(text.splitlines(), 1):
        if header.match(line):
            return i
        if line.lstrip().startswith("["):
            in_tables = True
        elif not in_tables and bare.match(line):
            return i
    return 1


def load_file(path: Path) -> list[Deviation]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExpectationError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ExpectationError(f"{path}:{line}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        number = line.group(1) if line else max(len(text.splitlines()), 1)  # "(at end of document)"
        raise ExpectationError(f"{path}:{number}: {str(e).split(' (at')[0]}") from None
    unknown = set(data) - {"deviation"}
    if unknown:
        line = min(_key_line(text, key) for key in unknown)
        raise ExpectationError(f"{path}:{line}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    entries = data.get("deviation", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ExpectationError(f"{path}:{_key_line(text, 'deviation')}: 'deviation' must be written as "
                               "[[deviation]] tables")
    lines = _entry_lines(text)
    result = []
    for index, entry in enumerate(entries):
        # Entries written as inline tables have no header of their own: name the `deviation =` line.
        line = lines[index] if index < len(lines) else _key_line(text, "deviation")
        where = f"{path}:{line}"
        missing = [k for k in _KEYS if k not in entry]
        extra = sorted(set(entry) - set(_KEYS))
        if missing or extra:
            problem = "missing " + ", ".join(missing) if missing else "unknown key(s) " + ", ".join(extra)
            raise ExpectationError(f"{where}: deviation entry: {problem}")
        for key, kind in _KEYS.items():
            if not isinstance(entry[key], kind):
                raise ExpectationError(f"{where}: '{key}' must be a {kind.__name__}")
        if not CASE_PATTERN.match(entry["case"]):
            raise ExpectationError(f"{where}: '{entry['case']}' is not a case id (area/test_name[params])")
        if not entry["reason"].strip():
            raise ExpectationError(f"{where}: 'reason' is empty")
        refs = entry["references"]
        if not refs or not all(isinstance(r, str) and r.strip() for r in refs):
            raise ExpectationError(f"{where}: 'references' must be a non-empty list of non-empty strings")
        result.append(Deviation(entry["case"], entry["reason"], tuple(refs), where))
    return result


class Expectations:
    def __init__(self, deviations: list[Deviation]) -> None:
        self.deviations = deviations
        self.used: set[Deviation] = set()

    def lookup(self, case_id: str) -> Deviation | None:
        for deviation in self.deviations:
            if deviation.matches(case_id):
                self.used.add(deviation)
                return deviation
        return None


def path_for(os_name: str) -> Path:
    return DIRECTORY / f"{os_name}.toml"


def load(os_name: str) -> Expectations:
    """The expectations for an OS; an OS with no file has none (every failure is a `fail`)."""
    path = path_for(os_name)
    return Expectations(load_file(path) if path.exists() else [])
