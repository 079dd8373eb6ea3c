"""What `conformance run` and `list` are asked to select, checked before pytest starts: `--area` (the suite's areas
and the case files of each, read from the files as text, so that an unknown area is one line at once and a known one
collects nothing else) and `-k` (an expression pytest can parse: pytest-xdist would otherwise end the run with an
internal error in every worker instead of pytest's usage error).

A file's area is what plugin/identity.py would name it: its CONFORMANCE_AREA, else test_<area>.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

from . import settings
from .usage import UsageError

# A test module outside conformance.cases is a conformance case module too if it sets this to its area name (read
# here from the case files as text, and by plugin/identity.py from the modules pytest imports).
AREA_VARIABLE = "CONFORMANCE_AREA"


def _declared(path: Path) -> str | None:
    """The file's module-level `CONFORMANCE_AREA = "<area>"`, if it has one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and any(isinstance(t, ast.Name) and t.id == AREA_VARIABLE for t in node.targets)):
            return node.value.value
    return None


def case_files(directory: Path = settings.CASES_DIR) -> dict[str, list[Path]]:
    """Every area of the suite and its case files, areas sorted by name."""
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("test_*.py")):
        area = _declared(path) or path.stem[len("test_"):]
        found.setdefault(area, []).append(path)
    return dict(sorted(found.items()))


def files_of(area: str, subcommand: str) -> list[str]:
    """The case files of `area`, as pytest arguments; a UsageError naming the areas there are for any other."""
    known = case_files()
    if area not in known:
        raise UsageError(subcommand, f"--area {area}: no such area (the areas: {', '.join(known)})")
    return [str(path) for path in known[area]]


def check_keyword(expression: str | None, subcommand: str) -> None:
    """A UsageError for a -k expression pytest cannot parse, with pytest's own words."""
    if expression is None:
        return
    try:
        from _pytest.mark.expression import Expression  # pytest's parser; not public, so its absence checks nothing
    except ImportError:
        return
    try:
        Expression.compile(expression)
    except Exception as e:  # pytest 9's ParseError is a SyntaxError; pytest 8's (the last for Python 3.9) is not
        if type(e).__name__ != "ParseError" and not isinstance(e, SyntaxError):
            raise
        column = getattr(e, "column", None) or getattr(e, "offset", None)
        message = getattr(e, "message", None) or getattr(e, "msg", None) or str(e)
        raise UsageError(subcommand, f"-k {expression}: at column {column}: {message}") from None
