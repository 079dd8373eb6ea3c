"""Self-tests for the cross-platform matrix: the model, its Markdown and HTML pages, and their escaping."""

from __future__ import annotations

import html.parser
import json
import re

from reportdata import HOSTILE, hostile_report, markdown_tables, models, sample_report

from conformance.report.matrix import build_matrix, matrix_document
from conformance.report.matrix_html import render_matrix_html
from conformance.report.matrix_markdown import render_matrix_markdown
from conformance.report.vocabulary import MISSING, NOT_RUN
from conformance.report.write import write_matrix


def two_platforms():
    """The sample on Linux, and a FreeBSD that failed one case, skipped another and observed differently."""
    linux = sample_report()
    freebsd = sample_report()
    freebsd["platform"].update(id="freebsd-15.0-amd64-py311-root-ufs", os="freebsd", release="15.0-RELEASE")
    first = freebsd["cases"][0]
    first["outcome"], first["reason"] = "fail", "assert 252 == 253"
    first["observations"]["rights.max_fds_per_message[stream]"] = 252
    del freebsd["cases"][1]  # rights/test_truncation[dgram] did not run there
    freebsd["cases"][1]["observations"]["locks.upgrade_errno"] = "EDEADLK"  # null on Linux
    return [("linux.json", linux), ("freebsd.json", freebsd)]


def _row(matrix, case_id):
    return next(row for row in matrix.rows() if row.id == case_id)


def _observation(matrix, key):
    return next(row for row in matrix.observations if row.key == key)


def test_cases_line_up_by_id_and_a_case_not_run_has_no_cell():
    matrix = build_matrix(models(two_platforms()))
    assert [column.id for column in matrix.columns] == ["linux-6.18.44-fc-v669-x86_64-py311-root",
                                                        "freebsd-15.0-amd64-py311-root-ufs"]
    assert list(matrix.areas) == ["gc", "locks", "rights"]
    assert len(matrix.rows()) == 6
    assert _row(matrix, "rights/test_per_message_maximum[stream]").outcomes == ["pass", "fail"]
    truncation = _row(matrix, "rights/test_truncation[dgram]")
    assert truncation.cells[1] is None and truncation.outcomes == ["fail", NOT_RUN] and truncation.differs
    assert not _row(matrix, "gc/test_cycle_collected[seqpacket]").differs


def test_an_observation_not_recorded_differs_from_a_recorded_null():
    matrix = build_matrix(models(two_platforms()))
    upgrade = _observation(matrix, "locks.upgrade_errno")
    assert upgrade.values == [None, "EDEADLK"] and upgrade.differs and upgrade.area == "locks"
    flag = _observation(matrix, "rights.truncated_flag[dgram]")
    assert flag.values == [True, MISSING] and flag.differs
    assert not _observation(matrix, "gc.cycles").differs


def test_values_compare_as_json_wrote_them():
    linux, freebsd = two_platforms()
    freebsd[1]["cases"][-1]["observations"]["gc.cycles"] = 3.0  # 3 on Linux
    freebsd[1]["cases"][3]["observations"]["locks.ofd_supported"] = 0  # false on Linux
    matrix = build_matrix(models([linux, freebsd]))
    assert _observation(matrix, "gc.cycles").differs
    assert _observation(matrix, "locks.ofd_supported").differs


def test_json_document_leaves_out_what_a_platform_did_not_run():
    document = matrix_document(build_matrix(models(two_platforms())))
    assert document["matrix_format_version"] == 1
    assert [p["id"] for p in document["platforms"]] == ["linux-6.18.44-fc-v669-x86_64-py311-root",
                                                        "freebsd-15.0-amd64-py311-root-ufs"]
    truncation = next(c for c in document["cases"] if c["id"] == "rights/test_truncation[dgram]")
    assert truncation["outcomes"] == {"linux-6.18.44-fc-v669-x86_64-py311-root": "fail"}
    json.dumps(document, allow_nan=False)


