"""`make serve-screenshots`: a PNG of each page of the web console, for a reviewer who does not run it.

    python -m local.console_screenshots [--out out/console] [--lang de|en]

Starts what ``make serve`` starts (the local stack with the sample shop and the sample connection, the API served on
127.0.0.1), runs the hourly job once so the pages have orders to show, and drives headless Chromium (Debian's
``chromium`` + ``chromium-driver``; ``make browser``) through the console: login, connections, orders, one order,
manual export, the three settings tabs, "why not exported", a new connection's first step, the reconciliation
report of the sample shop's November. One order is set to
FAILED by hand after the run (the sample shop exports cleanly), so the order page shows its error and the Retry
button. The token is typed into a password field that is empty again before any screenshot is taken; no credential
is in any picture.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.console_browser import chromium_installed, start_chromium
from local.serve import DEFAULT_CONNECTION, api_token, serve_stack
from local.stack import LocalStack

WIDTH, MIN_HEIGHT, TIMEOUT = 1280, 800, 60
OUTSIDE = 990000000000999
RECONCILED = ("2026-11-01", "2026-11-30")  # the sample shop's November
FAILED_ERROR = "sevdesk: 503 Service Unavailable (after 4 tries); tried again with back-off"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.console_screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out") / "console", help="default out/console")
    parser.add_argument("--lang", choices=("de", "en"), default="de", help="the console's language (default de)")
    args = parser.parse_args(argv)
    if not chromium_installed():
        print("chromium is not installed: run `make browser` (Debian's chromium and chromium-driver)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    written = take_screenshots(args.out, lang=args.lang)
    for path in written:
        print(path)
    return 0


def take_screenshots(out: Path, *, lang: str = "de") -> list[Path]:
    from connector.store.records import ExportState
    from local.sample_shop import sample_orders

    connection = json.loads(DEFAULT_CONNECTION.read_text())
    connection_id = connection["connectionId"]
    # The sample shop's orders all match the connection; one more, still "ordered" (state 1, not chosen), shows
    # what "why not exported" says about an order the filters leave out.
    orders = sample_orders()
    outside = {**copy.deepcopy(orders[0]), "BillBeeOrderId": OUTSIDE, "Id": f"X{OUTSIDE}", "OrderNumber": "#1299",
               "InvoiceNumber": 1299, "State": 1}
    orders.append(outside)
    no_invoice = next(o["BillBeeOrderId"] for o in orders if not o.get("InvoiceNumber"))
    with LocalStack(orders=orders, billbee_rate_limits=False) as stack, \
            tempfile.TemporaryDirectory(prefix="console-chromium-") as profile:
        stack.save_connection(connection)
        stack.poll()
        stack.drain()
        store = stack.runtime.store
        exported = [r for r in stack.records(connection_id) if r.state is ExportState.EXPORTED]
        failed, again = exported[0], exported[1]
        failed.state, failed.attempts, failed.last_error = ExportState.FAILED, 3, FAILED_ERROR
        store.save(failed)
        with serve_stack(stack) as server:
            driver = start_chromium(Path(profile), width=WIDTH, height=MIN_HEIGHT)
            try:
                shots = Shots(driver, server.url, out)
                driver.get(f"{server.url}/console")
                driver.execute_script("localStorage.setItem('connector.lang', arguments[0])", lang)
                driver.refresh()
                shots.wait_for("#login")
                shots.take("01-login")
                shots.css("#token").send_keys(api_token(stack))
                shots.css("#login-button").click()
                shots.visit("#/", "02-connections", "table.connections")
                shots.visit(f"#/c/{connection_id}/orders/EXPORTED", "03-orders", "table.orders tbody tr")
                shots.visit(f"#/c/{connection_id}/order/{failed.order_id}", "04-order-failed", "button#retry")
                driver.get(f"{server.url}/console#/c/{connection_id}/export")
                shots.css("#export-ids").send_keys(f"{again.order_id}\n{no_invoice}\n4242424242")
                shots.css("#export-button").click()
                shots.wait_for("table.outcomes tbody tr")
                shots.take("05-export")
                shots.visit(f"#/c/{connection_id}/settings", "06-settings-general", "#tab-general")
                for tab, name in (("tabSevdesk", "07-settings-sevdesk"), ("tabAccounts", "08-settings-accounts")):
                    shots.css(f'.tablist button[data-tab="{tab}"]').click()
                    shots.take(name)
                shots.visit(f"#/c/{connection_id}/why/{OUTSIDE}", "09-why-not-exported", ".verdict")
                shots.visit("#/new", "10-new-connection", "#new-form")
                shots.visit(f"#/c/{connection_id}/reconciliation/{RECONCILED[0]}/{RECONCILED[1]}",
                            "11-reconciliation", "#rec-verdict")
            finally:
                driver.quit()
    return shots.written


class Shots:
    def __init__(self, driver: Any, url: str, out: Path) -> None:
        self.driver, self.url, self.out = driver, url, out
        self.written: list[Path] = []

    def until(self, condition: Callable[[Any], Any]) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, TIMEOUT).until(condition)

    def wait_for(self, css: str) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def css(self, css: str) -> Any:
        return self.wait_for(css)

    def visit(self, fragment: str, name: str, ready: str) -> None:
        self.driver.get(f"{self.url}/console{fragment}")
        self.wait_for(ready)
        self.take(name)

    def take(self, name: str) -> None:
        """The whole page, not only the window: the window is stretched to the page's height first."""
        self.until(lambda d: not d.find_elements("css selector", "p.loading"))
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        # Headless Chromium's window size is not its viewport: set the viewport itself through DevTools.
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": max(MIN_HEIGHT, min(height, 4000)), "deviceScaleFactor": 1, "mobile": False})
        path = self.out / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.written.append(path)


if __name__ == "__main__":
    sys.exit(main())
