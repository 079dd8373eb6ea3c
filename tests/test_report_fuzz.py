"""Property-based fuzzing of the report tools (hypothesis).

1. Corrupted report files: ``read_report`` either returns a valid report that every renderer handles, or
   raises ``ReportError`` with one line naming the file; no other exception escapes.
2. The same files through the command line: exit status 2, one line on standard error, nothing written.
3. Hostile but valid reports (markup, control and bidi characters, lone surrogates in every free-text
   field): no markup injection in HTML or Markdown, no forged lines in diff text or KTAP, JSON that
   round-trips, and writing never fails.

The bugs these properties found are kept as plain regression tests at the end. No example database is kept
(``database=None``) and hypothesis's cache directory is a temporary one.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, configuration, given, settings
from hypothesis import strategies as st
from reportdata import markdown_tables, model, models, sample_report

from conformance.cli import main
from conformance.report import diff_render
from conformance.report.diff import diff_reports
from conformance.report.html import FILTER_SCRIPT, render_html
from conformance.report.ktap import render_ktap
from conformance.report.load import ReportError, read_report
from conformance.report.markdown import render_markdown
from conformance.report.matrix import build_matrix, matrix_document
from conformance.report.matrix_html import render_matrix_html
from conformance.report.matrix_markdown import render_matrix_markdown
from conformance.report.schema import validate
from conformance.report.text import visible
from conformance.report.write import platform_id_problem, write_matrix, write_report

# database=None keeps no examples, but hypothesis still caches source constants (its pytest plugin, at
# collection) and Unicode tables in its home directory, ./.hypothesis by default: point it at a temporary
# one before collection ends, and remove that when the process exits.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="hypothesis-home-")
configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)


def _fuzz(max_examples):
    return settings(
        database=None,
        deadline=None,
        max_examples=max_examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def workdir():
    # Module-scoped, so hypothesis sees no function-scoped fixture; removed whatever happens.
    path = Path(tempfile.mkdtemp(prefix="report-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _fresh_dir(workdir):
    path = Path(tempfile.mkdtemp(dir=workdir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- shared checks --------------------------------------------------------------------------------------


def _assert_one_line_naming(message, path):
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message and "\r" not in message, message
    assert len(message.splitlines()) == 1, message


def _other_than(report):
    """The sample, under a platform id distinct from ``report``'s, to put beside it."""
    other = sample_report()
    if other["platform"]["id"] == report["platform"]["id"]:
        other["platform"]["id"] += "-other"
    return other


def _render_everything(report):
    """Every renderer on a valid report document; returns nothing, raises whatever they raise."""
    assert validate(report) == []
    render_markdown(model(report))
    render_html(model(report))
    render_ktap(model(report))
    other = _other_than(report)
    matrix = build_matrix(models([("fuzzed.json", report), ("sample.json", other)]))
    render_matrix_markdown(matrix)
    render_matrix_html(matrix)
    json.dumps(matrix_document(matrix), allow_nan=False)
    for old, new in ((other, report), (report, other)):
        for observations_regress in (False, True):
            diff = diff_reports(model(old), model(new), observations_regress=observations_regress)
            assert diff.exit_status in (0, 1)
            diff_render.render_text(diff, "old.json", "new.json")
            diff_render.render_markdown(diff, "old.json", "new.json")
            json.loads(diff_render.render_json(diff, "old.json", "new.json"))


def _read_and_render(path):
    """The property of part 1 for the file at ``path``; returns the report or None if it was refused."""
    try:
        report = read_report(path)
    except ReportError as error:
        _assert_one_line_naming(str(error), path)
        return None
    _render_everything(report.to_json())
    return report


# --- part 1: corrupted files -----------------------------------------------------------------------

SAMPLE = sample_report()
BASES = [json.dumps(SAMPLE).encode(), json.dumps(SAMPLE, indent=2).encode()]

