"""The preflight (issue 11) against the sandboxes: it shows what the run then books, field for field, and sends no
write, which the sandboxes' own exchange logs prove; bad input ends with one message and a non-zero exit; the page
opens in a real browser and shows every order.

One local stack (moto + both sandboxes) for the comparison with a real run; plain sandboxes (no AWS) for the rest.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chaos import derive_orders
from support import SAMPLE_CONNECTION

from connector.bookkeeping.voucher import ContactPlan, PlannedPosition, VoucherPlan
from connector.sevdesk.client import SevdeskClient
from local.faults import KINDS, FaultPlan, FaultRule
from local.preflight.cli import main
from local.sample_shop import is_sample_credit_note, sample_orders, sample_shops
from local.sandbox.base import Exchange
from local.sandbox.billbee import BillbeeSandbox
from local.sandbox.invoices import printed_invoice_number
from local.sandbox.sevdesk import SevdeskSandbox
from local.stack import LocalStack, generate_credentials

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CID = SAMPLE_CONNECTION["connectionId"]
XSS_COMPANY = '<img src=x onerror="window.__xss=1">Müller & Söhne "GmbH"'
XSS_NAME = "<script>window.__xss=2</script>"
FAST = ["--no-rate-limit", "--timeout", "2", "--max-wait", "2", "--progress-seconds", "0"]


def env_for(credentials: dict[str, str]) -> dict[str, str]:
    return {"BILLBEE_API_KEY": credentials["billbeeApiKey"], "BILLBEE_USERNAME": credentials["billbeeUsername"],
            "BILLBEE_API_PASSWORD": credentials["billbeeApiPassword"],
            "SEVDESK_API_TOKEN": credentials["sevdeskApiToken"]}


def writes(exchanges: list[Exchange]) -> list[tuple[str, str, str]]:
    """Every request that could have changed something, from a sandbox's own log."""
    return [(e.api, e.method, e.path) for e in exchanges
            if e.method != "GET" or e.operation in ("create_invoice", "download_invoice_pdf")
            or "createinvoice" in e.path.lower()]


