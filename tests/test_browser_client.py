"""Smoke tests of tests/browser.py, the CDP-over-pipe Chromium driver, on a tiny crafted page.

Skipped without Chromium, unless CONFORMANCE_REQUIRE_BROWSER=1 (then they fail).
"""

from __future__ import annotations

import os
import signal
import struct
import time

import pytest
from browser import Browser, BrowserError, JavaScriptError, chromium_processes, require_chromium

# Same policy as the report page: no script at all, inline styles only.
CSP = "default-src 'none'; style-src 'unsafe-inline'"

PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>matrix</title>
<style>
  .filter {{ display: none; }}
  label {{ display: inline-block; padding: 4px 8px; border: 1px solid #888; }}
  .spacer {{ height: 1500px; }}
  #f-fail:checked ~ main tr:not(.has-fail) {{ display: none; }}
  .wrap {{ position: relative; }}
  .cover {{ position: absolute; inset: 0; background: #ccc; }}
</style>
<script>document.title = "script ran";</script>
</head><body>
<input class="filter" type="radio" name="filter" id="f-all" checked>
<input class="filter" type="radio" name="filter" id="f-fail">
<nav><label for="f-all">all</label></nav>
<div class="spacer"></div>
<nav><label for="f-fail">failures only</label></nav>
<nav class="wrap"><label for="f-fail" id="covered">under a cover</label><span class="cover"></span></nav>
<main><table><tbody>
  <tr id="ok-1"><td>ok</td></tr>
  <tr id="fail-1" class="has-fail"><td>fail</td></tr>
  <tr id="ok-2"><td>ok</td></tr>
  <tr id="fail-2" class="has-fail"><td>fail</td></tr>
</tbody></table></main>
</body></html>
"""


@pytest.fixture
def chromium() -> str:
    return require_chromium()


@pytest.fixture
def page_path(tmp_path):
    path = tmp_path / "matrix.html"
    path.write_text(PAGE, encoding="utf-8")
    return path


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_css_filter_hides_rows_on_a_real_click(chromium, page_path, tmp_path):
    started = time.monotonic()
    with Browser(chromium) as browser:
        page = browser.open(page_path, width=1280, height=900)
        # The page's CSP is in force (its inline script did not run), yet DevTools evaluation works.
        assert page.evaluate("document.title") == "matrix"
        assert page.count("tbody tr") == 4
        assert page.count_visible("tbody tr") == 4

        page.click('label[for="f-fail"]')  # below the fold: click() must scroll to it
        assert page.evaluate("window.scrollY") > 0
        assert page.evaluate("document.getElementById('f-fail').checked") is True
        assert page.count_visible("tbody tr") == 2
        assert not page.visible("#ok-1") and not page.visible("#ok-2")
        assert page.visible("#fail-1") and page.visible("#fail-2")

        page.click('label[for="f-all"]')
        assert page.count_visible("tbody tr") == 4
        assert page.visible("#ok-1")

        with pytest.raises(BrowserError, match="no box"):
            page.click("#f-fail")  # the radio itself is display:none
        with pytest.raises(BrowserError, match=r"covered at .* by span\.cover"):
            page.click("#covered")  # the click would land on the cover
        assert page.count_visible("tbody tr") == 4
        with pytest.raises(BrowserError, match="no element matches"):
            page.click("#missing")
        with pytest.raises(BrowserError, match="no element matches"):
            page.visible("#missing")

        shot = page.screenshot(tmp_path / "matrix.png")
        width, height = png_size(shot.read_bytes())
        assert width == 1280
        assert 1500 < height < 3000  # the whole document, not only the 900 px viewport
        viewport = page.screenshot(tmp_path / "viewport.png", full_page=False)
        assert png_size(viewport.read_bytes()) == (1280, 900)
    # A generous bound that still catches a driver waiting out a timeout somewhere (it takes ~1 s here).
    assert time.monotonic() - started < 20


def test_evaluate_raises_with_the_javascript_error_text(chromium, page_path):
    with Browser(chromium) as browser:
        page = browser.open(page_path)
        assert page.evaluate("[1 + 1, 'x', null, {a: true}]") == [2, "x", None, {"a": True}]
        assert page.evaluate("Promise.resolve(7)") == 7
        with pytest.raises(JavaScriptError, match="boom 42") as caught:
            page.evaluate("throw new Error('boom 42')")
        assert caught.value.text.startswith("Error: boom 42")
        with pytest.raises(JavaScriptError, match=r"Cannot read properties of null \(reading 'x'\)"):
            page.evaluate("null.x")
        with pytest.raises(JavaScriptError, match="SyntaxError"):
            page.count("tr[")
        assert page.evaluate("1 + 1") == 2  # the session survives


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list descriptors and processes")
def test_no_process_or_descriptor_survives(chromium, page_path, tmp_path):
    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    before = fds()
    with Browser(chromium) as browser:
        page = browser.open(page_path)
        page.screenshot(tmp_path / "shot.png")
        pid, tmpdir = browser.pid, browser.tmpdir
        assert chromium_processes(pid, tmpdir)
        assert os.getpgid(pid) == pid and os.getsid(pid) == pid
    assert chromium_processes(pid, tmpdir) == []
    assert not os.path.exists(tmpdir)
    assert fds() == before

    # The same after an exception, here a command that hangs until its deadline.
    hang = pytest.raises(BrowserError, match="timed out waiting for the reply to Runtime.evaluate")
    with hang, Browser(chromium) as browser:
        page = browser.open(page_path)
        pid, tmpdir = browser.pid, browser.tmpdir
        page.evaluate("new Promise(() => {})", timeout=0.5)
    assert chromium_processes(pid, tmpdir) == []
    assert not os.path.exists(tmpdir)
    assert fds() == before

    # And after Chromium dies under the driver: the next command fails fast, with the exit status.
    death = pytest.raises(BrowserError, match=r"closed its pipe .*\(Chromium was killed by signal 9\)")
    with death, Browser(chromium) as browser:
        page = browser.open(page_path)
        pid, tmpdir = browser.pid, browser.tmpdir
        os.killpg(pid, signal.SIGKILL)
        page.evaluate("1")
    assert chromium_processes(pid, tmpdir) == []
    assert not os.path.exists(tmpdir)
    assert fds() == before