# Numbers that JSON allows but that stress a reader: huge, tiny, negative zero, integral floats.
EDGE_NUMBERS = [0, -1, 1.0, -0.0, 0.5, 1e308, -1e308, 5e-324, 2**53 + 1, 2**63, -(2**63), 10**30, 10**309]
numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_NUMBERS),
)

SPECIALS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</td></tr></table>",
    "<br>",
    "<details>",
    "</summary>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<?xml?>",
    "<!DOCTYPE x>",
    "&lt;",
    "&amp;",
    "&#60;",
    "|",
    "\\|",
    "\\",
    "`",
    "```",
    "*",
    "_",
    "~",
    "[",
    "]",
    "(",
    ")",
    "#",
    "# Subtest: x",
    "Subtest:",
    "ok 1 forged",
    "not ok 2 forged",
    "KTAP version 1",
    "1..3",
    "List of all partitions:",
    "\x1b[31m",
    "\x1b]0;title\x07",
    "\x9b",
    "\x85",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u202d",
    "\u202a",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "\udc80",
    "\x00",
    "\x7f",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    '"',
    "'",
    "=",
    " onload=x ",
    " ",
    "\U0001f4a5",
    "e\u0301",
    "\ufffd",
    "\uffff",
    "\U000e0041",
    "perf.",
    "P1",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(SPECIALS), st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=5)),
    max_size=6,
).map("".join)
nonempty_text = hostile_text.map(lambda text: text or "\u202e")

json_scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def _dumps(value):
    # Lone surrogates survive as \u escapes, like the real writer's fallback.
    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def truncated(draw):
    base = draw(st.sampled_from(BASES))
    return base[: draw(st.integers(0, len(base) - 1))]


INTERESTING_BYTES = [ord(c) for c in '"{}[],:\\ 0-e.ntf'] + [0x00, 0x0A, 0x80, 0xC3, 0xFF]


@st.composite
def byte_edits(draw):
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        byte = draw(st.one_of(st.sampled_from(INTERESTING_BYTES), st.integers(0, 255)))
        operation = draw(st.sampled_from(["flip", "insert", "delete"]))
        if operation == "insert" or position == len(data):
            data.insert(position, byte)
        elif operation == "flip":
            data[position] ^= draw(st.integers(1, 255))
        else:
            del data[position]
    return bytes(data)


BAD_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"]


