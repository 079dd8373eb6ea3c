"""What a collected case needs of the platform, known without running it: the capability probes it asks for before
doing anything else, and whether more is decided only when it runs.

A case asks for a mechanism with `outcomes.require(probe)` (or `require_lock_family(family)`, which asks for the
family's probe: its check tries what the family's operations need), in its own body or in a fixture of the cases'
(`pair` asks for `scm_rights` and `sock_<socktype>`). This module reads those functions' source and takes a probe
as declared only where nothing can keep the call from being made: a statement of the function's own body (or of a
`with` or `try` block there) that calls `require` or a helper of the cases that does, with an argument it can name
without running anything (a string, an f-string of the case's parameters, a lock family or a field of a parameter).
Any other way the case may become unsupported (a `require` under an `if` or in a loop, `Unsupported` raised, the
reference code's `Unavailable` turned into it, the expectation file asked for a value by a name not written in the case,
a probe named at run time) makes `decided_when_it_runs` true: the list says so rather than guessing. A value asked
for by a written name (`expected("inflight_limit_errno")`) is listed, so that the list can say whether the file
documents it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from dataclasses import dataclass
from functools import cache

from . import locks, outcomes
from .plugin.identity import CASES_PACKAGE

# The calls that may make a case unsupported, by their objects, wherever the cases import them from.
_REQUIRE = outcomes.require
_UNSUPPORTING = (outcomes.Unsupported, outcomes.unsupported)
_EXPECTED_FIXTURE = "expected"  # the plugin's fixture: unsupported where the expectation file names no value
_HELPER_DEPTH = 4  # how deep helpers of the cases are followed; deeper calls are decided when the case runs


@dataclass(frozen=True)
class Needs:
    probes: tuple[str, ...]  # declared, in the order the case asks for them
    expected: tuple[str, ...]  # observations whose value the case asks the expectation file for, by name
    decided_when_it_runs: bool  # something else may make the case unsupported; only running it tells


class _Unknown(Exception):
    """An expression whose value only running the case would give."""


def _own(function) -> bool:
    """A function of the cases' package (a case module, its conftest or a helper module)."""
    return inspect.isfunction(function) and (function.__module__ or "").startswith(CASES_PACKAGE + ".")


def _is_require_lock_family(function) -> bool:
    # Defined in cases/_support.py, which this module must not import (it is a module of the cases).
    return _own(function) and function.__name__ == "require_lock_family"


@cache  # a module's source is parsed once, however many cases share it
def _functions_of(path: str) -> dict:
    """Every function defined in the file, by (name, first line): the line of its first decorator, or of its `def`."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found[(node.name, first)] = found[(node.name, node.lineno)] = node
    return found


@cache
def _definition(function) -> ast.FunctionDef | None:
    """The function's definition, found in its module's parsed source by name and first line. (Python 3.9's
    inspect.getsource cuts a function whose decorator holds a lambda short, to an unparsable piece.)"""
    try:
        path = inspect.getsourcefile(function)
    except TypeError:
        return None
    if not path:
        return None
    try:
        functions = _functions_of(path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    return functions.get((function.__name__, function.__code__.co_firstlineno))


def _value(node: ast.AST, names: dict, globals_: dict):
    """What an expression names, where that needs no call: a constant, a name, a dataclass field, an f-string."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id in globals_:
            return globals_[node.id]
        raise _Unknown(node.id)
    if isinstance(node, ast.Attribute):
        owner = _value(node.value, names, globals_)
        fields = {f.name for f in dataclasses.fields(owner)} if dataclasses.is_dataclass(owner) else set()
        if node.attr not in fields:
            raise _Unknown(node.attr)
        return getattr(owner, node.attr)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                if part.conversion != -1 or part.format_spec is not None:
                    raise _Unknown("a formatted value")
                parts.append(str(_value(part.value, names, globals_)))
            else:
                parts.append(str(_value(part, names, globals_)))
        return "".join(parts)
    raise _Unknown(type(node).__name__)


def _called(call: ast.Call, globals_: dict):
    """The object a call by plain name calls, or None."""
    return globals_.get(call.func.id) if isinstance(call.func, ast.Name) else None