def preflight(tmp: Path, billbee: str, sevdesk: str, credentials: dict[str, str], *extra: str,
              connection: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "connection.json"
    path.write_text(json.dumps(connection or SAMPLE_CONNECTION))
    code = main(["--connection", str(path), "--out", str(tmp / "out"), "--billbee-url", billbee,
                 "--sevdesk-url", sevdesk, *FAST, *extra], env=env_for(credentials))
    report = tmp / "out" / "preflight.json"
    return code, json.loads(report.read_text()) if report.exists() else {}


def with_xss(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample shop with one customer whose name is markup: the page must show it as text."""
    orders = copy.deepcopy(orders)
    target = next(o for o in orders if o.get("InvoiceNumber") and not is_sample_credit_note(o)
                  and not o["InvoiceAddress"].get("Company"))
    target["InvoiceAddress"]["Company"] = XSS_COMPANY
    target["InvoiceAddress"]["LastName"] = XSS_NAME
    return orders


# -- the comparison with a real run --------------------------------------------------------------------------------
@dataclass
class Compared:
    stack: LocalStack
    code: int
    report: dict[str, Any]
    out: Path
    output: str
    adopted_number: str
    adopted_id: str
    reused_contact: str
    seeded: int  # exchanges the test itself caused before the preflight


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compared]:
    """The sample shop: a voucher Billbee's own connection booked already and one customer known in sevDesk; the
    preflight first, then the run the local stack makes of the same orders and connection."""
    tmp = tmp_path_factory.mktemp("preflight")
    orders = with_xss(sample_orders())
    with LocalStack(orders=orders, billbee_rate_limits=False) as stack:
        seeded_order = next(o for o in orders if o.get("InvoiceNumber") and not is_sample_credit_note(o)
                            and o["PaymentMethod"] == 3)
        number = printed_invoice_number(seeded_order)
        sevdesk = SevdeskClient(api_token=stack.credentials["sevdeskApiToken"], base_url=stack.sevdesk.base_url)
        total = Decimal(str(seeded_order["TotalCost"]))
        adopted = sevdesk.save_voucher(VoucherPlan(
            order_id=1, invoice_number=number, voucher_date=date(2026, 10, 3), delivery_date=date(2026, 10, 3),
            tax_rule=1, currency="EUR", supplier_name="Billbee", total_gross=total, payments=(), contact=None,
            positions=(PlannedPosition(3631, Decimal(19), total, "gebucht von Billbee"),),
        ), filename=None)
        known = next(o for o in orders if o is not seeded_order and o.get("Customer"))
        customer_id = int(known["Customer"]["Id"])
        contact_id = sevdesk.create_contact(ContactPlan(
            customer_id=customer_id, customer_number=f"BB-{customer_id}", organisation_name=None, first_name="Known",
            last_name="Customer", vat_number=None, email=None, street=None, zip=None, city=None, country_code=None))
        sevdesk.close()
        seeded = len(stack.sevdesk.exchanges)
        assert len(stack.billbee.exchanges) == 0

        import contextlib
        import io

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code, report = preflight(tmp, stack.billbee.base_url, stack.sevdesk.base_url, stack.credentials,
                                     "--limit", "1000")
        yield Compared(stack, code, report, tmp / "out", printed.getvalue(), number, adopted.id, contact_id, seeded)


@pytest.fixture(scope="module")
def after_run(compared: Compared) -> Compared:
    """The same orders and connection, booked by the real poll and export handlers (``make run``)."""
    stack = compared.stack
    stack.save_connection(SAMPLE_CONNECTION)
    stack.poll()
    stack.drain()
    return compared


def test_the_preflight_sends_no_write_and_says_so(compared: Compared) -> None:
    stack = compared.stack
    assert compared.code == 0, compared.output
    assert writes(stack.billbee.exchanges) == []
    assert writes(stack.sevdesk.exchanges[compared.seeded:]) == []
    sent = compared.report["requests"]
    assert set(sent["sent"]) == {"GET"} and sent["refused"] == []
    assert sum(sent["sent"].values()) == len(stack.billbee.exchanges) + len(stack.sevdesk.exchanges) - compared.seeded
    assert "0 refused by the guard" in compared.output
    lines = (compared.out / "requests.jsonl").read_text().splitlines()
    assert len(lines) == sum(sent["sent"].values())
    everything = "\n".join(p.read_text() for p in compared.out.iterdir() if p.is_file()) + compared.output
    for secret in stack.credentials.values():
        assert secret not in everything


def test_the_preflight_shows_every_order_with_its_outcome(compared: Compared) -> None:
    report = compared.report
    outcomes = {o["orderId"]: o["outcome"] for o in report["orders"]}
    billbee = {o["BillBeeOrderId"] for o in compared.stack.billbee.dump_orders()}
    assert set(outcomes) == billbee
    adopted = [o for o in report["orders"] if o["outcome"] == "alreadyInSevdesk"]
    assert [(o["invoiceNumber"], o["existingVouchers"][0]["id"]) for o in adopted] == [
        (compared.adopted_number, compared.adopted_id)]
    assert [o["reason"] for o in report["orders"] if o["outcome"] == "skipped"] == ["the order has no invoice yet"]
    reused = [o["contact"] for o in report["orders"] if (o.get("contact") or {}).get("contactId")]
    assert reused and {c["contactId"] for c in reused} == {compared.reused_contact}
    assert report["setupChecks"]["ok"] and all(c["ok"] for c in report["setupChecks"]["checks"])
    assert report["totals"] and all(Decimal(t["gross"]) for t in report["totals"])


def test_the_vouchers_equal_what_the_run_books_field_for_field(after_run: Compared) -> None:
    stack, report = after_run.stack, after_run.report
    run = stack.report(CID)
    state = {o["orderId"]: o for o in run["orders"]}
    dump = stack.sevdesk.dump()
    vouchers: dict[str, list[dict[str, Any]]] = {}
    for voucher in dump["vouchers"]:
        vouchers.setdefault(voucher["description"], []).append(voucher)
    contacts = {c["customerNumber"]: c["id"] for c in dump["contacts"]}
    received = [e for e in stack.sevdesk.exchanges[after_run.seeded:] if e.status and e.status < 300]
    saved = {e.request_body["voucher"]["description"]: (e, e.response_body) for e in received
             if e.operation == "save_voucher"}
    booked: dict[str, list[Any]] = {}
    for e in received:
        if e.operation == "book_amount":
            booked.setdefault(e.path.split("/")[-2], []).append(e.request_body)
    created_contacts = {e.request_body["customerNumber"]: e.request_body for e in received
                        if e.operation == "create_contact"}
    tagged = {e.path.split("/")[-2]: e.request_body for e in stack.billbee.exchanges if e.operation == "add_tags"}

    planned = [o for o in report["orders"] if o["outcome"] in ("wouldExport", "alreadyInSevdesk")]
    assert {o["orderId"]: "EXPORTED" for o in planned} == {
        i: s["state"] for i, s in state.items() if s["state"] == "EXPORTED"}
    assert len(saved) == sum(o["outcome"] == "wouldExport" for o in planned)
    for order in planned:
        number = order["invoiceNumber"]
        assert len(vouchers[number]) == 1, number  # adopted ones are never saved twice
        held = vouchers[number][0]
        if order["outcome"] == "alreadyInSevdesk":
            assert held["id"] == after_run.adopted_id and number not in saved
        else:
            exchange, answer = saved[number]
            body = copy.deepcopy(order["saveVoucher"])
            assert body["filename"] == f"<temp file of {order['voucher']['pdfName']}>"
            body["filename"] = exchange.request_body["filename"]
            supplier = body["voucher"].get("supplier")
            if supplier is not None and supplier["id"].startswith("<new contact "):
                supplier["id"] = contacts[order["contact"]["customerNumber"]]
            sent = exchange.request_body
            if order["outcome"] == "wouldExport" and any(n.startswith("credit note of") for n in
                                                         order.get("preflightNotes") or []):
                # The export names the original's voucher id when that voucher happens to be saved first.
                sent = copy.deepcopy(sent)
                for position in sent["voucherPosSave"]:
                    position["comment"] = re.sub(r" \(Beleg \d+\)", "", position["comment"])
            assert body == sent, number
            voucher = order["voucher"]
            assert held["file"]["originalName"] == voucher["pdfName"]
            assert [(p["accountDatev"]["id"], Decimal(p["taxRate"]), Decimal(p["sumGross"]), p["comment"])
                    for p in held["positions"]] == [
                (str(p["accountDatevId"]), Decimal(p["taxRate"]), Decimal(p["sumGross"]), c["comment"])
                for p, c in zip(voucher["positions"], exchange.request_body["voucherPosSave"], strict=True)]
            assert Decimal(held["sumGross"]) == Decimal(voucher["totalGross"])
            assert held["taxRule"]["id"] == str(voucher["taxRule"])
            assert held["voucherDate"].startswith(voucher["voucherDate"])
            assert held["deliveryDate"].startswith(voucher["deliveryDate"])
        assert booked.get(held["id"], []) == [b["body"] for b in order["bookings"]], number
        assert [(b["type"], Decimal(str(b["amount"])), b["checkAccount"]["id"]) for b in held["bookings"]] == [
            (b["type"], Decimal(b["amount"]), str(b["checkAccountId"])) for b in order["bookings"]]
        contact = order.get("contact")
        if contact is not None and contact["action"] == "create" and contact.get("firstOrder") == order["orderId"]:
            assert order["writes"][0]["body"] == created_contacts[contact["customerNumber"]]
        assert tagged[str(order["orderId"])] == {"Tags": ["Sevdesk"]}
        assert state[order["orderId"]]["notes"] == order["voucher"]["notes"]
    for order in report["orders"]:
        if order["outcome"] == "skipped":
            assert state[order["orderId"]]["state"] == "SKIPPED"
            assert state[order["orderId"]]["reason"].startswith(order["reason"])
    assert set(created_contacts) == {o["contact"]["customerNumber"] for o in planned
                                     if o.get("contact") and o["contact"]["action"] == "create"}


def test_the_page_opens_in_a_real_browser_and_shows_every_order(compared: Compared, tmp_path: Path) -> None:
    page = compared.out / "preflight.html"
    text = page.read_text()
    assert "<script>" not in text and "<img src=x" not in text and html_escaped(XSS_COMPANY) in text
    driver = browser(tmp_path)
    try:
        driver.get(page.as_uri())
        assert driver.execute_script("return window.__xss === undefined")
        from selenium.webdriver.common.by import By

        shown = {e.get_attribute("data-order-id") for e in driver.find_elements(By.CSS_SELECTOR, "article.order")
                 if e.is_displayed()}
        assert shown == {str(o["orderId"]) for o in compared.report["orders"]}
        body = driver.find_element(By.TAG_NAME, "body").text
        assert XSS_COMPANY in body  # shown as the text it is
        assert "Nothing was written" in body and "Setup checks" in body
        for title in ("Would be exported", "Already in sevDesk", "Not exported now"):
            assert title in body
        assert driver.find_elements(By.CSS_SELECTOR, "table.totals tr")
        driver.save_screenshot(str(tmp_path / "preflight.png"))
    finally:
        driver.quit()


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def browser(tmp: Path) -> Any:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium chromium-driver)")
        pytest.skip("chromium is not installed (`make test` installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp / 'profile'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


# -- plain sandboxes -----------------------------------------------------------------------------------------------
@dataclass
class Sandboxes:
    billbee: BillbeeSandbox
    sevdesk: SevdeskSandbox
    credentials: dict[str, str]
    faults: FaultPlan

    def reset(self, orders: list[dict[str, Any]]) -> None:
        self.faults.clear()
        with self.billbee.lock:
            self.billbee._orders.clear()
            self.billbee.exchanges.clear()
            for order in orders:
                self.billbee._store(order)
        self.sevdesk.reset()
        self.sevdesk.bookkeeping_version = "2.0"

    def run(self, tmp: Path, *extra: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        return preflight(tmp, self.billbee.base_url, self.sevdesk.base_url, self.credentials, *extra, **kwargs)

    def writes(self) -> list[tuple[str, str, str]]:
        return writes(self.billbee.exchanges) + writes(self.sevdesk.exchanges)


SMALL = [o for o in sample_orders() if not is_sample_credit_note(o)][:12]


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[Sandboxes]:
    credentials = generate_credentials()
    faults = FaultPlan(seed=11)
    billbee = BillbeeSandbox(api_key=credentials["billbeeApiKey"], username=credentials["billbeeUsername"],
                             password=credentials["billbeeApiPassword"], orders=SMALL, shops=sample_shops(),
                             faults=faults, hold_seconds=0.6, rate_limits=False)
    sevdesk = SevdeskSandbox(api_token=credentials["sevdeskApiToken"], faults=faults, hold_seconds=0.6)
    billbee.start()
    sevdesk.start()
    try:
        yield Sandboxes(billbee, sevdesk, credentials, faults)
    finally:
        billbee.stop()
        sevdesk.stop()


@pytest.fixture
def blank(sandboxes: Sandboxes) -> Sandboxes:
    sandboxes.reset(SMALL)
    return sandboxes


def test_every_fault_still_sends_no_write(blank: Sandboxes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every kind of fault, on every operation the preflight calls (spread over two runs), and never a write."""
    seen: set[str] = set()
    for spread in (0, 1):
        blank.reset(SMALL)
        for index, kind in enumerate(sorted(KINDS)):
            blank.faults.add(FaultRule("*", "*", kind, times=1, after=2 * index + spread, retry_after=1))
        code, report = blank.run(tmp_path / f"run{spread}", "--timeout", "0.3")
        output = capsys.readouterr()
        assert "Traceback" not in output.out + output.err
        assert code in (0, 1), output.out + output.err
        assert report["requests"]["refused"] == [] and set(report["requests"]["sent"]) == {"GET"}
        assert blank.writes() == []
        seen |= {e.fault for e in blank.billbee.exchanges + blank.sevdesk.exchanges if e.fault}
    assert seen == set(KINDS)


class FutureChange:
    """A write a future change of the pipeline might add, made right after the orders are listed."""

    def __init__(self, name: str, swallow: bool) -> None:
        self.name = name
        self.swallow = swallow

    def __call__(self, clients: Any, settings: Any) -> Any:
        from connector.bookkeeping.voucher import PlannedPayment
        from connector.pipeline import poll

        listed = ORIGINAL_LIST(clients, settings)
        from connector.billbee.models import Order

        order = Order.model_validate(listed.orders[0])
        attempts = {
            "tag the order": lambda: clients.billbee.add_tags(order.bill_bee_order_id, ["Sevdesk"]),
            "fetch the invoice (CreateInvoice)": lambda: clients.billbee.invoice_document(order),
            "download the PDF": lambda: clients.billbee._download_pdf(
                order, str(clients.billbee._http.base_url).replace("/api/v1/", "/download/invoices/x.pdf")),
            "GET CreateInvoice": lambda: clients.billbee._call("GET", f"orders/CreateInvoice/{order.bill_bee_order_id}",
                                                               "create_invoice"),
            "upload the PDF": lambda: clients.sevdesk.upload_temp_file("x.pdf", b"%PDF-1.4"),
            "book a payment": lambda: clients.sevdesk.book_amount("1", PlannedPayment(
                "p", Decimal(1), datetime(2026, 10, 2, 12), 5101, 3, "FULL_PAYMENT")),
            "create a clearing account": lambda: clients.sevdesk.create_clearing_account("x"),
            "delete a contact": lambda: clients.sevdesk._call("DELETE", "Contact/1", "delete_contact"),
        }
        try:
            attempts[self.name]()
        except Exception:
            if not self.swallow:
                raise
        assert poll is not None
        return listed


from connector.pipeline import poll as _poll  # noqa: E402 - the original, before any test patches it

ORIGINAL_LIST = _poll.list_candidates
FUTURE_WRITES = ["tag the order", "fetch the invoice (CreateInvoice)", "download the PDF", "GET CreateInvoice",
                 "upload the PDF", "book a payment", "create a clearing account", "delete a contact"]


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "swallowed"])
@pytest.mark.parametrize("write", FUTURE_WRITES)
def test_the_guard_stops_a_write_a_future_change_attempts(
    blank: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    write: str, swallow: bool,
) -> None:
    from connector.pipeline import poll

    monkeypatch.setattr(poll, "list_candidates", FutureChange(write, swallow))
    code, report = blank.run(tmp_path)
    output = capsys.readouterr()
    assert code == 5, output.out + output.err
    assert "read-only guard refused" in output.out and "Traceback" not in output.out + output.err
    assert blank.writes() == []
    assert len(report["requests"]["refused"]) == 1 and report["refusedWrite"]
    assert "stopped a write" in (tmp_path / "out" / "preflight.html").read_text()