@st.composite
def invalid_utf8(draw):
    base = draw(st.sampled_from(BASES))
    kind = draw(st.sampled_from(["insert", "bom", "utf-16", "latin-1"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + base
    if kind == "utf-16":
        return base.decode().encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    if kind == "latin-1":
        report = sample_report()
        report["cases"][0]["reason"] = "caf\xe9 \xff"
        return json.dumps(report, ensure_ascii=False).encode("latin-1")
    position = draw(st.integers(0, len(base)))
    return base[:position] + draw(st.sampled_from(BAD_UTF8)) + base[position:]


NUMBER_TOKEN = re.compile(rb"(?<=: )-?[0-9][0-9.eE+-]*")
NUMBER_REPLACEMENTS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"-0",
    b"1E2",
    b"0.0e0",
    b"01",
    b"1.",
    b"+1",
    b".5",
    b"0x10",
    b"1" * 400,
    b"1" * 5000,
    b"true",
    b"null",
    b'"1"',
]


@st.composite
def constants(draw):
    base = draw(st.sampled_from(BASES))
    tokens = list(NUMBER_TOKEN.finditer(base))
    token = draw(st.sampled_from(tokens))
    replacement = draw(st.sampled_from(NUMBER_REPLACEMENTS))
    return base[: token.start()] + replacement + base[token.end() :]


def _all_paths(value, prefix=()):
    """Every path (a tuple of keys and indexes) to a node of ``value``, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _all_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _all_paths(item, (*prefix, index))


SAMPLE_PATHS = list(_all_paths(SAMPLE))


def _at(value, path):
    for part in path:
        value = value[part]
    return value


OBJECT_PATHS = [path for path in SAMPLE_PATHS if isinstance(_at(SAMPLE, path), dict) and _at(SAMPLE, path)]


def _dumps_duplicating(value, target, key, extra, position):
    """JSON text of ``value`` where the object at path ``target`` repeats ``key`` (with value ``extra``)."""

    def below(part):
        return target[1:] if target and target[0] == part else None

    if isinstance(value, dict):
        items = [f"{json.dumps(k)}: {_dumps_duplicating(v, below(k), key, extra, position)}" for k, v in value.items()]
        if target == ():
            items.insert(min(position, len(items)), f"{json.dumps(key)}: {json.dumps(extra)}")
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dumps_duplicating(v, below(i), key, extra, position) for i, v in enumerate(value)) + "]"
    return json.dumps(value)


@st.composite
def duplicate_keys(draw):
    path = draw(st.sampled_from(OBJECT_PATHS))
    node = _at(SAMPLE, path)
    key = draw(st.sampled_from(sorted(node)))
    extra = draw(st.one_of(st.just(node[key]), json_values))
    position = draw(st.integers(0, len(node)))
    return _dumps_duplicating(SAMPLE, path, key, extra, position).encode("utf-8", "surrogatepass")


@st.composite
def deep_nesting(draw):
    depth = draw(st.one_of(st.integers(1, 3000), st.sampled_from([10_000, 100_000])))
    shape = draw(st.sampled_from(["array", "unclosed", "object", "inside"]))
    if shape == "array":
        return b"[" * depth + b"]" * depth
    if shape == "unclosed":
        return b"[" * depth
    if shape == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    base = draw(st.sampled_from(BASES))
    nested = b"[" * depth + b"]" * depth
    field = draw(st.sampled_from([b'"gc.cycles": 3', b'"uid": 0', b'"schema_version": 1', b'"argv": ["-n", "2"]']))
    name = field.split(b":")[0]
    return base.replace(field, name + b": " + nested, 1)


@st.composite
def arbitrary_json_files(draw):
    value = draw(json_values)
    if draw(st.booleans()):
        # Past the schema version check, so the validator sees arbitrary fields.
        extra = draw(st.dictionaries(st.sampled_from(sorted(SAMPLE)), json_values, max_size=6))
        value = {"schema_version": 1, **extra}
    return _dumps(value)


def _same_kind(value):
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, (int, float)):
        return numbers
    if isinstance(value, str):
        return hostile_text
    if value is None:
        return st.one_of(st.none(), hostile_text)
    if isinstance(value, list):
        return st.lists(hostile_text, max_size=3)
    return st.dictionaries(hostile_text, json_values, max_size=3)


@st.composite
def structural(draw):
    """The sample as JSON, with one to three fields deleted, replaced or added anywhere in it."""
    report = sample_report()
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_all_paths(report))[1:]
        path = draw(st.sampled_from(paths))
        parent, last = _at(report, path[:-1]), path[-1]
        # Same-kind replacements mostly keep the report valid, so they are the likeliest.
        operation = draw(st.sampled_from(["delete", "replace", *["same-kind"] * 4, "add-key", "duplicate", "swap"]))
        if operation == "delete":
            del parent[last]
        elif operation == "replace":
            parent[last] = draw(json_values)
        elif operation == "same-kind":
            parent[last] = draw(_same_kind(parent[last]))
        elif operation == "add-key" and isinstance(parent, dict):
            parent[draw(hostile_text)] = draw(json_values)
        elif operation == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        else:
            other = draw(st.sampled_from(paths))
            with contextlib.suppress(KeyError, IndexError, TypeError):
                parent[last] = copy.deepcopy(_at(report, other))
    return _dumps(report)


corrupted_files = st.one_of(
    truncated(),
    byte_edits(),
    invalid_utf8(),
    constants(),
    duplicate_keys(),
    deep_nesting(),
    arbitrary_json_files(),
    structural(),
    st.sampled_from([b"", b" \n", b"\x00", b"null", b"{}", b"[]", b'"report"', b"1", b"{" * 3, b"\xef\xbb\xbf{}"]),
)


@_fuzz(max_examples=300)
@given(data=corrupted_files)
def test_a_corrupted_file_is_refused_in_one_line_or_renders_everywhere(workdir, data):
    path = workdir / "fuzzed.json"
    path.write_bytes(data)
    _read_and_render(path)


# Well-formed JSON with fields deleted, replaced or added: about one in ten stays valid and reaches the renderers.
@_fuzz(max_examples=150)
@given(data=structural())
def test_a_mutated_report_is_refused_in_one_line_or_renders_everywhere(workdir, data):
    path = workdir / "mutated.json"
    path.write_bytes(data)
    _read_and_render(path)


# --- part 2: the same files through the command line -----------------------------------------------


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(arg) for arg in argv])
    return status, out.getvalue(), err.getvalue()


@_fuzz(max_examples=15)
@given(data=corrupted_files)
def test_the_cli_refuses_a_corrupted_file_in_one_line(workdir, data):
    with _fresh_dir(workdir) as scratch:
        bad, good = scratch / "bad.json", scratch / "good.json"
        bad.write_bytes(data)
        good.write_bytes(BASES[0])
        try:
            read_report(bad)
        except ReportError:
            pass
        else:
            assume(False)  # a valid file is not this test's business
        out = scratch / "out"
        for argv in (
            ["diff", bad, good],
            ["diff", good, bad],
            ["matrix", "--out", out, bad],
            ["matrix", "--out", out, good, bad],
            ["ktap", bad],
            ["render", bad, "--out", out],
        ):
            status, stdout, stderr = _cli(argv)
            assert status == 2, (argv, stderr)
            assert stderr.startswith(f"conformance: {argv[0]}: {bad}: "), (argv, stderr)
            assert stderr.endswith("\n") and stderr.count("\n") == 1, (argv, stderr)
            assert stdout == "", argv
            assert not out.exists() or not any(out.iterdir()), argv


# --- part 3: hostile but valid reports -------------------------------------------------------------

SAMPLE_STRINGS = frozenset(
    item for path in SAMPLE_PATHS for item in (_at(SAMPLE, path), path[-1] if path else None) if isinstance(item, str)
)
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _without_line_terminators(text):
    # A case id's params may hold anything but what ECMA-262's "." refuses (the schema's id pattern).
    return re.sub("[\n\r\u2028\u2029]", " ", text)


def plain_injective(text, flat=False):
    """A plain stand-in that keeps (in)equality with the sample's strings and with each other."""
    del flat
    if text == "" or text.strip() in SAMPLE_STRINGS:
        return text
    return "p" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def plain_lines(text, flat=False):
    """Plain text with the same line breaks (as KTAP splits reasons) and the same emptiness."""
    if flat:
        return "x" * len(text)
    return "\n".join("x" * len(part) for part in LINE_BREAK.split(text))


def _identity(text, flat=False):
    del flat
    return text


@st.composite
def hostile_specs(draw, platform_id=nonempty_text):
    """The free text of a report, to be put into the sample's structure by ``build``."""
    cases = []
    for case in SAMPLE["cases"]:
        cases.append(
            {
                "params": draw(hostile_text.map(_without_line_terminators)),
                "reason": draw(hostile_text),
                "references": draw(st.lists(nonempty_text, min_size=1, max_size=3)),
                "observations": draw(st.lists(st.tuples(hostile_text, json_scalars), max_size=3)),
                "expectation": (
                    (draw(hostile_text), draw(st.lists(hostile_text, max_size=2))) if case["expectation"] else None
                ),
            }
        )
    return {
        "suite": (draw(nonempty_text), draw(nonempty_text), draw(st.one_of(st.none(), hostile_text))),
        "platform": {
            "id": draw(platform_id),
            "os": draw(nonempty_text),
            **{key: draw(hostile_text) for key in ("release", "kernel", "arch")},
            **{
                section: {key: draw(hostile_text) for key in SAMPLE["platform"][section]}
                for section in ("libc", "python", "filesystem")
            },
        },
        "capabilities": draw(st.dictionaries(hostile_text, st.tuples(st.booleans(), hostile_text), max_size=3)),
        "run": (draw(nonempty_text), draw(st.lists(hostile_text, max_size=3))),
        "cases": cases,
    }


def build(spec, text=_identity):
    """A valid report: the sample with every free-text field taken from ``spec`` through ``text``."""
    report = sample_report()
    name, version, commit = spec["suite"]
    report["suite"] = {"name": text(name), "version": text(version), "commit": None if commit is None else text(commit)}
    platform = report["platform"]
    for key, value in spec["platform"].items():
        platform[key] = {k: text(v) for k, v in value.items()} if isinstance(value, dict) else text(value)
    platform["capabilities"] = {
        text(name): {"supported": supported, "reason": text(reason)}
        for name, (supported, reason) in spec["capabilities"].items()
    }
    started, argv = spec["run"]
    report["run"]["started"], report["run"]["argv"] = text(started), [text(arg) for arg in argv]
    for index, (case, free) in enumerate(zip(report["cases"], spec["cases"])):
        case["params"] = text(free["params"], flat=True)
        case["id"] = f"{case['area']}/{case['name']}" + (f"[{case['params']}]" if case["params"] else "")
        case["reason"] = text(free["reason"])
        case["references"] = [text(ref) for ref in free["references"]]
        case["observations"] = {
            f"{case['area']}.o{index}_{number}[{text(suffix, flat=True)}]": text(value)
            if isinstance(value, str)
            else value
            for number, (suffix, value) in enumerate(free["observations"])
        }
        if free["expectation"] is not None:
            reason, references = free["expectation"]
            case["expectation"] = {
                "outcome": case["expectation"]["outcome"],
                "reason": text(reason),
                "references": [text(ref) for ref in references],
            }
    assert validate(report) == [], validate(report)
    return report


class _Markup(HTMLParser):
    """Every tag, attribute and non-element construct of a page, as the browser-like parser sees them."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.tags, self.other, self.text = [], [], []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag):
        self.tags.append(("/" + tag, []))

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.other.append(("comment", data))

    def handle_decl(self, decl):
        self.other.append(("decl", decl))

    def handle_pi(self, data):
        self.other.append(("pi", data))

    def unknown_decl(self, data):
        self.other.append(("unknown", data))

    def signature(self):
        """(tag, attribute, value) triples; class values split into tokens, title values (report text) elided."""
        found = set()
        for tag, attrs in self.tags:
            found.add((tag, None, None))
            for name, value in attrs:
                if name == "title":
                    found.add((tag, name, "*"))
                elif name == "class":
                    found.update((tag, name, token) for token in (value or "").split())
                else:
                    found.add((tag, name, value))
        return found


def _plain_variants():
    """Plain reports covering the renderers' branches: the allowed markup is what these produce."""
    empty = sample_report()
    empty["platform"]["id"] = "empty"
    empty["platform"]["capabilities"] = {}
    empty["cases"] = []
    empty["suite"]["commit"] = None
    partial = sample_report()
    partial["platform"]["id"] = "partial"
    del partial["cases"][4]
    partial["cases"][0]["observations"] = {}
    partial["cases"][1]["reason"] = ""
    partial["cases"][0]["outcome"] = "fail"
    return [sample_report(), empty, partial]


def _allowed_markup():
    sample, empty, partial = _plain_variants()
    pages = [render_html(model(report)) for report in (sample, empty, partial)]
    pages.append(render_matrix_html(build_matrix(models([("a.json", sample), ("b.json", partial), ("c.json", empty)]))))
    pages.append(render_matrix_html(build_matrix(models([("a.json", sample), ("b.json", _other_than(sample))]))))
    pages.append(render_matrix_html(build_matrix(models([("c.json", empty)]))))
    signature, other = set(), set()
    for page in pages:
        markup = _Markup(page)
        signature |= markup.signature()
        other |= set(markup.other)
    return signature, other


ALLOWED_SIGNATURE, ALLOWED_OTHER = _allowed_markup()
RENDERER_TAGS = ("<br>", "<details>", "</details>", "<summary>", "</summary>")
BIDI_CONTROLS = frozenset(chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def _assert_html_is_ours(page, report=None):
    markup = _Markup(page)
    extra = markup.signature() - ALLOWED_SIGNATURE
    assert not extra, sorted(extra, key=repr)[:5]
    assert set(markup.other) <= ALLOWED_OTHER, set(markup.other) - ALLOWED_OTHER
    # The only script is the single-run page's fixed filter, once.
    assert page.count("<script") == len([tag for tag, _ in markup.tags if tag == "script"]) <= 1
    assert "<script" not in page or f"<script>{FILTER_SCRIPT}</script>" in page
    for tag, attrs in markup.tags:
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)
    # No raw control character: HTML escaping keeps them, so the renderers show them as escapes.
    text = "".join(markup.text) + "".join(value or "" for _, attrs in markup.tags for _, value in attrs)
    assert not [char for char in set(text) if char not in "\t\n" and unicodedata.category(char) in ("Cc", "Cs")]
    assert not BIDI_CONTROLS & set(text)
    if report is not None:
        # Escaping loses nothing: the platform id reads back whole, its control characters as visible escapes.
        assert visible(report["platform"]["id"], keep="\t\n") in "".join(markup.text)


def _assert_markdown_is_ours(markdown):
    for match in re.finditer("<", markdown):
        assert markdown.startswith(RENDERER_TAGS, match.start()), markdown[match.start() : match.start() + 40]
    assert "\r" not in markdown
    for table in markdown_tables(markdown):
        widths = {len(row) for row in table}
        assert len(widths) == 1, table


def _assert_one_line_per_line(text):
    for char in set(text):
        if char != "\n":
            assert unicodedata.category(char) not in ("Cc", "Zl", "Zp", "Cs"), repr(char)
            assert char not in BIDI_CONTROLS, repr(char)
    assert text.splitlines() == text.split("\n")[:-1]


KTAP_LINE = re.compile(r"(  )*(KTAP version 1|1\.\.\d+|#.*|(not )?ok \d+ [^#]*( # (XFAIL|XPASS|SKIP|ERROR)( [^#]*)?)?)")


KUNIT_END_MARKERS = ("List of all partitions:", "Kernel panic - not syncing: VFS:", "reboot: System halted")


def _as_json(value):
    return json.loads(json.dumps(value))


def _line_count(text):
    return len(text.split("\n"))


@_fuzz(max_examples=50)
@given(spec=hostile_specs())
def test_hostile_text_never_becomes_markup_or_a_line(spec):
    report = build(spec)
    plain = build(spec, plain_injective)
    other = _other_than(report)

    # HTML, single and matrix: only the tags and attributes the renderers write for plain reports.
    _assert_html_is_ours(render_html(model(report)), report)
    matrix = build_matrix(models([("hostile.json", report), ("sample.json", other)]))
    _assert_html_is_ours(render_matrix_html(matrix))

    # Markdown, single, matrix and diff: no raw "<" from report text, constant cells per table, and as many
    # lines as for the plain stand-in.
    plain_matrix = build_matrix(models([("hostile.json", plain), ("sample.json", _other_than(plain))]))
    markdown = render_markdown(model(report))
    _assert_markdown_is_ours(markdown)
    assert _line_count(markdown) == _line_count(render_markdown(model(plain)))
    matrix_markdown = render_matrix_markdown(matrix)
    _assert_markdown_is_ours(matrix_markdown)
    assert _line_count(matrix_markdown) == _line_count(render_matrix_markdown(plain_matrix))

    for old, new, plain_old, plain_new in (
        (other, report, _other_than(plain), plain),
        (report, other, plain, _other_than(plain)),
    ):
        diff, plain_diff = diff_reports(model(old), model(new)), diff_reports(model(plain_old), model(plain_new))
        for source in ("old.json", "we\u202eird\n<b>|.json"):
            diff_markdown = diff_render.render_markdown(diff, source, "new.json")
            _assert_markdown_is_ours(diff_markdown)
            assert _line_count(diff_markdown) == _line_count(
                diff_render.render_markdown(plain_diff, source, "new.json")
            )
            text = diff_render.render_text(diff, source, "new.json")
            _assert_one_line_per_line(text)
            assert _line_count(text) == _line_count(diff_render.render_text(plain_diff, source, "new.json"))
            document = json.loads(diff_render.render_json(diff, source, "new.json"))
            old_ids = {case["id"] for case in old["cases"]}
            new_ids = {case["id"] for case in new["cases"]}
            ids = [change["id"] for change in document["cases"]]
            assert len(ids) == len(set(ids))
            # The outcomes are the sample's, so only ids differ; compared as JSON reads them back (two
            # adjacent lone surrogates that form a pair read back as one character).
            assert set(ids) == set(_as_json(sorted(old_ids ^ new_ids)))
            assert document["old"]["platform"] == _as_json(old["platform"]["id"])
            assert document["new"]["platform"] == _as_json(new["platform"]["id"])
            assert document["old"]["source"] == source


@_fuzz(max_examples=50)
@given(spec=hostile_specs())
def test_hostile_text_never_forges_a_ktap_line(spec):
    ktap = render_ktap(model(build(spec)))
    _assert_one_line_per_line(ktap)
    lines = ktap.split("\n")[:-1]
    for line in lines:
        assert KTAP_LINE.fullmatch(line), line
        # kunit_parser.py reads "# Subtest:" as a nested test's header and stops at these markers.
        assert not re.match(r"\s*#\s*subtest\s*:", line, re.IGNORECASE), line
        assert not any(marker in line for marker in KUNIT_END_MARKERS), line
    plan = re.fullmatch(r"1\.\.(\d+)", lines[1])
    assert plan and int(plan.group(1)) == sum(1 for line in lines if re.match(r"(not )?ok \d+ ", line))
    assert _line_count(ktap) == _line_count(render_ktap(model(build(spec, plain_lines))))


def _file_safe(text):
    # The writer refuses the others on purpose (test_render_refuses_a_platform_id_that_cannot_name_a_file).
    return not platform_id_problem(text)


@_fuzz(max_examples=25)
@given(spec=hostile_specs(platform_id=nonempty_text.filter(_file_safe)))
def test_hostile_reports_are_written_and_read_back(workdir, spec):
    report = build(spec)
    with _fresh_dir(workdir) as out:
        paths = write_report(model(report), out)
        # What JSON can say: two adjacent lone surrogates that form a pair read back as one character.
        assert read_report(paths["json"]).to_json() == _as_json(report)
        for path in paths.values():
            assert path.stat().st_size > 0
        other = _other_than(report)
        written = write_matrix(build_matrix(models([("hostile.json", report), ("sample.json", other)])), out / "matrix")
        document = json.loads(written["json"].read_bytes())
        assert [platform["id"] for platform in document["platforms"]] == [
            report["platform"]["id"],
            other["platform"]["id"],
        ]
        assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


def _cli_to_utf8(argv):
    """Like ``_cli``, but standard output is a strict UTF-8 stream, as on a UTF-8 terminal."""
    raw, err = io.BytesIO(), io.StringIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(arg) for arg in argv])
    out.flush()
    return status, raw.getvalue().decode("utf-8"), err.getvalue()