class _Reader:
    def __init__(self, fixtures: set[str]) -> None:
        self.fixtures = fixtures
        self.probes: list[str] = []
        self.expected: list[str] = []
        self.at_run_time = False

    def function(self, function, names: dict, depth: int = 0) -> None:
        """Read what calling `function` with these known argument values asks for."""
        definition = _definition(function)
        if definition is None or depth > _HELPER_DEPTH:
            self.at_run_time = True
            return
        for statement, always in self._statements(definition.body):
            call = self._call_of(statement) if always else None
            declared = call is not None and self._declared(call, names, function.__globals__, depth)
            if not declared and self._may_unsupport(statement, function.__globals__):
                self.at_run_time = True

    def _statements(self, body: list) -> list:
        """(statement, whether it runs whenever the function does, until a statement before it raises)."""
        statements = []
        for statement in body:
            if isinstance(statement, (ast.With, ast.AsyncWith)):
                statements += [(ast.Expr(item.context_expr), True) for item in statement.items]
                statements += self._statements(statement.body)
            elif isinstance(statement, ast.Try):
                statements += self._statements(statement.body)
                statements += [(other, False) for other in statement.handlers + statement.orelse]
                statements += self._statements(statement.finalbody)
            else:
                statements.append((statement, True))
        return statements

    @staticmethod
    def _call_of(statement: ast.stmt) -> ast.Call | None:
        value = getattr(statement, "value", None) if isinstance(statement, (ast.Expr, ast.Assign)) else None
        return value if isinstance(value, ast.Call) else None

    def _declared(self, call: ast.Call, names: dict, globals_: dict, depth: int) -> bool:
        """Take the call's needs as declared, if its function and arguments are known; False if they are not."""
        called = _called(call, globals_)
        if isinstance(call.func, ast.Name) and call.func.id == _EXPECTED_FIXTURE and call.func.id in names:
            return self._asked_value(call, names, globals_)
        if called is None or call.keywords:
            return False
        try:
            args = [_value(arg, names, globals_) for arg in call.args]
        except _Unknown:
            return False
        if called is _REQUIRE and len(args) == 1 and isinstance(args[0], str):
            self._add(args[0])
            return True
        if _is_require_lock_family(called) and len(args) == 1 and isinstance(args[0], locks.Family):
            self._add(args[0].probe)
            return True
        if _own(called):
            parameters = list(inspect.signature(called).parameters)
            if len(args) > len(parameters):
                return False
            self.function(called, dict(zip(parameters, args)), depth + 1)
            return True
        return not self._may_unsupport(call, globals_)

    def _asked_value(self, call: ast.Call, names: dict, globals_: dict) -> bool:
        try:
            name = _value(call.args[0], names, globals_) if len(call.args) == 1 else None
        except _Unknown:
            name = None
        if isinstance(name, str):
            self.expected.append(name)
            return True
        return False

    def _add(self, probe: str) -> None:
        if probe not in self.probes:
            self.probes.append(probe)

    def _may_unsupport(self, node: ast.AST, globals_: dict, fixtures: set | None = None) -> bool:
        """Whether running this code may make the case unsupported in a way not declared (`fixtures`: the names that
        are the case's fixtures there; by default, its own)."""
        fixtures = self.fixtures if fixtures is None else fixtures
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Call):
                continue
            if isinstance(sub.func, ast.Name) and sub.func.id == _EXPECTED_FIXTURE and sub.func.id in fixtures:
                return True
            called = _called(sub, globals_)
            if called is _REQUIRE or _is_require_lock_family(called) or any(called is u for u in _UNSUPPORTING):
                return True
            if _own(called) and self._helper_may_unsupport(called):
                return True
        return False

    def _helper_may_unsupport(self, function) -> bool:
        code = function.__code__
        if code not in _UNSUPPORTING_HELPERS:
            _UNSUPPORTING_HELPERS[code] = True  # a helper that calls itself is judged by its other calls
            definition = _definition(function)
            _UNSUPPORTING_HELPERS[code] = definition is None or self._may_unsupport(definition, function.__globals__,
                                                                                    set())
        return _UNSUPPORTING_HELPERS[code]


# A helper's code -> whether calling it may make a case unsupported, whatever its arguments (it gets no fixture).
_UNSUPPORTING_HELPERS: dict = {}


def of(item) -> Needs:
    """What a collected case (a pytest item of the cases) needs: its own fixtures' declared probes, then its body's."""
    params = dict(getattr(getattr(item, "callspec", None), "params", {}))
    fixtures = set(getattr(item, "fixturenames", ()))
    reader = _Reader(fixtures)
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in getattr(item, "fixturenames", ()):
        for fixture in definitions.get(name, ())[-1:]:  # the definition the case gets (the closest one)
            if _own(fixture.func):
                reader.function(fixture.func, _fixture_names(fixture, params))
    reader.function(item.function, {**params, **{name: _FixtureValue(name) for name in fixtures - set(params)}})
    return Needs(tuple(reader.probes), tuple(reader.expected), reader.at_run_time)


class _FixtureValue:
    """A fixture's value in a case's body: known to exist, not known until it runs."""

    def __init__(self, name: str) -> None:
        self.name = name


def _fixture_names(fixture, params: dict) -> dict:
    """A fixture's arguments: the parameters of the case it is parametrised by, and other fixtures as unknowns."""
    return {name: params.get(name, _FixtureValue(name)) for name in fixture.argnames}
