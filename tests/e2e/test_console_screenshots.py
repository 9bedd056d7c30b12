"""`make serve-screenshots` (issue 14): a PNG of every page of the web console, so a reviewer can look without running
it. Its own module: it starts its own local stack, which cannot run next to test_console's in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.console_browser import chromium_installed

pytestmark = pytest.mark.slow


def test_make_serve_screenshots_writes_a_picture_of_every_page(tmp_path: Path) -> None:
    if not chromium_installed():
        pytest.skip("chromium is not installed (`make browser` installs it)")
    from local.console_screenshots import take_screenshots

    written = take_screenshots(tmp_path)
    names = sorted(p.stem for p in written)
    assert names == ["01-login", "02-connections", "03-orders", "04-order-failed", "05-export",
                     "06-settings-general", "07-settings-sevdesk", "08-settings-accounts", "09-why-not-exported",
                     "10-new-connection", "11-reconciliation"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
