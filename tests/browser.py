"""The pages in a real headless Chromium, driven by Selenium through Debian's chromium-driver.

Selenium rather than Playwright, measured on this project's CI machine (Debian 12, Chromium 156, two loaded cores):
Selenium had the browser ready in 5 to 6 s, Playwright in 8 to 9 s (its Node.js driver starts first); both then open,
measure and photograph a page in 0.3 to 0.5 s. Selenium is one pure Python wheel that installs on every platform of
the test extras (Playwright's wheels carry Node.js, 170 MB installed, and there is none for FreeBSD); beside the
browser it needs only Debian's chromium-driver (12 s of apt); and it starts chromedriver with any uid, which is how
Chromium runs here as root (see ``_own_uid``), where Playwright needed a wrapper script around the browser.

Skipped with the reason when Chromium, chromedriver or Selenium is missing, unless CONFORMANCE_REQUIRE_BROWSER=1 (as in
.ci/run, which installs them): then it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import pytest

REQUIRE_ENV = "CONFORMANCE_REQUIRE_BROWSER"
ARTIFACTS_ENV = "CONFORMANCE_ARTIFACTS"  # where the screenshots are copied for CI to upload
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_CANDIDATES = ("chromedriver", "/usr/lib/chromium/chromedriver")
WIDTH, HEIGHT = 1400, 1000


def _missing(reason: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires the browser self-tests (ci/install-browser installs it)")
    pytest.skip(f"{reason} (ci/install-browser installs it)")


def _which(candidates) -> Optional[str]:
    return next((found for found in map(shutil.which, candidates) if found), None)


def _own_uid() -> Optional[int]:
    """The uid Chromium runs as: None (the caller's) unless the caller is root, then a fresh uid. Chromium's zygote and
    renderers pass descriptors without CAP_SYS_ADMIN, so Linux refuses them (ETOOMANYREFS) once the user has more
    sockets in flight than RLIMIT_NOFILE; as root, that is the machine's whole history of root's in-flight sockets,
    including any that a kernel's collector leaked (seen: Chromium hung at its first page). A uid no process ever had
    starts from nothing."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    from conformance.harness.privileges import fresh_uid

    return fresh_uid()


class Browser:
    """One headless Chromium at WIDTH x HEIGHT; ``open`` copies a page where Chromium's uid can read it."""

    def __init__(self, driver, uid: Optional[int]) -> None:
        self.driver = driver
        self.uid = uid
        # World-readable, since Chromium may run as another uid; removed with the browser.
        self._pages = tempfile.mkdtemp(prefix="conformance-pages-", dir="/tmp" if uid is not None else None)
        os.chmod(self._pages, 0o755)

    def open(self, path: Path) -> None:
        copy = Path(self._pages) / path.name
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o644)
        self.driver.get(copy.as_uri())

    def run(self, script: str, *args):
        """The value of JavaScript ``script`` (a function body: ``return ...``)."""
        return self.driver.execute_script(script, *args)

    def click(self, selector: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def count_visible(self, selector: str) -> int:
        # checkVisibility also sees the content of a closed <details>, which keeps its boxes; older Chromium lacks it.
        return self.run("return [...document.querySelectorAll(arguments[0])].filter(e => e.checkVisibility ? "
                        "e.checkVisibility() : e.getClientRects().length).length", selector)

    def screenshot(self, path: Path) -> Path:
        """The window as a PNG at ``path``, also copied into $CONFORMANCE_ARTIFACTS when that is set."""
        path.write_bytes(self.driver.get_screenshot_as_png())
        artifacts = os.environ.get(ARTIFACTS_ENV)
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(artifacts) / path.name)
        return path

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._pages, ignore_errors=True)


@contextlib.contextmanager
def browser_session():
    """A headless Chromium, or the test skipped (failed where required) with the reason there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("Selenium is not installed (the test extras install it)")
    named = os.environ.get("CHROMIUM")
    chromium = _which([named]) if named else _which(CHROMIUM_CANDIDATES)
    if not chromium:
        _missing(f"no Chromium at $CHROMIUM={named}" if named else
                 "no Chromium found (set $CHROMIUM or install Debian's chromium)")
    driver_path = _which(DRIVER_CANDIDATES)
    if not driver_path:
        _missing("no chromedriver found (Debian's chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless", "--disable-gpu", "--hide-scrollbars", "--force-color-profile=srgb",
                     f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(argument)
    uid = _own_uid()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses its sandbox to root, and to a uid with no account
    # chromedriver makes Chromium's profile under $TMPDIR, which that uid must be able to write to.
    as_uid = {} if uid is None else {"popen_kw": {"user": uid, "group": uid, "extra_groups": []},
                                     "env": {**os.environ, "TMPDIR": "/tmp"}}
    # A driver given by path: Selenium Manager, which would look for one online, never runs.
    driver = webdriver.Chrome(options=options, service=Service(driver_path, **as_uid))
    driver.set_page_load_timeout(120)
    session = Browser(driver, uid)
    try:
        yield session
    finally:
        session.close()
