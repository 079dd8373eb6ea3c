"""Per-platform expectations: the deviations a platform is known to show, and the values it is known to choose where
the references leave the choice to it, each with its reasons and references.

One TOML file per OS (linux.toml, freebsd.toml, darwin.toml, illumos.toml), and one per filesystem of an OS that
does something differently (linux.fuse.bindfs-forwarding.toml: `<os>.<filesystem type>.toml`, the type as the report
and the platform id name it), read on top of the OS's when the directory under test is on that filesystem. Each is two
lists of tables:

    [[deviation]]
    case = "rights/test_msg_peek_on_a_message_with_descriptors[*]"   # a case id; * matches anything
    reason = "XNU returns zero-filled rights for MSG_PEEK"
    references = ["XNU tests/scm_rights_leak.c"]

    [[expected]]
    observation = "rights.inflight_limit_errno"   # the observation a case records, `<area>.<name>`
    value = "ETOOMANYREFS"                         # what this platform must show there
    reason = "sendmsg refuses a sender whose descriptors in flight exceed its RLIMIT_NOFILE"
    references = ["Linux unix(7): ETOOMANYREFS"]

and a third list, of the observations whose value follows from the platform's data model (the sizes of long, size_t
and pointers: LP64 or ILP32), so that two architectures of one OS show different values by design:

    [[abi]]
    observation = "format.truncation.delivered[*_in_space1]"   # an observation key; * matches anything
    reason = "CMSG_SPACE(sizeof(int)) holds two descriptors with 8-byte alignment, one with 4-byte alignment"
    references = ["Linux include/linux/socket.h CMSG_ALIGN"]

The diff of two reports of different architectures lists such a change with its reason, apart from the others.

A case that fails and matches a deviation is a `deviation`; one that passes and matches is an
`unexpected-pass`. A case that checks a platform's choice asks for its expected value (the plugin's `expected`
fixture) and is `unsupported` where the file names none. A deviation that matches no case is listed in the report.
A malformed file is an ExpectationError naming the file and the line.
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
OBSERVATION_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+(\[.*\])?$")
_KEYS = {"case": str, "reason": str, "references": list}
_EXPECTED_KEYS = {"observation": str, "value": (str, int, float, bool), "reason": str, "references": list}
_ABI_KEYS = {"observation": str, "reason": str, "references": list}
_TABLES = ("deviation", "expected", "abi")


class ExpectationError(Exception):
    pass


@dataclass(frozen=True)
class ExpectedValue:
    observation: str
    value: str | int | float | bool
    reason: str
    references: tuple
    source: str  # file:line, for messages


@dataclass(frozen=True)
class Deviation:
    case: str
    reason: str
    references: tuple
    source: str  # file:line, for messages

    def matches(self, case_id: str) -> bool:
        return _matches(self.case, case_id)


@dataclass(frozen=True)
class AbiDependence:
    """An observation whose value follows from the data model, and why."""

    observation: str
    reason: str
    references: tuple
    source: str

    def matches(self, key: str) -> bool:
        return _matches(self.observation, key)


def _matches(pattern: str, name: str) -> bool:
    # Only * is special: the brackets of a parameter id are literal.
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), name) is not None


def _entry_lines(text: str, table: str) -> list[int]:
    """The line number of each [[table]] header, in order."""
    # TOML allows blanks inside the brackets and a quoted key: [[ deviation ]], [["deviation"]].
    header = re.compile(rf"""^\s*\[\[\s*({table}|"{table}"|'{table}')\s*\]\]""")
    return [i for i, line in enumerate(text.splitlines(), 1) if header.match(line)]


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


def load_file(path: Path) -> Expectations:
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        number = line.group(1) if line else max(len(text.splitlines()), 1)  # "(at end of document)"
        raise ExpectationError(f"{path}:{number}: {str(e).split(' (at')[0]}") from None
    unknown = set(data) - set(_TABLES)
    if unknown:
        line = min(_key_line(text, key) for key in unknown)
        raise ExpectationError(f"{path}:{line}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    deviations = [Deviation(entry["case"], entry["reason"], tuple(entry["references"]), where)
                  for entry, where in _entries(path, text, data, "deviation", _KEYS)]
    for deviation in deviations:
        if not CASE_PATTERN.match(deviation.case):
            raise ExpectationError(f"{deviation.source}: '{deviation.case}' is not a case id (area/test_name[params])")
    values: dict[str, ExpectedValue] = {}
    for entry, where in _entries(path, text, data, "expected", _EXPECTED_KEYS):
        name = entry["observation"]
        if not OBSERVATION_PATTERN.match(name):
            raise ExpectationError(f"{where}: '{name}' is not an observation key (area.name[params])")
        if name in values:
            raise ExpectationError(f"{where}: '{name}' is expected twice (also at {values[name].source})")
        values[name] = ExpectedValue(name, entry["value"], entry["reason"], tuple(entry["references"]), where)
    abi = [AbiDependence(entry["observation"], entry["reason"], tuple(entry["references"]), where)
           for entry, where in _entries(path, text, data, "abi", _ABI_KEYS)]
    for entry in abi:
        if not OBSERVATION_PATTERN.match(entry.observation):
            raise ExpectationError(f"{entry.source}: '{entry.observation}' is not an observation key "
                                   "(area.name[params])")
    return Expectations(deviations, values, abi)


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExpectationError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ExpectationError(f"{path}:{line}: not UTF-8 text") from None


def _entries(path: Path, text: str, data: dict, table: str, keys: dict):
    """(entry, "file:line") of each [[table]], its keys and their types checked, reason and references non-empty."""
    entries = data.get(table, [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ExpectationError(f"{path}:{_key_line(text, table)}: '{table}' must be written as [[{table}]] tables")
    lines = _entry_lines(text, table)
    for index, entry in enumerate(entries):
        # Entries written as inline tables have no header of their own: name the `table =` line.
        line = lines[index] if index < len(lines) else _key_line(text, table)
        where = f"{path}:{line}"
        missing = [k for k in keys if k not in entry]
        extra = sorted(set(entry) - set(keys))
        if missing or extra:
            problem = "missing " + ", ".join(missing) if missing else "unknown key(s) " + ", ".join(extra)
            raise ExpectationError(f"{where}: {table} entry: {problem}")
        for key, kind in keys.items():
            if not isinstance(entry[key], kind):
                names = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
                raise ExpectationError(f"{where}: '{key}' must be a {names}")
        if not entry["reason"].strip():
            raise ExpectationError(f"{where}: 'reason' is empty")
        refs = entry["references"]
        if not refs or not all(isinstance(r, str) and r.strip() for r in refs):
            raise ExpectationError(f"{where}: 'references' must be a non-empty list of non-empty strings")
        yield entry, where


class Expectations:
    def __init__(self, deviations: list[Deviation], values: dict[str, ExpectedValue] | None = None,
                 abi: list[AbiDependence] | None = None) -> None:
        self.deviations = deviations
        self.values = values or {}
        self.abi = abi or []

    def abi_dependence(self, key: str) -> AbiDependence | None:
        """The first [[abi]] entry that says why this observation differs between data models, if any."""
        return next((entry for entry in self.abi if entry.matches(key)), None)

    def lookup(self, case_id: str) -> Deviation | None:
        """The first deviation that documents this case, if any."""
        return next((deviation for deviation in self.deviations if deviation.matches(case_id)), None)

    def expected(self, observation: str) -> ExpectedValue | None:
        return self.values.get(observation)

    def unmatched(self, case_ids) -> list[Deviation]:
        """The deviations that match none of these case ids, in file order."""
        ids = list(case_ids)
        return [deviation for deviation in self.deviations if not any(deviation.matches(i) for i in ids)]


    def over(self, base: Expectations) -> Expectations:
        """These entries over ``base``'s: a case both name is documented by these, a value both give is this one."""
        return Expectations(self.deviations + base.deviations, {**base.values, **self.values})


def path_for(os_name: str, filesystem: str | None = None) -> Path:
    return DIRECTORY / (f"{os_name}.toml" if filesystem is None else f"{os_name}.{filesystem}.toml")


def load(os_name: str, filesystem: str | None = None) -> Expectations:
    """The expectations for an OS, and for that filesystem of it over them if it has a file; an OS with no file has
    none (every failure is a `fail`). A filesystem's deviation is one of that filesystem, never of the kernel's: a
    kernel or filesystem bug stays a `fail`."""
    path = path_for(os_name)
    loaded = load_file(path) if path.exists() else Expectations([])
    if filesystem is not None and path_for(os_name, filesystem).exists():
        loaded = load_file(path_for(os_name, filesystem)).over(loaded)
    return loaded