# -- bad input -----------------------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_bad_input_gets_one_clear_message_and_a_non_zero_exit(
    blank: Sandboxes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = blank.credentials
    secret = good["sevdeskApiToken"]
    bad_connection = {**SAMPLE_CONNECTION, "general": {"startDate": "2026-10-01", "orderStateIds": [99]}}
    port = closed_port()
    cases: list[tuple[str, int, str, dict[str, Any]]] = [
        ("no credentials", 2, "no credentials: set the environment variables", {"env": {}}),
        ("wrong Billbee password", 2, "Billbee rejected the API key", {
            "env": env_for({**good, "billbeeApiPassword": "wrong-password"})}),
        ("wrong sevDesk token", 2, "sevDesk rejected the API token", {
            "env": env_for({**good, "sevdeskApiToken": "0" * 32})}),
        ("a token with a space inside", 2, "sevdeskApiToken: must not contain spaces", {
            "env": env_for({**good, "sevdeskApiToken": secret[:8] + " " + secret[8:]})}),
        ("Billbee unreachable", 1, "could not be asked", {"billbee": f"http://127.0.0.1:{port}/api/v1"}),
        ("sevDesk unreachable", 1, "could not be asked", {"sevdesk": f"http://127.0.0.1:{port}/api/v1"}),
        ("connection with errors", 2, "general.orderStateIds", {"connection": bad_connection}),
        ("no such connection file", 2, "no such file", {"connection_path": str(tmp_path / "missing.json")}),
        ("a base URL that is none", 2, "is not an http(s) URL", {"billbee": "ftp://example"}),
        ("bookkeeping 1.0", 2, "only version 2.0 is supported", {"version": "1.0"}),
    ]
    for name, status, words, case in cases:
        blank.sevdesk.bookkeeping_version = case.get("version", "2.0")
        path = tmp_path / f"{len(name)}.json"
        path.write_text(json.dumps(case.get("connection", SAMPLE_CONNECTION)))
        env = case.get("env", env_for(good))
        code = main(["--connection", case.get("connection_path", str(path)), "--out", str(tmp_path / "out"),
                     "--billbee-url", case.get("billbee", blank.billbee.base_url),
                     "--sevdesk-url", case.get("sevdesk", blank.sevdesk.base_url), *FAST], env=env)
        output = capsys.readouterr()
        text = output.out + output.err
        assert code == status, (name, text)
        assert words in text, (name, text)
        assert "Traceback" not in text and secret not in text and secret[4:-4] not in text, name
        assert blank.writes() == [], name
    files = "".join(p.read_text() for p in (tmp_path / "out").iterdir() if p.is_file())
    assert secret not in files and good["billbeeApiPassword"] not in files


