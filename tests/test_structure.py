"""The package's structure and its documents, read as text: no import cycle, the outcome names and the report's
property keys spelled in conformance/model.py only, and every file, module and case id the documents name exists."""

from __future__ import annotations

import ast
import importlib
import re
from functools import lru_cache
from pathlib import Path

import pytest

from conformance import model
from conformance.report.load import read_report

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conformance"


# ---- imports ----------------------------------------------------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules this one imports, at module level or inside a function (both run sooner or later)."""
    modules, found = _modules(), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # `from package import submodule` needs the submodule; the package is imported first in any case.
            targets = submodules + ([] if all(name in modules for name in submodules) else [base])
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `from .x import name`: the module x, not the name
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_package_modules():
    graph = {name: _imports(name, path) for name, path in _modules().items()}
    assert "conformance.model" in graph["conformance.report.load"]
    assert _cycles(graph) == []


def test_the_model_imports_nothing_of_the_suite():
    assert _imports("conformance.model", PACKAGE / "model.py") == set()


# ---- the model's words --------------------------------------------------------------------------------------------

PROPERTY_KEYS = (model.PROPERTY_CASE, model.PROPERTY_OUTCOME, model.PROPERTY_REFERENCES, model.PROPERTY_OBSERVATION,
                 model.PROPERTY_REASON, model.PROPERTY_REFERENCE)

# The same words with another meaning, each with what it means there.
OTHER_MEANINGS = {
    ("conformance/expectations/__init__.py", "deviation"): "the [[deviation]] table of an expectation file",
    ("conformance/report/diff.py", "unsupported"): "a capability probe's answer, beside 'supported'",
    ("conformance/plugin/junit.py", "error"): "JUnit's <error> element",
    ("conformance/report/ktap.py", "pass"): "kselftest's name in its '# Totals:' line",
    ("conformance/report/ktap.py", "fail"): "kselftest's name in its '# Totals:' line",
    ("conformance/report/ktap.py", "error"): "kselftest's name in its '# Totals:' line",
}


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_outcome_names_and_property_keys_are_spelled_only_in_the_model():
    words = set(model.OUTCOMES) | set(PROPERTY_KEYS)
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        if path.name == "model.py" or where.startswith("conformance/cases/"):  # cases use words of their own domain
            continue
        spelled += [f"{where}: {word!r}" for word in sorted(_literals(path) & words)
                    if (where, word) not in OTHER_MEANINGS]
    assert spelled == []


def test_every_other_meaning_is_still_spelled_there():
    stale = [key for key in OTHER_MEANINGS if key[1] not in _literals(ROOT / key[0])]
    assert stale == []


# ---- what the documents name --------------------------------------------------------------------------------------

DOCUMENTS = ("README.md", "ci/README.md", "conformance/report/FORMAT.md")
# A path into the project: the package, the CI scripts, the flat tests directory, the workflow, committed reports.
PROJECT_PATH = re.compile(r"(?<![\w./-])((?:conformance/[\w./-]*[\w]|ci/[\w.-]+|tests/\w+\.py"
                          r"|\.github/workflows/[\w.-]+|\.ci/[\w.-]+|reports/(?!runs/)[\w.-]+\.\w+))")
MODULE = re.compile(r"(?<![\w./-])(conformance(?:\.[A-Za-z_]\w*)+)")
CASE_ID = re.compile(r"(?<![\w./-])([a-z0-9_]+/test_[A-Za-z0-9_*]+(?:\[[^\]\s]*\])?)")
BARE_SOURCE = re.compile(r"(?<![\w./-])([a-z_0-9]+\.py)\b")


def _docstrings() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node)
                if text:
                    found.append((str(path.relative_to(ROOT)), text))
    return found


def _texts() -> list[tuple[str, str]]:
    """(where, text) of every document, docstring and expectation file."""
    texts = [(name, (ROOT / name).read_text(encoding="utf-8")) for name in DOCUMENTS]
    texts += [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
              for p in sorted((PACKAGE / "expectations").glob("*.toml"))]
    return texts + _docstrings()


def _placeholder(token: str) -> bool:
    return any(mark in token for mark in "<>{}*")


def _module_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@lru_cache(maxsize=1)
def _sources() -> frozenset:
    return frozenset(path.name for path in ROOT.rglob("*.py") if not {".venv", ".tox"} & set(path.parts))


def _missing_files_and_modules(where: str, text: str) -> list[str]:
    missing = [token for token in PROJECT_PATH.findall(text)
               if not _placeholder(token) and not (ROOT / token.rstrip(".")).exists()]
    missing += [token for token in MODULE.findall(text)
                if not _module_exists(token.rstrip(".")) and token.rstrip(".") not in PROPERTY_KEYS]
    if where in DOCUMENTS:  # a bare file name in the project's own documents names one of its files
        missing += [token for token in BARE_SOURCE.findall(text) if token not in _sources()]
    return missing


def _unknown_case_ids(text: str, ids: list[str]) -> list[str]:
    areas = {case_id.partition("/")[0] for case_id in ids}
    unknown = []
    for token in CASE_ID.findall(text):
        if token.partition("/")[0] not in areas or token == "area/test_name[params]":
            continue  # another project's path (CPython's test/test_socket), or the form itself
        pattern = ".*".join(re.escape(part) for part in token.split("*"))
        if not any(re.fullmatch(pattern, case_id) for case_id in ids):
            unknown.append(token)
    return unknown


def test_the_document_checks_find_what_does_not_exist():
    text = ("see `conformance/nosuch.py`, conformance.report.nosuch, conformance.model.NoSuch, `nosuch.py`, "
            "ci/nosuch, rights/test_nosuch[stream] and rights/test_a[*]; but conformance/model.py, "
            "conformance.model.Report, `model.py`, `conformance/platforms/<os>.py`, rights/test_a[stream] and "
            "FreeBSD tests/sys/kern/unix_passfd_test.c are fine, as is the property conformance.outcome.")
    assert _missing_files_and_modules("README.md", text) == [
        "conformance/nosuch.py", "ci/nosuch", "conformance.report.nosuch", "conformance.model.NoSuch", "nosuch.py"]
    assert _unknown_case_ids(text, ["rights/test_a[stream]"]) == ["rights/test_nosuch[stream]"]


def test_every_project_file_and_module_a_document_names_exists():
    missing = [f"{where}: {token}" for where, text in _texts() for token in _missing_files_and_modules(where, text)]
    assert missing == []


@pytest.mark.timeout(900)  # its setup may run the whole suite once for the session (conftest.WALL)
def test_every_case_id_a_document_names_exists(serial_run):
    (report_path,) = serial_run.report_dir.glob("*.json")
    ids = [case.id for case in read_report(report_path).cases]
    unknown = [f"{where}: {token}" for where, text in _texts() for token in _unknown_case_ids(text, ids)]
    assert unknown == []
