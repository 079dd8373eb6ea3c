"""The matrix page in a real headless Chromium: coloured cells, details on hover and when opened, and the
script-free filters hiding rows when clicked. The screenshots are kept in reports/artifacts/.

Skipped without Chromium, unless CONFORMANCE_REQUIRE_BROWSER=1 (as in .ci/run, which installs it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser import Browser, require_chromium
from reportdata import models, sample_report

from conformance.report.matrix import build_matrix
from conformance.report.matrix_html import render_matrix_html

ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "artifacts"
SCREENSHOTS = ("matrix-browser.png", "matrix-browser-filtered.png")  # as opened; after the filter clicks

PLATFORMS = [
    ("linux-6.18.44-x86_64-py311-root-ext4", "linux", "6.18.44", True),
    ("linux-6.18.44-x86_64-py311-user-ext4", "linux", "6.18.44", False),
    ("freebsd-15.0-RELEASE-amd64-py311-root-ufs", "freebsd", "15.0-RELEASE", True),
    ("darwin-15.5-arm64-py313-user-apfs", "darwin", "15.5", False),
]
AREAS = ("credentials", "locks", "rights")
CASES_PER_AREA = 12


def _platform_report(index, platform_id, os_name, release, privileged):
    """Every platform passes most cases; each differs from the others in a known, small way."""
    report = sample_report()
    report["platform"].update(id=platform_id, os=os_name, release=release, privileged=privileged,
                              uid=0 if privileged else 65534)
    template = report["cases"][0]
    cases = []
    for area in AREAS:
        for number in range(CASES_PER_AREA):
            name = f"test_{area}_behaviour_{number}"
            outcome = "pass"
            if number == index:  # platform i fails case i of every area
                outcome = "fail"
            elif number == 8 and os_name != "linux":
                outcome = "unsupported"
            elif number == 9 and os_name == "darwin":
                outcome = "deviation"
            if number == 10 and index == 3:
                continue  # not run on the last platform
            observations = {f"{area}.value_{number}[stream]": number * (2 if os_name == "freebsd" else 1)}
            cases.append(dict(template, id=f"{area}/{name}[stream]", area=area, name=name, params="stream",
                              outcome=outcome, reason="" if outcome == "pass" else f"{outcome} on {os_name}",
                              observations=observations, expectation=None))
    report["cases"] = cases
    report["summary"] = {outcome: sum(1 for c in cases if c["outcome"] == outcome) for outcome in report["summary"]}
    return (f"{platform_id}.json", report)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    matrix = build_matrix(models([_platform_report(i, *platform) for i, platform in enumerate(PLATFORMS)]))
    path = tmp_path_factory.mktemp("matrix") / "matrix.html"
    path.write_text(render_matrix_html(matrix), encoding="utf-8")
    return path


def _rows_with(outcome):
    # Cases 0-3 fail on one platform each; 8 is unsupported off Linux; 9 a deviation on macOS; 10 not run there.
    return {"fail": [0, 1, 2, 3], "unsupported": [8], "deviation": [9], "not-run": [10]}[outcome]


def test_matrix_page_renders_and_its_filters_hide_rows(page_file):
    total = len(AREAS) * CASES_PER_AREA
    with Browser(require_chromium()) as browser:
        page = browser.open(page_file, width=1400, height=1000)
        shots = [page.screenshot(page_file.with_name(SCREENSHOTS[0]))]
        assert page.count_visible("tr.case") == total
        assert page.count("tr.case td.cell") == total * len(PLATFORMS)
        assert page.count_visible("tr.obs") == total

        # Cells are coloured by outcome, and a case a platform did not run says so.
        colours = page.evaluate("""(() => {
            const colour = (selector) => getComputedStyle(document.querySelector(selector)).backgroundColor;
            return {pass: colour('td.o-pass'), fail: colour('td.o-fail'), unsupported: colour('td.o-unsupported')};
        })()""")
        assert colours == {"pass": "rgb(31, 136, 61)", "fail": "rgb(207, 34, 46)", "unsupported": "rgb(208, 215, 222)"}
        assert page.evaluate("document.querySelector('td.o-not-run').textContent") == "not run"
        # Hover shows the reason; opening the cell shows it on the page.
        fail_cell = "tr.case:nth-child(1) td.o-fail"
        assert "fail on linux" in page.evaluate(f"document.querySelector('{fail_cell}').title")
        assert not page.visible(f"{fail_cell} details .reason")
        page.click(f"{fail_cell} summary")
        assert page.visible(f"{fail_cell} details .reason")

        # Outcome filters: a click hides every row without that outcome somewhere.
        for outcome in ("fail", "unsupported", "deviation", "not-run"):
            page.click(f"label[for=outcome-{outcome}]")
            assert page.count_visible("tr.case") == len(_rows_with(outcome)) * len(AREAS), outcome
        page.click("label[for=outcome-all]")
        assert page.count_visible("tr.case") == total

        # Only differences: cases 4-7 and 11 pass everywhere and disappear.
        page.click("label[for=only-diff]")
        assert page.count_visible("tr.case") == (CASES_PER_AREA - 5) * len(AREAS)
        page.click("label[for=only-diff]")
        assert page.count_visible("tr.case") == total

        # Area filter: one area's cases and observations stay.
        page.click("label[for=area-2]")
        assert page.count_visible("section.area") == 1 and page.visible("section.a-2")
        assert page.count_visible("tr.case") == CASES_PER_AREA
        assert page.count_visible("tr.obs") == CASES_PER_AREA
        # Filters combine: failures within that area.
        page.click("label[for=outcome-fail]")
        assert page.count_visible("tr.case") == 4
        shots.append(page.screenshot(page_file.with_name(SCREENSHOTS[1])))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        shutil.copyfile(shot, ARTIFACTS / shot.name)
