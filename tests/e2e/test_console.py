"""The web console in a real browser (issue 14): headless Chromium from Debian's packages drives ``/console`` over
the served API (local.serve's API Gateway translation in front of the real ApiFunction) on the local stack: log in,
see the connection, see a failed order and retry it, run a manual export, ask why an order was not exported, and
hostile order data shown as the text it is, never run.

No sleeps: every wait is a WebDriverWait on something the page shows. ``make test`` runs with pytest-xdist, which may
split this module over two workers (each then has its own stack): a test relies only on what ``_prepare`` sets up,
never on an earlier test; a test that changes state changes nothing a later one reads."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ApiClient

from connector.store.records import ExportState
from local.console_browser import chromium_installed, start_chromium
from local.sample_shop import sample_orders
from local.serve import ApiGatewayServer, api_token, serve_stack
from local.stack import LocalStack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION = json.loads((REPO / "local" / "sample_connection.json").read_text())
CONN = CONNECTION["connectionId"]
BASE = sample_orders()
NO_INVOICE = next(o["BillBeeOrderId"] for o in BASE if not o.get("InvoiceNumber"))

FAILED = 980000000000001  # exported once, then made FAILED: the page offers Retry
MANUAL = 980000000000002  # exported with the manual-export page, without the tag
OUTSIDE = 980000000000003  # state "ordered": the connection's filters leave it out, no record
HOSTILE = 980000000000004  # customer name and company are markup
BY_HAND = 980000000000005  # skipped; a bookkeeper books it by hand
DONE = 980000000000006  # exported before the tests start
XSS_NAME = '<script>window.__xss = "script"</script>Eve Evil'
XSS_COMPANY = '<img src=x onerror="window.__xss = \'img\'">Evil GmbH'
XSS_REASON = 'rejected by sevDesk: <img src=x onerror="window.__xss = \'reason\'"> & <b>bold</b>'


def derived(order_id: int, invoice_number: int, **changes: Any) -> dict[str, Any]:
    """A copy of a sample order in state 1 ("ordered"), which the connection does not select: only a manual export
    touches it."""
    order = copy.deepcopy(BASE[0])
    order.update(BillBeeOrderId=order_id, Id=f"C{order_id}", OrderNumber=f"#C{order_id}",
                 InvoiceNumber=invoice_number, State=1)
    order.update(changes)
    return order


hostile = derived(HOSTILE, 8104)
hostile["Customer"] = {**hostile["Customer"], "Name": XSS_NAME, "Number": 99104}
hostile["InvoiceAddress"] = {**hostile["InvoiceAddress"], "Company": XSS_COMPANY}
EXTRA = [derived(FAILED, 8101), derived(MANUAL, 8102), derived(OUTSIDE, 8103), hostile, derived(BY_HAND, 8105),
         derived(DONE, 8106)]


class Console:
    """The served API, its stack, and one headless Chromium."""

    def __init__(self, stack: LocalStack, server: ApiGatewayServer, driver: Any) -> None:
        self.stack = stack
        self.url = server.url
        self.token = api_token(stack)
        self.http = ApiClient(self.url, self.token)
        self.driver = driver

    def wait(self, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def element(self, css: str) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def elements(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text_in(self, css: str, text: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.wait(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def open(self, fragment: str = "#/") -> None:
        """Open a page of the console; logs in first when the tab has no token."""
        target = f"{self.url}/console{fragment}"
        if self.driver.current_url == target:  # the same address again: only a reload renders it afresh
            self.driver.refresh()
        else:
            self.driver.get(target)
        if self.elements("form#login") or self.driver.execute_script(
                "return sessionStorage.getItem('connector.apiToken') === null"):
            self.log_in(self.token)

    def log_in(self, token: str) -> None:
        field = self.element("input#token")
        field.clear()
        field.send_keys(token)
        self.element("#login-button").click()

    def page(self, name: str) -> Any:
        return self.element(f'section.page[data-page="{name}"]:not(:has(p.loading))')

    def no_script_ran(self) -> bool:
        return bool(self.driver.execute_script("return window.__xss === undefined"))

    def record(self, order_id: int) -> dict[str, Any]:
        response = self.http.get(f"/connections/{CONN}/orders/{order_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if not chromium_installed():
        pytest.skip("chromium is not installed (`make browser` installs Debian's chromium and chromium-driver)")
    with LocalStack(orders=BASE + EXTRA, billbee_rate_limits=False) as stack:
        stack.save_connection(CONNECTION)
        with serve_stack(stack) as server:
            driver = start_chromium(tmp_path_factory.mktemp("chromium"))
            try:
                ui = Console(stack, server, driver)
                _prepare(ui)
                yield ui
                ui.http.close()
            finally:
                driver.quit()


def _prepare(ui: Console) -> None:
    """Records to look at: FAILED (exported, then failed by hand as test_api does) and HOSTILE (needs attention,
    with markup in its reason as well as in Billbee's customer data)."""
    answer = ui.http.post(f"/connections/{CONN}/exports", json={"orderIds": [FAILED, HOSTILE, BY_HAND, DONE]})
    assert answer.status_code == 202, answer.text
    ui.stack.drain()
    store = ui.stack.runtime.store
    failed = store.get_order(CONN, FAILED)
    failed.state, failed.attempts, failed.last_error = ExportState.FAILED, 3, "sevdesk: 503 server error"
    store.save(failed)
    attention = store.get_order(CONN, HOSTILE)
    attention.state, attention.reason = ExportState.NEEDS_ATTENTION, XSS_REASON
    store.save(attention)
    skipped = store.get_order(CONN, BY_HAND)
    skipped.state, skipped.reason = ExportState.SKIPPED, "no longer matches the connection's filters"
    store.save(skipped)


# -- log in, connections -----------------------------------------------------------------------------------------
def test_the_shell_loads_without_the_token_but_holds_no_data_and_forbids_inline_script(console: Console) -> None:
    shell = httpx.get(f"{console.url}/console")
    assert shell.status_code == 200
    assert shell.headers["content-type"].startswith("text/html")
    policy = shell.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert shell.headers["x-content-type-options"] == "nosniff"
    for asset in ("console.js", "console.css", "i18n.js"):
        assert httpx.get(f"{console.url}/console/{asset}").status_code == 200
    assert httpx.get(f"{console.url}/console/secrets.json").status_code == 404
    assert CONNECTION["name"] not in shell.text and console.token not in shell.text
    # The data still needs the token.
    assert httpx.get(f"{console.url}/connections").status_code == 401


def test_a_wrong_token_is_refused_and_the_right_one_shows_the_connection_with_status_and_counts(
    console: Console,
) -> None:
    console.driver.get(f"{console.url}/console")
    console.driver.execute_script("sessionStorage.clear(); localStorage.clear()")
    console.driver.get(f"{console.url}/console#/")
    console.log_in("not-the-token")
    console.text_in("#login-problem", "abgelehnt")  # German first
    console.log_in(console.token)
    row = console.element(f'table.connections tr[data-connection="{CONN}"]')
    assert CONNECTION["name"] in row.text
    assert console.element('table.connections .badge[data-state="OK"]').text == "OK"
    assert "Fehlgeschlagen: 1" in row.text and "Braucht Aufmerksamkeit: 1" in row.text
    assert "noch nie" in row.text  # no poll yet: said so, not left blank
    # The token stays in this tab only, never in the address or in localStorage.
    assert console.driver.execute_script("return sessionStorage.getItem('connector.apiToken')") == console.token
    assert console.driver.execute_script("return JSON.stringify(localStorage)").find(console.token) == -1
    assert console.token not in console.driver.current_url


def test_a_connection_in_error_shows_the_reason_and_what_to_do(console: Console) -> None:
    store = console.stack.runtime.store
    reason = "sevDesk rejected the API token: enter a new one in the settings (sevDesk tab)"
    store.set_connection_status(CONN, "ERROR", reason)
    try:
        console.open("#/")
        badge = console.element('table.connections .badge[data-state="ERROR"]')
        assert badge.text == "FEHLER"
        assert reason in console.element(f'tr[data-connection="{CONN}"] td.status').text
    finally:
        store.set_connection_status(CONN, "OK", None)


def test_the_language_switch_turns_the_console_english_and_back(console: Console) -> None:
    console.open("#/")
    console.element("#lang-en").click()
    console.text_in("#crumbs", "Connections")
    console.text_in(f'table.connections tr[data-connection="{CONN}"]', "Failed: 1")
    console.element("#lang-de").click()
    console.text_in("#crumbs", "Verbindungen")


# -- orders ------------------------------------------------------------------------------------------------------
def test_a_failed_order_is_listed_with_its_error_and_retried_from_its_page(console: Console) -> None:
    console.open(f"#/c/{CONN}/orders/FAILED")
    console.page("orders")
    row = console.element(f'table.orders[data-state="FAILED"] tr[data-order="{FAILED}"]')
    assert "sevdesk: 503 server error" in row.text
    row.find_element("css selector", "a").click()
    console.text_in('dd[data-field="fieldLastError"]', "sevdesk: 503 server error")
    assert console.element('dd[data-field="fieldState"]').text == "Fehlgeschlagen"
    console.element("button#retry").click()
    console.text_in("#retry-outcome", "erneut eingereiht")
    assert console.record(FAILED)["state"] == "PENDING"
    console.stack.drain()
    console.driver.refresh()
    console.text_in('dd[data-field="fieldState"]', "Exportiert")
    assert not console.elements("button#retry")  # an exported order offers no retry
    assert console.element('dd[data-field="fieldVoucher"] a').get_attribute("href").endswith(
        "/" + console.record(FAILED)["voucherId"])


def test_an_order_booked_by_hand_is_marked_so_from_its_page(console: Console) -> None:
    console.open(f"#/c/{CONN}/order/{BY_HAND}")
    console.element("#handled-button").click()
    console.text_in("#handled-outcome", "beide Felder")
    console.element("#handled-by").send_keys("Steuerbüro Meyer")
    console.element("#handled-note").send_keys("Beleg 2026-117 von Hand")
    console.element("#handled-button").click()
    console.text_in('dd[data-field="fieldState"]', "Von Hand gebucht")
    assert "Steuerbüro Meyer" in console.element('dd[data-field="fieldHandled"]').text
    assert not console.elements("#handled-form") and not console.elements("button#retry")
    record = console.record(BY_HAND)
    assert record["state"] == "HANDLED" and record["handled"]["by"] == "Steuerbüro Meyer"


def test_the_search_finds_an_order_by_invoice_number_and_says_when_nothing_matches(console: Console) -> None:
    console.open(f"#/c/{CONN}/orders/NEEDS_ATTENTION")
    console.element(f'tr[data-order="{HOSTILE}"]')
    search = console.element("input#search")
    search.send_keys("nothing-like-this")
    console.text_in("#search-message", "nothing-like-this")
    assert not console.elements(f'tr[data-order="{HOSTILE}"]')
    search.clear()
    search.send_keys("8104")
    console.element(f'tr[data-order="{HOSTILE}"]')


# -- manual export -----------------------------------------------------------------------------------------------
def test_a_manual_export_shows_the_outcome_per_order_and_honours_set_tag(console: Console) -> None:
    console.open(f"#/c/{CONN}/export")
    ids = console.element("textarea#export-ids")
    ids.send_keys("12ab")
    console.element("#export-button").click()
    console.text_in("#export-problem", "12ab")
    ids.clear()
    ids.send_keys(f"{MANUAL}\n{NO_INVOICE}, {DONE}")
    console.element("#export-set-tag").click()  # off: export without tagging
    console.element("#export-button").click()
    console.element(f'table.outcomes tr[data-order="{MANUAL}"][data-outcome="queued"]')
    assert console.element(f'table.outcomes tr[data-order="{NO_INVOICE}"]').get_attribute(
        "data-outcome") == "skippedNoInvoice"
    assert "Bereits exportiert" in console.element(f'table.outcomes tr[data-order="{DONE}"]').text
    console.stack.drain()
    assert console.record(MANUAL)["state"] == "EXPORTED"
    assert "Sevdesk" not in (console.stack.billbee.order(MANUAL).get("Tags") or [])


# -- why not exported --------------------------------------------------------------------------------------------
def test_why_not_exported_names_the_filter_for_an_order_without_record_and_says_when_billbee_has_none(
    console: Console,
) -> None:
    console.open(f"#/c/{CONN}/why")
    field = console.element("input#why-order")
    field.send_keys(str(OUTSIDE))
    console.element("#why-button").click()
    console.text_in('dd[data-field="whyReason"]', "not one of the connection's states")
    assert console.element(".verdict").get_attribute("data-verdict") == "notExported"
    assert console.element('.billbee-order dd[data-field="whyOrderNumber"]').text == f"#C{OUTSIDE}"
    assert console.element('.billbee-order dd[data-field="whyOrderState"]').text == "Bestellt (1)"
    assert console.element('dd[data-field="whyWhatToDo"]').text
    console.open(f"#/c/{CONN}/why/4242424242")
    console.text_in('dd[data-field="whyReason"]', "Billbee has no order with this id")
    console.open(f"#/c/{CONN}/why/{MANUAL}")
    console.text_in('dd[data-field="whyReason"]', "exported to sevDesk as voucher")
    assert console.element(".verdict").get_attribute("data-verdict") == "exported"


# -- hostile data ------------------------------------------------------------------------------------------------
def test_hostile_order_data_is_shown_as_text_and_never_runs(console: Console) -> None:
    console.open(f"#/c/{CONN}/why/{HOSTILE}")
    console.text_in('dd[data-field="whyCustomer"]', "Eve Evil")
    assert console.element('dd[data-field="whyCustomer"]').text == XSS_NAME
    assert console.element('dd[data-field="whyCompany"]').text == XSS_COMPANY
    assert console.element('dd[data-field="whyReason"]').text == XSS_REASON
    console.open(f"#/c/{CONN}/orders/NEEDS_ATTENTION")
    row = console.element(f'tr[data-order="{HOSTILE}"]')
    assert XSS_REASON in row.text
    console.open(f"#/c/{CONN}/order/{HOSTILE}")
    assert console.element('dd[data-field="fieldReason"]').text == XSS_REASON
    # Nothing was parsed as markup, and nothing ran.
    assert not console.elements("#app img, #app script, #app b")
    assert console.no_script_ran()


# -- settings ----------------------------------------------------------------------------------------------------
def test_settings_in_three_tabs_with_pickers_save_and_show_each_check_next_to_its_field(console: Console) -> None:
    from selenium.webdriver.support.ui import Select

    console.open(f"#/c/{CONN}/settings")
    console.element("#settings-form")
    # Pickers show names from setup-options, never raw ids.
    assert console.element('label[for="shop-1001"]').text == "Shopify Naturkosmetik"
    assert console.element("#state-7").is_selected() and not console.element("#state-1").is_selected()
    name = console.element("input#name")
    name.clear()
    name.send_keys("Demo-Shop (Konsole)")
    console.element('.tablist button[data-tab="tabAccounts"]').click()
    assert Select(console.element("#payment-3")).first_selected_option.text == "PayPal BB (offline)"
    # "Create an offline account for this method", for a method not mapped yet.
    Select(console.element("#add-method")).select_by_value("1")
    console.element('#payment-row-1 button[data-create="1"]').click()
    console.text_in("#settings-status", "Bankueberweisung BB")
    assert Select(console.element("#payment-1")).first_selected_option.text == "Bankueberweisung BB (offline)"
    console.element("#settings-save").click()
    console.text_in("#settings-status", "Gespeichert")
    console.text_in('#payment-row-3 .check-result', "offline account")
    console.text_in('#payment-row-1 .check-result', "Bankueberweisung BB")
    saved = console.http.get(f"/connections/{CONN}").json()["connection"]
    assert saved["name"] == "Demo-Shop (Konsole)"
    chosen = Select(console.element("#payment-1")).first_selected_option.get_attribute("value")
    assert {"paymentMethod": 1, "checkAccountId": int(str(chosen))} in saved["accounts"]["paymentAccounts"]


def test_a_refused_sevdesk_token_is_shown_at_its_field_and_nothing_is_saved(console: Console) -> None:
    console.open(f"#/c/{CONN}/settings")
    console.element("#settings-form")
    credentials = console.stack.credentials
    for field in ("billbeeApiKey", "billbeeUsername", "billbeeApiPassword"):
        console.driver.find_element("css selector", f"#{field}").send_keys(credentials[field])
    console.element('.tablist button[data-tab="tabSevdesk"]').click()
    console.element("#sevdeskApiToken").send_keys("0" * 32)
    console.element('.tablist button[data-tab="tabGeneral"]').click()
    console.element("#settings-save").click()
    console.text_in("#settings-status", "Nicht gespeichert")
    # The refused check is next to the token, and its tab is the one shown.
    console.text_in("#field-sevdesk-token .check-result.error-text", "rejected")
    assert console.element("#tab-sevdesk").is_displayed() and not console.elements("#tab-general:not([hidden])")
    # The stored credentials still work: the connection is OK and its token was not replaced.
    assert console.http.get(f"/connections/{CONN}").json()["status"]["state"] == "OK"
    assert console.http.get(f"/connections/{CONN}/setup-options").status_code == 200
    # Secrets typed into the page never show up in its text.
    assert credentials["billbeeApiPassword"] not in console.driver.find_element("css selector", "body").text


def test_a_new_connection_is_set_up_through_the_three_tabs_with_pickers_filled_from_its_credentials(
    console: Console,
) -> None:
    from selenium.webdriver.support.ui import Select

    console.open("#/")
    console.element("#new-connection").click()
    console.element("#new-id").send_keys("Neuer Shop")
    console.element("#new-load").click()
    console.text_in("#new-problem", "Kleinbuchstaben")
    console.element("#new-id").clear()
    console.element("#new-id").send_keys("console-shop")
    for field, value in console.stack.credentials.items():
        console.element(f"#{field}").send_keys(value)
    console.element("#new-load").click()
    # General: names from Billbee, nothing chosen yet.
    console.element("#settings-form")
    name = console.element("input#name")
    name.clear()
    name.send_keys("Konsolen-Shop")
    console.element("#shop-1001").click()
    console.element("#state-4").click()
    assert console.element('label[for="state-4"]').text == "Versendet"
    # sevDesk: the default payment account by name.
    console.element('.tablist button[data-tab="tabSevdesk"]').click()
    Select(console.element("#defaultCheckAccountId")).select_by_visible_text("Sonstige Zahlungen BB (offline)")
    console.element("#createContacts").click()
    # Accounts: PayPal -> its offline account, 19 % -> the revenue account sevDesk allows for it.
    console.element('.tablist button[data-tab="tabAccounts"]').click()
    Select(console.element("#add-method")).select_by_value("3")
    Select(console.element("#payment-3")).select_by_visible_text("PayPal BB (offline)")
    assert not console.elements('#payment-row-3 button[data-create]')  # needs a stored connection
    Select(console.element("#add-revenue")).select_by_value("1|19")
    revenue = Select(console.element("#revenue-1-19"))
    assert [o.text for o in revenue.options if o.get_attribute("value")] == ["8400 Erlöse 19 % USt"]
    revenue.select_by_visible_text("8400 Erlöse 19 % USt")
    console.element("#settings-save").click()
    console.text_in("#settings-status", "Gespeichert")
    console.text_in("#payment-row-3 .check-result", "offline account")
    token_check = console.elements("#field-sevdesk-token .check-result")  # on the sevDesk tab, not shown now
    assert [c.get_attribute("textContent") for c in token_check] == ["✓ sevDesk accepted the API token",
                                                                     "✓ sevDesk bookkeeping version 2.0"]
    assert all(i.get_attribute("value") == "" for i in console.elements("input[type=password]"))
    created = console.http.get("/connections/console-shop").json()
    assert created["connection"]["name"] == "Konsolen-Shop"
    assert created["connection"]["general"]["shopIds"] == [1001]
    assert created["connection"]["general"]["orderStateIds"] == [4]
    assert created["connection"]["sevdesk"]["defaultCheckAccountId"] == 5199
    assert created["connection"]["sevdesk"]["createContacts"] is True
    assert created["connection"]["accounts"]["paymentAccounts"] == [{"paymentMethod": 3, "checkAccountId": 5101}]
    assert created["connection"]["accounts"]["revenueAccounts"] == [
        {"taxRule": 1, "taxRate": "19", "accountDatevId": 3631}]
    assert created["status"]["state"] == "OK"
    console.element("#created-link").click()
    console.page("orders")
    assert console.http.delete("/connections/console-shop").status_code == 200


def test_no_page_raises_a_script_error(console: Console) -> None:
    console.driver.get_log("browser")  # forget what came before
    for fragment, page in [("#/", "connections"), (f"#/c/{CONN}/orders", "orders"),
                           (f"#/c/{CONN}/order/{FAILED}", "order"), (f"#/c/{CONN}/export", "export"),
                           (f"#/c/{CONN}/settings", "settings"), (f"#/c/{CONN}/why/{OUTSIDE}", "why")]:
        console.open(fragment)
        console.page(page)
    console.element('dd[data-field="whyReason"]')
    errors = [entry for entry in console.driver.get_log("browser") if entry["source"] == "javascript"]
    assert errors == []

