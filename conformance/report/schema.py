"""The report schema and a small validator for the part of JSON Schema it uses.

The suite runs on hosts where compiled dependencies are unwelcome, so validation must
not need the ``jsonschema`` package; the self-tests cross-check this validator against it.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
import re
from typing import Any

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.json")

# Keywords the validator enforces, and keywords that only annotate. The self-tests check
# that schema.json uses nothing else, so a new keyword cannot be silently ignored.
SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minItems",
        "minLength",
        "minimum",
        "exclusiveMinimum",
        "maximum",
        "pattern",
        "anyOf",
        "oneOf",
        "$ref",
    }
)
ANNOTATION_KEYWORDS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description"})

# A badly broken document could otherwise produce one message per element.
MAX_PROBLEMS = 100

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def load_schema() -> dict:
    """Return a fresh copy of the schema, safe for the caller to modify."""
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return json.load(handle)


@functools.lru_cache(maxsize=1)
def _cached_schema_text() -> str:
    # Cache the text rather than the dict so no caller can mutate the shared schema.
    return SCHEMA_PATH.read_text(encoding="utf-8")


def validate(report: Any, schema: dict | None = None) -> list[str]:
    """Return human-readable problems with ``report``; an empty list means it is valid.

    Never raises on any JSON value. ``schema`` defaults to schema.json.
    """
    if schema is None:
        schema = json.loads(_cached_schema_text())
    problems: list[str] = []
    try:
        _check(report, schema, "", schema, problems)
    except _TooMany:
        problems.append(f"... stopped after {MAX_PROBLEMS} problems")
    return problems


class _TooMany(Exception):
    """Raised internally to stop collecting once MAX_PROBLEMS is reached."""


def _add(problems: list[str], path: str, message: str) -> None:
    if len(problems) >= MAX_PROBLEMS:
        raise _TooMany
    problems.append(f"{path or 'report'}: {message}")


def _show(value: Any) -> str:
    """A short repr for messages; hostile values may be huge or have a broken repr."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any failure just means a generic description
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _child(path: str, key: Any) -> str:
    # Plain names read as attributes; anything else (dashes, brackets, dots) as a subscript.
    if isinstance(key, int):
        return f"{path}[{key}]"
    if isinstance(key, str) and _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{_show(key)}]"


# --- types ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python but not a number in JSON; NaN and infinities
    # cannot be written as JSON at all, so they are never valid.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        # JSON Schema counts 1.0 as an integer.
        return _is_number(value) and (isinstance(value, int) or float(value).is_integer())
    if name == "number":
        return _is_number(value)
    checks = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    check = checks.get(name)
    return bool(check and check(value))


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON Schema defines it: true is not 1, but 1.0 is 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


# --- patterns ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern:
    return re.compile(_ecma(pattern))


def _ecma(pattern: str) -> str:
    r"""Give ``$`` and ``.`` their ECMA-262 meaning, as JSON Schema specifies: ``$`` matches only at the very
    end (Python's also matches before a trailing newline, which would let ``"a/b\n"`` through as a case id),
    and ``.`` matches no line terminator (Python's matches ``\r``, U+2028 and U+2029)."""
    out = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        elif char == "." and not in_class:
            out.append("[^\n\r\u2028\u2029]")
            continue
        out.append(char)
    return "".join(out)


# --- the walk ------------------------------------------------------------------------------


def _check(value: Any, schema: Any, path: str, root: dict, problems: list[str]) -> None:
    if schema is True:
        return
    if schema is False:
        _add(problems, path, "is not allowed here")
        return
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), path, root, problems)
    if "type" in schema and not _check_type(value, schema["type"], path, problems):
        return  # every other keyword would only repeat the type problem
    _check_value(value, schema, path, problems)
    if isinstance(value, str):
        _check_string(value, schema, path, problems)
    elif _is_number(value):
        _check_number(value, schema, path, problems)
    elif isinstance(value, list):
        _check_array(value, schema, path, root, problems)
    elif isinstance(value, dict):
        _check_object(value, schema, path, root, problems)
    _check_alternatives(value, schema, path, root, problems)


def _check_number(value: Any, schema: dict, path: str, problems: list) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        _add(problems, path, f"{_show(value)} is less than the minimum {schema['minimum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        _add(problems, path, f"{_show(value)} is not above {schema['exclusiveMinimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        _add(problems, path, f"{_show(value)} is more than the maximum {schema['maximum']}")


def _resolve(ref: str, root: dict) -> Any:
    # Only local references ("#/$defs/name") are used; anything else is a schema bug.
    if not ref.startswith("#/"):
        raise ValueError(f"unsupported $ref {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _check_type(value: Any, expected: str | list[str], path: str, problems: list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else list(expected)
    if any(_is_type(value, name) for name in names):
        return True
    _add(problems, path, f"{_show(value)} is not of type {' or '.join(names)}")
    return False


def _check_value(value: Any, schema: dict, path: str, problems: list[str]) -> None:
    if "const" in schema and not _json_equal(value, schema["const"]):
        _add(problems, path, f"{_show(value)} is not {json.dumps(schema['const'])}")
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        options = ", ".join(str(option) for option in schema["enum"])
        _add(problems, path, f"{_show(value)} is not one of {options}")


def _check_string(value: str, schema: dict, path: str, problems: list[str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        _add(problems, path, f"{_show(value)} is shorter than {schema['minLength']} character(s)")
    if "pattern" in schema and not _compile(schema["pattern"]).search(value):
        _add(problems, path, f"{_show(value)} does not match {schema['pattern']}")


def _check_array(value: list, schema: dict, path: str, root: dict, problems: list[str]) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        _add(problems, path, f"has {len(value)} item(s), at least {schema['minItems']} required")
    if "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], _child(path, index), root, problems)


def _check_object(value: dict, schema: dict, path: str, root: dict, problems: list[str]) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            _add(problems, path, f"missing required field {name!r}")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], _child(path, key), root, problems)
        elif extra is False:
            _add(problems, path, f"unexpected field {_show(key)}")
        else:
            _check(item, extra, _child(path, key), root, problems)


def _check_alternatives(value: Any, schema: dict, path: str, root: dict, problems: list[str]) -> None:
    # Each branch is checked on its own; only the verdict and one sample problem are reported.
    for keyword in ("anyOf", "oneOf"):
        if keyword not in schema:
            continue
        results = [_branch_problems(value, branch, path, root) for branch in schema[keyword]]
        matches = sum(1 for result in results if not result)
        if keyword == "anyOf" and matches == 0:
            sample = next((result[0] for result in results if result), "no forms allowed")
            _add(problems, path, f"matches none of the allowed forms (first: {sample})")
        elif keyword == "oneOf" and matches != 1:
            _add(problems, path, f"matches {matches} of the allowed forms, exactly one required")


def _branch_problems(value: Any, branch: Any, path: str, root: dict) -> list[str]:
    found: list[str] = []
    try:
        _check(value, branch, path, root, found)
    except _TooMany:
        pass  # the branch has already failed; the count is enough
    return found
