"""Playwright driving Debian's `chromium`, shared by the browser tests.

Without chromium or the `playwright` package a browser test is skipped here, but fails under
CI=true, so a missing install step shows up as a red build instead of a quiet skip. Screenshots go
to <tmp>/shots/; `UPDATE_SCREENSHOTS=1` sends the README's (shoot_both) to docs/screenshots/.
"""

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
MISSING = (
    "the `playwright` Python package is not installed"
    if importlib.util.find_spec("playwright") is None
    else "no `chromium` on PATH (apt-get install chromium)"
    if CHROMIUM is None
    else ""
)
SHOTS = Path(tempfile.gettempdir()) / "shots"
# Chromium's background services would otherwise reach for the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Long enough for a slow CI machine and two page refreshes, short enough to fail fast.
WAIT_MS = 15_000


def skip_without_a_browser() -> None:
    """Call at a browser test module's top."""
    if MISSING and not IN_CI:
        pytest.skip(f"browser tests need a browser: {MISSING}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    if MISSING and IN_CI:
        pytest.fail(f"CI must run the browser tests, but {MISSING}", pytrace=False)
    if MISSING:
        pytest.skip(f"browser tests need a browser: {MISSING}")
    from playwright.sync_api import sync_playwright

    # The sync API keeps an event loop running on this thread, which Django's async-safety check
    # mistakes for async code calling the ORM (the test's own queries, the database flush).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shoot(page, name: str, folder: Path = SHOTS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", full_page=True)


# The README's pictures. A test run rewrites them only when asked (UPDATE_SCREENSHOTS=1): order
# numbers and times differ on every run, and running the tests must not leave the checkout dirty.
README_SHOTS = (
    Path(__file__).resolve().parent.parent / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else SHOTS
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


# The innermost elements that reach past the screen's right edge: what to fix, said.
WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1 && ![...e.children].some(
    c => c.getBoundingClientRect().right > innerWidth + 1))
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 40))"""


def shoot_both(page, name: str) -> None:
    """Save the page at desktop and phone widths; at 375 px nothing may scroll sideways."""
    shoot(page, f"{name}-desktop", README_SHOTS)
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.scrollingElement.scrollWidth")
    wide = page.evaluate(WIDER_THAN_THE_SCREEN) if width > PHONE["width"] else []
    assert width <= PHONE["width"], f"{name} scrolls sideways on a phone ({width}px): {wide}"
    shoot(page, f"{name}-phone", README_SHOTS)
    page.set_viewport_size(DESKTOP)
