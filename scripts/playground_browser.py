"""Headless Chromium for the playground: the one place that says how it is started and how a
full-page screenshot is taken. Used by the browser tests (tests/playground/conftest.py and
test_browser.py import it as `playground_browser`: pytest puts scripts/ on the path) and by
scripts/screenshot_playground.py, which takes the README's screenshot.

Debian's chromium and chromedriver (`scripts/install-browser.sh` installs them) driven by Selenium.
The driver path is given explicitly and SE_OFFLINE is set before selenium is imported, so
selenium-manager never downloads a browser or a driver.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

os.environ["SE_OFFLINE"] = "true"  # before selenium is imported: never run selenium-manager online

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "run scripts/install-browser.sh (chromium, chromium-driver, selenium)"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
]


class BrowserMissing(RuntimeError):
    """Chromium, chromedriver or selenium is not installed (the message says how to install it)."""


def start_chromium(profile: Path, downloads: Path | None = None) -> Any:
    """A headless Chromium WebDriver with the fresh profile folder `profile`.

    Downloads land in `downloads` when given; the browser console is logged (read it back with
    `driver.get_log("browser")`); chromedriver logs to chromedriver.log next to `profile`.
    """
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which(str(CHROMEDRIVER))):
        raise BrowserMissing(f"{CHROMIUM} or {CHROMEDRIVER} is missing: {INSTALL_HINT}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        raise BrowserMissing(f"selenium is not installed: {INSTALL_HINT}") from error

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    prefs: dict[str, object] = {"safebrowsing.enabled": False}
    if downloads is not None:
        prefs["download.default_directory"] = str(downloads)
        prefs["download.prompt_for_download"] = False
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


def full_page_screenshot(driver: Any, path: Path) -> None:
    """Save the whole page (not only the window) as a PNG at `path`; the window size is restored."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    page_height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, max(page_height + 140, height))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(path)):
            raise RuntimeError(f"the browser could not write the screenshot {path}")
    finally:
        driver.set_window_size(width, height)