class ManyOrders(BillbeeSandbox):
    """The Billbee sandbox for 10,000 orders: it renders (deep-copies) every matching order, and the invoice of every
    invoiced one, for every page it answers, seconds per page at this size; here each order is sent as stored
    (nothing changes them) and each invoice rendered once (the test patches ``invoice_for``)."""

    def _render_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return order


def test_ten_thousand_orders_are_paged_with_progress_and_capped_by_limit(
    sandboxes: Sandboxes, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from local.sandbox import billbee as billbee_module

    rendered: dict[int, dict[str, Any]] = {}
    render = getattr(billbee_module, "invoice_for")  # noqa: B009 - imported there, not exported

    def invoice_once(order: dict[str, Any], **options: Any) -> dict[str, Any]:
        key = int(order["BillBeeOrderId"])
        if key not in rendered:
            rendered[key] = render(order, **options)
        return dict(rendered[key])

    monkeypatch.setattr(billbee_module, "invoice_for", invoice_once)
    # Every page filters all 10,000 orders by date again: parse each timestamp once.
    monkeypatch.setattr(billbee_module, "parse_billbee_datetime",
                        functools.lru_cache(maxsize=None)(billbee_module.parse_billbee_datetime))
    credentials = sandboxes.credentials
    many = ManyOrders(api_key=credentials["billbeeApiKey"], username=credentials["billbeeUsername"],
                      password=credentials["billbeeApiPassword"], orders=derive_orders(10_000, templates=SMALL),
                      shops=sample_shops(), rate_limits=False)
    many.start()
    try:
        blank = Sandboxes(many, sandboxes.sevdesk, credentials, sandboxes.faults)
        sandboxes.reset(SMALL)
        code, report = blank.run(tmp_path, "--limit", "20", "--timeout", "30")
    finally:
        many.stop()
    output = capsys.readouterr().out
    assert code == 4, output
    assert "10000 order(s) would be exported or looked at" in output and "--limit" in output
    assert re.search(r"Billbee orders: page 40 of 40", output), output
    counts = report["summary"]["counts"]
    assert counts["beyondLimit"] == 10_000 - 20 and counts["wouldExport"] + counts.get("skipped", 0) == 20
    assert blank.writes() == []
    page = (tmp_path / "out" / "preflight.html").read_text()
    assert page.count('class="order"') < 500  # the page lists a sample of the orders it did not check


# -- what the run saw ----------------------------------------------------------------------------------------------
def test_observations_record_what_the_apis_answered(
    blank: Sandboxes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blank.billbee.invoice_totals = "with_fees"
    blank.billbee.paging = False
    blank.billbee.invoice_billbee_id = "invoice"
    blank.faults.add(FaultRule("billbee", "list_shops", "429bare", times=1))
    blank.faults.add(FaultRule("sevdesk", "list_vouchers", "429", times=1, retry_after=1))
    try:
        code, _ = blank.run(tmp_path)
    finally:
        blank.billbee.invoice_totals = "positions"
        blank.billbee.paging = True
        blank.billbee.invoice_billbee_id = "order"
    capsys.readouterr()
    assert code == 0
    seen = {q["id"]: q for q in json.loads((tmp_path / "out" / "observations.json").read_text())["questions"]}
    assert seen["invoiceListTotals"]["answer"] == "TotalGross includes the fees"
    assert seen["retryAfter"]["withRetryAfter"] == 1 and seen["retryAfter"]["withoutRetryAfter"] == 1
    assert "invoices: without Paging" in seen["paging"]["answer"]
    assert "BillbeeId is not the order id" in seen["invoiceBillbeeId"]["answer"]
    assert seen["bookkeepingVersion"]["answer"] == "2.0"
    assert "naive (no offset)" in seen["timestamps"]["answer"]
    assert seen["printedInvoiceNumbers"]["counts"]
    assert "notObserved" in seen["createInvoiceOnInvoiced"]


def test_make_preflight_runs_the_command_line(blank: Sandboxes, tmp_path: Path) -> None:
    """``make preflight`` as a merchant types it, credentials from a file, against the sandboxes."""
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps(blank.credentials))
    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps(SAMPLE_CONNECTION))
    args = (f"--connection {connection} --credentials {credentials} --out {tmp_path / 'out'} "
            f"--billbee-url {blank.billbee.base_url} --sevdesk-url {blank.sevdesk.base_url} --no-rate-limit")
    make = shutil.which("make")
    command = [make, "preflight", f"ARGS={args}"] if make and (REPO / ".venv").exists() else [
        sys.executable, "-m", "local.preflight", *args.split()]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "read-only" in text and "0 refused" in text
    for name in ("preflight.html", "preflight.json", "observations.json", "requests.jsonl"):
        assert (tmp_path / "out" / name).exists()
    assert all(secret not in text for secret in blank.credentials.values())
    assert blank.writes() == []


def test_the_readmes_first_command_tries_the_preflight_on_the_sample_shop_without_accounts(tmp_path: Path) -> None:
    """README, "Going live: the preflight": ``make preflight ARGS='--sandbox'`` as written, on a machine without any
    Billbee or sevDesk account; only ``--out`` is added, to keep the repository clean."""
    readme = (REPO / "README.md").read_text()
    (line,) = [x for x in readme.splitlines() if x.startswith("make preflight ARGS='--sandbox'")]
    args = line.split("ARGS='", 1)[1].split("'", 1)[0] + f" --out {tmp_path / 'out'}"
    make = shutil.which("make")
    command = [make, "preflight", f"ARGS={args}"] if make and (REPO / ".venv").exists() else [
        sys.executable, "-m", "local.preflight", *args.split()]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "not your accounts" in text and "0 refused by the guard" in text
    assert "orders: 47 would be exported, 1 not exported now (skipped)" in text
    report = json.loads((tmp_path / "out" / "preflight.json").read_text())
    credit_notes = [o for o in report["orders"] if str(o["invoiceNumber"] or "").startswith("GS-")]
    assert len(report["orders"]) == 48 and len(credit_notes) == 4
