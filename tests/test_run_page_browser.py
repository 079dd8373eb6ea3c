"""The single-run page of the committed reference report in a real headless Chromium at 1,400 px: no horizontal
scroll, the summary grid first, failures above passes, the filters hiding and showing rows, the header row staying
in view, and a page short enough to read (the page before the summary grid and the filters: 2,246 px wide and
178,530 px tall for this report). A screenshot is kept (see browser.py for the browser and why Selenium).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from browser import WIDTH, browser_session
from reportdata import model

from conformance.report.html import render_html

REFERENCE = Path(__file__).resolve().parents[1] / "reports" / "linux-6.18.44-fc-v1272-x86_64-py311-root-ext4.json"
MAX_HEIGHT = 9_000  # a tenth of what the page measured before, at the least


@pytest.fixture(scope="module")
def browser():
    with browser_session() as session:
        yield session


@pytest.fixture(scope="module")
def document():
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page(browser, document, tmp_path_factory):
    path = tmp_path_factory.mktemp("run-page") / "run-page.html"
    path.write_text(render_html(model(document)), encoding="utf-8")
    browser.open(path)
    return browser


def _scroll_top(browser, y):
    browser.run("window.scrollTo(0, arguments[0])", y)


def test_the_page_fits_the_window_and_is_short(page, tmp_path_factory):
    width, inner, height = page.run("const e = document.documentElement; "
                                    "return [e.scrollWidth, window.innerWidth, e.scrollHeight]")
    print(f"single-run page: {width} px wide in a {inner} px window, {height} px tall")
    assert inner == WIDTH and width <= inner
    assert height <= MAX_HEIGHT
    shot = page.screenshot(tmp_path_factory.mktemp("shots") / "run-page.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_summary_grid_comes_first(page):
    first = page.run("return document.querySelector('body > svg, body > table, body > main, body > nav').tagName")
    assert first.lower() == "svg"
    cells = page.run("return document.querySelectorAll('svg.grid rect').length")
    areas = page.run("return document.querySelectorAll('svg.grid > text').length") - 6  # less the outcome headings
    assert cells == areas * 6


def test_failures_come_before_passes_and_filters_hide_and_show_rows(page, document):
    outcomes = Counter(case["outcome"] for case in document["cases"])
    total = len(document["cases"])
    _scroll_top(page, 0)
    assert page.count_visible("tr.case") == total - outcomes["pass"]  # the page opens on all but pass
    page.click("label[for=outcome-all]")
    assert page.count_visible("tr.case") == total
    fail_top, pass_top = page.run("const top = s => document.querySelector(s).getBoundingClientRect().top; "
                                  "return [top('tr.case.is-fail'), top('tr.case.is-pass')]")
    assert fail_top < pass_top
    page.click("label[for=outcome-fail]")
    assert page.count_visible("tr.case") == outcomes["fail"]
    page.click("label[for=outcome-all]")
    page.click("label[for=area-1]")
    first_area = sorted({case["area"] for case in document["cases"]})[0]
    assert page.count_visible("tr.case") == sum(1 for case in document["cases"] if case["area"] == first_area)
    page.click("label[for=area-all]")
    # The free-text filter, the page's one script: every word must be in the row.
    field = page.driver.find_element("id", "text-filter")
    field.send_keys("seqpacket record")
    wanted = sum(1 for case in document["cases"]
                 if all(word in json.dumps(case).lower() for word in ("seqpacket", "record")))
    shown = page.count_visible("tr.case")
    assert 0 < shown <= wanted
    field.clear()
    field.send_keys(" ")  # an input event with no words: every row again
    assert page.count_visible("tr.case") == total
    page.click(f"label[for=outcome-{'not-passing'}]")


def test_the_header_row_stays_in_view_after_scrolling(page):
    _scroll_top(page, 3000)
    top, bottom = page.run("const r = document.querySelector('table.cases thead th').getBoundingClientRect(); "
                           "return [r.top, r.bottom]")
    assert top >= 0 and bottom <= 80
    _scroll_top(page, 0)