@_fuzz(max_examples=10)
@given(spec=hostile_specs(platform_id=nonempty_text.filter(_file_safe)))
def test_the_cli_handles_hostile_reports(workdir, spec):
    report = build(spec)
    with _fresh_dir(workdir) as scratch:
        hostile, good = scratch / "hostile.json", scratch / "good.json"
        hostile.write_text(json.dumps(report), encoding="ascii")
        good.write_text(json.dumps(_other_than(report)), encoding="ascii")
        status, ktap, stderr = _cli_to_utf8(["ktap", hostile])
        assert (status, stderr) == (0, "")
        _assert_one_line_per_line(ktap)
        for form in ("text", "markdown", "json"):
            for old, new in ((good, hostile), (hostile, good)):
                status, out, stderr = _cli_to_utf8(["diff", old, new, "--format", form])
                assert status in (0, 1) and stderr == "", (form, stderr)
                if form == "text":
                    _assert_one_line_per_line(out)
        status, _, stderr = _cli_to_utf8(["matrix", "--out", scratch / "matrix", hostile, good])
        assert (status, stderr) == (0, ""), stderr
        status, _, stderr = _cli_to_utf8(["render", hostile, "--out", scratch / "render"])
        assert (status, stderr) == (0, ""), stderr


# --- regressions: what these properties found -----------------------------------------------------


