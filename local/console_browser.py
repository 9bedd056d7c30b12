"""Headless Chromium from Debian's packages (``make browser`` installs ``chromium`` and ``chromium-driver``), driven by
selenium: for the console's browser tests and ``make serve-screenshots``. Nothing is downloaded at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def chromium_installed() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def start_chromium(profile: Path, *, width: int = 1366, height: int = 900) -> Any:
    """A headless Chromium with its own profile directory; the caller quits it. The default window is a laptop
    screen, the size the console is laid out for."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                 f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