def test_markdown_shows_differences_and_collapses_what_passes_everywhere():
    page = render_matrix_markdown(build_matrix(models(two_platforms())))
    assert page.startswith("# Conformance matrix\n")
    assert "| test\\_truncation\\[dgram\\] | ❌ fail | ➖ not run |" in page
    assert "| test\\_per\\_message\\_maximum\\[stream\\] | ✅ pass | ❌ fail |" in page
    # A case that is not a pass everywhere stays visible even when every platform agrees.
    assert "| test\\_cycle\\_collected\\[seqpacket\\] | 💥 error | 💥 error |" in page
    assert "| locks.upgrade\\_errno | null | EDEADLK |" in page
    assert "| rights.truncated\\_flag\\[dgram\\] | true | ➖ not recorded |" in page
    assert "<summary>4 observations with the same value on every platform</summary>" in page
    assert "| rights.max\\_plus\\_one\\_errno\\[stream\\] | EINVAL |" in page


def test_markdown_lists_every_passing_case_in_a_collapsed_section():
    reports = two_platforms()
    reports[1][1]["cases"][0]["outcome"] = "pass"
    page = render_matrix_markdown(build_matrix(models(reports)))
    assert "<summary>1 case passing on every platform</summary>\n\n- test\\_per\\_message\\_maximum\\[stream\\]" in page


def test_markdown_tables_keep_their_shape_with_hostile_text():
    hostile = hostile_report()
    hostile["platform"]["id"] = "hostile"
    page = render_matrix_markdown(build_matrix(models([("a.json", sample_report()), (HOSTILE, hostile)])))
    for table in markdown_tables(page):
        assert len({len(row) for row in table}) == 1, table
    assert "<script" not in page and "<img" not in page


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes = set(), set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def _markup(page):
    parser = _Tags()
    parser.feed(page)
    return parser.tags, parser.attributes


def test_html_keeps_report_text_out_of_the_markup():
    hostile = hostile_report()
    hostile["platform"]["id"] = "hostile"
    plain_tags, plain_attributes = _markup(render_matrix_html(build_matrix(models(two_platforms()))))
    page = render_matrix_html(build_matrix(models([(HOSTILE, hostile), *two_platforms()])))
    tags, attributes = _markup(page)
    assert tags <= plain_tags and attributes <= plain_attributes
    assert "script" not in tags and not any(name.startswith("on") for name in attributes)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_html_rows_carry_the_classes_the_filters_select_on():
    page = render_matrix_html(build_matrix(models(two_platforms())))
    row = '<tr class="case has-fail has-not-run differs"><th scope="row"><code>test_truncation[dgram]</code>'
    assert row in page
    assert '<tr class="case has-error same">' in page
    assert '<td class="cell o-not-run" title="not run on freebsd-15.0-amd64-py311-root-ufs">not run</td>' in page
    for selector in ("#outcome-fail:checked ~ main tr.case:not(.has-fail)", "#only-diff:checked ~ main tr.same",
                     "#area-3:checked ~ main section.area:not(.a-3)"):
        assert selector in page
    # Every filter label points at an input that exists, in front of <main>.
    ids = set(re.findall(r'<input class="filter" type="(?:radio|checkbox)"(?: name="\w+")? id="([\w-]+)"', page))
    assert len(ids) == 1 + 3 + 1 + 7 + 1
    assert set(re.findall(r'<label for="([\w-]+)"', page)) == ids
    assert page.index('id="only-diff"') < page.index("<main>")


def test_html_cell_shows_reason_and_observations_on_hover_and_when_opened():
    page = render_matrix_html(build_matrix(models(two_platforms())))
    assert 'title="fail on freebsd-15.0-amd64-py311-root-ufs\nassert 252 == 253\n' in page
    assert "<details><summary>fail</summary><div class=\"reason\">assert 252 == 253</div>" in page
    assert "<li><code>rights.max_fds_per_message[stream]</code> = <code>252</code></li>" in page


def test_write_matrix_writes_three_files(tmp_path):
    paths = write_matrix(build_matrix(models(two_platforms())), tmp_path / "out")
    assert {path.name for path in paths.values()} == {"matrix.md", "matrix.html", "matrix.json"}
    assert json.loads(paths["json"].read_text())["matrix_format_version"] == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["matrix.html", "matrix.json", "matrix.md"]