def test_an_integer_too_long_for_python_is_refused_in_one_line(workdir):
    path = workdir / "digits.json"
    path.write_text(json.dumps(SAMPLE).replace('"uid": 0', '"uid": ' + "1" * 5000), encoding="utf-8")
    with pytest.raises(ReportError) as raised:
        read_report(path)
    _assert_one_line_naming(str(raised.value), path)


def test_a_duration_beyond_a_float_renders():
    report = sample_report()
    report["run"]["duration"] = 10**309
    assert validate(report) == []
    assert f"| Duration | {10**309} s |" in render_markdown(model(report))
    render_html(model(report))


@pytest.mark.parametrize(
    "platform_id", ["linux/x86_64", ".hidden", "linux-\ud800", "linux-\udc80", "tab\tid"],
    ids=["slash", "dot", "lone surrogate", "undecodable byte", "control character"],
)
def test_render_refuses_a_platform_id_that_cannot_name_a_file(workdir, platform_id):
    report = sample_report()
    report["platform"]["id"] = platform_id
    assert validate(report) == []
    with _fresh_dir(workdir) as scratch:
        path = scratch / "valid.json"
        path.write_text(json.dumps(report), encoding="utf-8")
        status, _, stderr = _cli(["render", path, "--out", scratch / "out"])
        assert status == 2
        assert stderr.startswith(f"conformance: render: {path}: platform id ") and stderr.count("\n") == 1, stderr
        assert not (scratch / "out").exists() or not any((scratch / "out").iterdir())


def test_matrix_and_diff_agree_that_negative_zero_differs():
    old, new = sample_report(), sample_report()
    old["cases"][2]["observations"]["locks.upgrade_seconds"] = 0.0
    new["cases"][2]["observations"]["locks.upgrade_seconds"] = -0.0
    new["platform"]["id"] = "other"
    matrix = build_matrix(models([("old.json", old), ("new.json", new)]))
    (row,) = [row for row in matrix.observations if row.key == "locks.upgrade_seconds"]
    assert row.differs
    assert [change.key for change in diff_reports(model(old), model(new)).observations] == ["locks.upgrade_seconds"]


def test_a_path_with_a_nul_byte_is_refused():
    with pytest.raises(ReportError, match="NUL"):
        read_report("a\0b")
