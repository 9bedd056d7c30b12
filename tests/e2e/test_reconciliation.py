"""The reconciliation report on the local stack (issue 15): a month with exported invoices, a failed export, a voucher
entered by hand in sevDesk, a duplicate, credit notes and an invoice whose voucher is dated into the next month is
reported exactly so, with totals per tax rule and rate that add up, through the HTTP API (JSON, CSV, and in slices
when one request is not enough) and through ``python -m local.reconcile --state``.

The merchant is the sample shop's November with the credit notes' originals from October, under a connection whose
voucher date is the payment date:
- RE-2026-1083 is invoiced on 27 November and paid on 1 December: its voucher is dated into December;
- RE-2026-1076 carries 20 % VAT (an Austrian consumer, an OSS distance sale): its export needs attention;
- a bookkeeper enters a cash sale ("Kasse 21.11.") and RE-2026-1077 a second time by hand in sevDesk;
- the four credit notes of the sample shop are exported; the Gutschrift GS-2026-3 has no refund, so it stays open.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chaos import check_books
from support import ApiClient

from connector.bookkeeping.voucher import PlannedPosition, VoucherPlan
from connector.sevdesk.client import SevdeskClient
from local.sample_shop import is_sample_credit_note, sample_orders
from local.serve import api_token, serve_stack
from local.stack import LocalStack, json_default

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CONNECTION["sevdesk"]["voucherDate"] = "payment"
CID = CONNECTION["connectionId"]
D = Decimal
CENT = D("0.01")

SAMPLE = sample_orders()
BY_NUMBER = {o["OrderNumber"]: o for o in SAMPLE if o["OrderNumber"]}
CREDIT_NOTES = [o for o in SAMPLE if is_sample_credit_note(o)]
ORIGINALS = [BY_NUMBER[o["OrderNumber"][:-3]] for o in CREDIT_NOTES if o["OrderNumber"]]
NOVEMBER_INVOICES = [o for o in SAMPLE if o.get("InvoiceNumber") and not is_sample_credit_note(o)
                     and str(o["InvoiceDate"]).startswith("2026-11")]


def printed(order: dict[str, Any]) -> str:
    return f"{order['InvoiceNumberPrefix']}{order['InvoiceNumber']}"


def merchant_orders() -> list[dict[str, Any]]:
    orders = copy.deepcopy(ORIGINALS + NOVEMBER_INVOICES + CREDIT_NOTES)
    by_number = {printed(o): o for o in orders}
    late = by_number["RE-2026-1083"]
    late.update(InvoiceDate="2026-11-27T11:39:32.27", PayedAt="2026-12-01T09:00:00")
    late["Payments"][0]["PayDate"] = "2026-12-01T09:00:00"
    oss = by_number["RE-2026-1076"]
    oss.update(TaxRate1=20.0)
    oss["ShippingAddress"]["CountryISO2"] = "AT"
    oss["InvoiceAddress"]["CountryISO2"] = "AT"
    return orders


ORDERS = merchant_orders()
DOCUMENTS = {printed(o): o for o in ORDERS}
KASSE = ("Kasse 21.11.", date(2026, 11, 21), {D(19): D("35.70")})
DUPLICATE = ("RE-2026-1077", date(2026, 11, 12), {D(19): D("24.80"), D(7): D("19.99")})


def charged_per_rate(order: dict[str, Any]) -> dict[Decimal, Decimal]:
    """What the customer was charged per VAT rate, from the order alone: each line at its TaxIndex's rate, shipping
    at the highest line rate (the Billbee sandbox's rule), in cents."""
    out: dict[Decimal, Decimal] = {}
    rates = {1: D(str(order["TaxRate1"])), 2: D(str(order["TaxRate2"]))}
    for item in order["OrderItems"]:
        rate = rates.get(item.get("TaxIndex") or 0, D(0)).normalize()
        out[rate] = out.get(rate, D(0)) + D(str(item["TotalPrice"]))
    if order.get("ShippingCost"):
        top = max(out)
        out[top] += D(str(order["ShippingCost"]))
    return {rate: amount.quantize(CENT) for rate, amount in out.items() if amount}


def add(totals: dict[Decimal, Decimal], amounts: dict[Decimal, Decimal], sign: int = 1) -> None:
    for rate, amount in amounts.items():
        totals[rate] = totals.get(rate, D(0)) + sign * amount


def enter_by_hand(stack: LocalStack, number: str, day: date, gross: dict[Decimal, Decimal]) -> str:
    """A voucher a bookkeeper types into sevDesk (the sandbox's API, as sevDesk's own web app would send it)."""
    accounts = {D(19): 3631, D(7): 3632}
    plan = VoucherPlan(
        order_id=0, invoice_number=number, voucher_date=day, delivery_date=day, tax_rule=1, currency="EUR",
        supplier_name="Laufkundschaft", positions=tuple(PlannedPosition(accounts[r], r, g, "von Hand")
                                                        for r, g in gross.items()),
        total_gross=sum(gross.values(), D(0)), payments=(), contact=None)
    client = SevdeskClient(api_token=stack.credentials["sevdeskApiToken"], base_url=stack.sevdesk.base_url)
    try:
        return client.save_voucher(plan).id
    finally:
        client.close()


class Served:
    def __init__(self, stack: LocalStack, url: str) -> None:
        self.stack = stack
        self.http = ApiClient(url, api_token(stack))
        self.hand_made: dict[str, str] = {}

    def report(self, first: str, last: str, **params: str) -> Any:
        response = self.http.get(f"/connections/{CID}/reconciliation", params={"from": first, "to": last, **params})
        assert response.status_code == 200, response.text
        return response


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with LocalStack(orders=copy.deepcopy(ORDERS), billbee_rate_limits=False) as stack:
        stack.save_connection(CONNECTION)
        stack.poll()
        stack.drain()
        with serve_stack(stack) as server:
            api = Served(stack, server.url)
            api.hand_made["kasse"] = enter_by_hand(stack, *KASSE)
            api.hand_made["duplicate"] = enter_by_hand(stack, *DUPLICATE)
            yield api
            api.http.close()


def lines_by(body: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Lines by (category, number), the hand-made cash sale included."""
    out = {}
    for line in body["lines"]:
        key = (line["category"], line["invoiceNumber"])
        assert key not in out, key
        out[key] = line
    return out


def gross_per_rate(part: dict[str, Any] | None) -> dict[Decimal, Decimal]:
    return {} if part is None else {D(r["rate"]): D(r["gross"]) for r in part["rates"]}


def test_the_exports_went_as_the_month_needs(served: Served) -> None:
    """The precondition of the report: what the connector did with the month, in its own records."""
    records = {r.invoice_number: r for r in served.stack.records(CID)}
    assert records["RE-2026-1076"].state.value == "NEEDS_ATTENTION"
    assert "20 % VAT, a foreign EU rate" in (records["RE-2026-1076"].reason or "")
    assert {n: r.state.value for n, r in records.items() if n != "RE-2026-1076"} == {
        n: "EXPORTED" for n in DOCUMENTS if n != "RE-2026-1076"}
    # The books checker of the fault tests sees what the bookkeeper typed in by hand, and nothing else, as wrong.
    books = check_books(served.stack, CID, originals=[o for o in ORDERS if printed(o) != "RE-2026-1076"])
    duplicate_of = next(r for n, r in records.items() if n == "RE-2026-1077")
    voucher_ids = sorted([str(duplicate_of.steps.voucher_id), served.hand_made["duplicate"]], key=int)
    assert sorted(books.problems) == sorted([
        f"2 vouchers numbered RE-2026-1077: ids {voucher_ids}",
        f"order {duplicate_of.order_id} carries the tag but sevDesk holds 2 vouchers for it",
        "voucher Kasse 21.11. belongs to no recorded order",
    ]), books.summary()


def test_november_is_reported_exactly_with_totals_per_rule_and_rate_that_add_up(served: Served) -> None:
    body = served.report("2026-11-01", "2026-11-30").json()
    lines = lines_by(body)
    november = sorted(n for n, o in DOCUMENTS.items() if str(o["InvoiceDate"]).startswith("2026-11"))
    matched = [n for n in november if n not in ("RE-2026-1076", "RE-2026-1083", "GS-2026-3")]
    assert sorted(lines) == sorted(
        [("matched", n) for n in matched]
        + [("missing", "RE-2026-1076"), ("different", "RE-2026-1083"), ("open", "GS-2026-3"),
           ("extra", "Kasse 21.11."), ("extra", "RE-2026-1077")])
    assert body["counts"] == {"matched": len(matched), "open": 1, "different": 1, "missing": 1, "extra": 2}
    assert len(matched) == 14 and body["reconciles"] is False

    # Each matched line: Billbee's gross per rate (recomputed from positions and fees) is the charged amount.
    for number in matched:
        line = lines[("matched", number)]
        assert gross_per_rate(line["billbee"]) == gross_per_rate(line["sevdesk"]) == charged_per_rate(
            DOCUMENTS[number]), number
        assert line["export"]["state"] == "EXPORTED" and line["export"]["voucherId"] == line["sevdesk"]["voucherId"]
    credit_notes = [lines[("matched", n)] for n in ("GS-2026-1", "GS-2026-2", "GS-2026-4")]
    assert {line["billbee"]["kind"] for line in credit_notes} == {"creditNote"}
    assert all(D(line["sevdesk"]["total"]["gross"]) < 0 for line in credit_notes)

    missing = lines[("missing", "RE-2026-1076")]
    assert missing["sevdesk"] is None and missing["export"]["state"] == "NEEDS_ATTENTION"
    assert missing["reasons"] == [f"not in sevDesk; export NEEDS_ATTENTION: {missing['export']['reason']}"]
    assert gross_per_rate(missing["billbee"]) == {D(20): D("49.80")}

    late = lines[("different", "RE-2026-1083")]
    assert late["sevdesk"]["voucherDate"] == "2026-12-01" and late["sevdesk"]["inPeriod"] is False
    assert late["reasons"] == [f"voucher {late['sevdesk']['voucherId']} is dated 2026-12-01, outside the period "
                               "(invoice date 2026-11-27)"]

    gutschrift = lines[("open", "GS-2026-3")]
    assert gutschrift["sevdesk"]["status"] == "100"
    assert gutschrift["reasons"] == [f"voucher {gutschrift['sevdesk']['voucherId']} is open (status 100): 0.00 of "
                                     "20.00 paid, although payments are reconciled in Billbee"]

    kasse, second = lines[("extra", "Kasse 21.11.")], lines[("extra", "RE-2026-1077")]
    assert kasse["sevdesk"]["voucherId"] == served.hand_made["kasse"] and kasse["billbee"] is None
    assert kasse["reasons"] == ["no Billbee invoice or credit note of the period has the number Kasse 21.11."]
    assert second["sevdesk"]["voucherId"] == served.hand_made["duplicate"]
    original = lines[("matched", "RE-2026-1077")]["sevdesk"]["voucherId"]
    assert second["reasons"] == [f"a second voucher with the number RE-2026-1077; voucher {original} is the one "
                                 "matched with Billbee's document"]

    # The totals per (tax rule, rate): Billbee's side is every document of November; sevDesk's is that, less the
    # voucher that was not written and the one dated into December, plus the two entered by hand.
    billbee: dict[Decimal, Decimal] = {}
    for number in november:
        add(billbee, charged_per_rate(DOCUMENTS[number]))
    sevdesk = dict(billbee)
    add(sevdesk, charged_per_rate(DOCUMENTS["RE-2026-1076"]), -1)
    add(sevdesk, charged_per_rate(DOCUMENTS["RE-2026-1083"]), -1)
    add(sevdesk, KASSE[2])
    add(sevdesk, DUPLICATE[2])
    rows = {(row["taxRule"], D(row["rate"])): row for row in body["totals"]}
    assert set(rows) == {(1, D(19)), (1, D(7)), (1, D(20))}
    for (_, rate), row in rows.items():
        assert D(row["billbee"]["gross"]) == billbee.get(rate, D(0)), rate
        assert D(row["sevdesk"]["gross"]) == sevdesk.get(rate, D(0)), rate
        for side in ("billbee", "sevdesk", "difference"):
            amounts = row[side]
            assert D(amounts["gross"]) == D(amounts["net"]) + D(amounts["vat"])
        for part in ("gross", "net", "vat"):
            assert D(row["difference"][part]) == D(row["billbee"][part]) - D(row["sevdesk"][part])
    assert D(rows[(1, D(20))]["difference"]["gross"]) == D("49.80")
    for side in ("billbee", "sevdesk", "difference"):
        for part in ("gross", "net", "vat"):
            assert D(body["total"][side][part]) == sum((D(row[side][part]) for row in body["totals"]), D(0))
    # ... and each total is the sum of its lines' amounts in the period.
    for (_, rate), row in rows.items():
        assert sum((gross_per_rate(line["billbee"]).get(rate, D(0)) for line in body["lines"]
                    if line["billbee"] and line["billbee"]["inPeriod"]), D(0)) == D(row["billbee"]["gross"])
        assert sum((gross_per_rate(line["sevdesk"]).get(rate, D(0)) for line in body["lines"]
                    if line["sevdesk"] and line["sevdesk"]["inPeriod"]), D(0)) == D(row["sevdesk"]["gross"])


def test_december_shows_the_voucher_of_novembers_invoice_from_its_side(served: Served) -> None:
    body = served.report("2026-12-01", "2026-12-31").json()
    (line,) = body["lines"]
    assert (line["category"], line["invoiceNumber"]) == ("different", "RE-2026-1083")
    assert line["billbee"]["inPeriod"] is False and line["sevdesk"]["inPeriod"] is True
    assert line["reasons"] == [f"invoice date 2026-11-27 is outside the period (voucher "
                               f"{line['sevdesk']['voucherId']} dated 2026-12-01)"]
    late = charged_per_rate(DOCUMENTS["RE-2026-1083"])
    assert {(row["taxRule"], D(row["rate"])): D(row["difference"]["gross"]) for row in body["totals"]} == {
        (1, rate): -gross for rate, gross in late.items()}


def test_the_csv_answer_has_one_row_per_line_and_rate_and_total_rows_that_are_their_sums(served: Served) -> None:
    response = served.report("2026-11-01", "2026-11-30", format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["content-encoding"] == "gzip"  # httpx accepts it; Lambda answers at most 6 MB
    also = served.http.get(f"/connections/{CID}/reconciliation", params={"from": "2026-11-01", "to": "2026-11-30"},
                           headers={"Accept": "text/csv"})
    assert also.status_code == 200 and also.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    body = served.report("2026-11-01", "2026-11-30").json()
    for row in (r for r in rows if r["category"] == "total" and r["rate"]):
        parts = [r for r in rows if r["category"] != "total" and (r["taxRule"], r["rate"]) == (row["taxRule"],
                                                                                               row["rate"])]
        for side in ("billbeeGross", "sevdeskGross", "differenceGross"):
            assert sum((D(p[side]) for p in parts if p[side]), D(0)) == D(row[side]), (row["rate"], side)
    categories = {(r["category"], r["invoiceNumber"]) for r in rows if r["category"] != "total"}
    assert categories == {(line["category"], line["invoiceNumber"]) for line in body["lines"]}


def test_a_period_read_in_slices_gives_the_same_report_as_one_request(
    served: Served, monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = served.report("2026-11-01", "2026-11-30").json()
    monkeypatch.setenv("RECONCILIATION_SECONDS", "0")  # every request reads one step and answers 202
    url = f"/connections/{CID}/reconciliation"
    answers = []
    for _ in range(20):
        response = served.http.get(url, params={"from": "2026-11-01", "to": "2026-11-30"})
        answers.append(response.status_code)
        if response.status_code == 200:
            break
        assert response.status_code == 202, response.text
        running = response.json()
        assert running["status"] == "running" and response.headers["retry-after"] == str(running["retryAfter"])
        assert running["progress"]["billbee"]["done"] is True  # one page holds the month
    assert answers[-1] == 200 and len(answers) >= 3, answers
    sliced = response.json()
    for key in ("lines", "totals", "total", "counts", "reconciles"):
        assert sliced[key] == whole[key], key
    # The finished job is gone from the table; nothing of it outlives the answer.
    assert not [item for item in served.stack.dump_table() if item["SK"]["S"].startswith("RECONCILIATION#")]


def test_a_bad_period_or_an_unknown_connection_is_refused_with_what_is_wrong(served: Served) -> None:
    url = f"/connections/{CID}/reconciliation"
    backwards = served.http.get(url, params={"from": "2026-11-30", "to": "2026-11-01"})
    assert backwards.status_code == 400 and "before it starts" in backwards.json()["error"]
    too_long = served.http.get(url, params={"from": "2026-01-01", "to": "2027-06-30"})
    assert too_long.status_code == 400 and "at most 366 days" in too_long.json()["error"]
    not_a_date = served.http.get(url, params={"from": "2026-11", "to": "2026-11-30"})
    assert not_a_date.status_code == 400
    assert served.http.get(url, params={"to": "2026-11-30"}).status_code == 400
    unknown = served.http.get("/connections/no-such-shop/reconciliation",
                              params={"from": "2026-11-01", "to": "2026-11-30"})
    assert unknown.status_code == 404


def save_state(stack: LocalStack, state: Path) -> Path:
    """What ``python -m local.run --state DIR`` leaves for the stack's orders, account and table."""
    state.mkdir(parents=True)
    for name, data in (("credentials.json", stack.credentials), ("billbee-orders.json", stack.billbee.dump_orders()),
                       ("table.json", stack.dump_table())):
        (state / name).write_text(json.dumps(data, default=json_default))
    (state / "sevdesk-state.pickle").write_bytes(stack.sevdesk.export_state())
    return state


def test_local_reconcile_reports_the_same_month_from_a_saved_state(served: Served, tmp_path: Path) -> None:
    """``python -m local.reconcile --state DIR``: what ``local.run --state DIR`` would have left, reported."""
    state = save_state(served.stack, tmp_path / "state")
    out = tmp_path / "out"
    result = subprocess.run(  # noqa: S603 - our own command line, as a user runs it
        [sys.executable, "-m", "local.reconcile", "2026-11", "--state", str(state), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr  # it does not reconcile
    assert "2026-11-01 to 2026-11-30: does NOT reconcile (14 matched, 1 open, 1 different, 1 missing, 2 extra)" in (
        result.stdout)
    written = json.loads((out / "reconciliation.json").read_text())
    api = served.report("2026-11-01", "2026-11-30").json()
    for key in ("lines", "totals", "total", "counts"):
        assert written[key] == api[key], key
    assert (out / "reconciliation.csv").read_text().startswith("category,invoiceNumber,")


# -- the live accounts, read-only through the preflight's clients --------------------------------------------------
def sandbox_writes(stack: LocalStack, since: tuple[int, int]) -> list[tuple[str, str, str]]:
    """Every request since ``since`` (exchange counts) that could have changed something, from the sandboxes' logs."""
    fresh = stack.billbee.exchanges[since[0]:] + stack.sevdesk.exchanges[since[1]:]
    return [(e.api, e.method, e.path) for e in fresh if e.method != "GET" or "createinvoice" in e.path.lower()
            or e.path.lower().endswith("/getpdf")]


def exchange_counts(stack: LocalStack) -> tuple[int, int]:
    return len(stack.billbee.exchanges), len(stack.sevdesk.exchanges)


def live_env(credentials: dict[str, str]) -> dict[str, str]:
    return {"BILLBEE_API_KEY": credentials["billbeeApiKey"], "BILLBEE_USERNAME": credentials["billbeeUsername"],
            "BILLBEE_API_PASSWORD": credentials["billbeeApiPassword"],
            "SEVDESK_API_TOKEN": credentials["sevdeskApiToken"]}


def assert_no_credential_in(credentials: dict[str, str], texts: dict[str, str]) -> None:
    import base64

    basic = base64.b64encode(f"{credentials['billbeeUsername']}:{credentials['billbeeApiPassword']}".encode()).decode()
    for where, text in texts.items():
        for name, value in [*credentials.items(), ("basic auth", basic)]:
            assert value not in text, f"{name} appears in {where}"


def files_in(out: Path) -> dict[str, str]:
    return {str(path): path.read_text(encoding="utf-8", errors="replace") for path in out.rglob("*") if path.is_file()}


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    return text[start:text.index("\n## ", start + 1)]


def test_the_readmes_live_command_reports_the_month_read_only_and_never_shows_a_credential(
    served: Served, tmp_path: Path,
) -> None:
    """README, "Reconciling a month": the live form as written, credentials from the environment as the README exports
    them, over real HTTP against the sandboxes (only the two base URLs and ``--out`` are added). Without the
    connector's table the report still finds every line but cannot name a missing invoice's export state."""
    stack = served.stack
    (line,) = [x for x in readme_section("Reconciling a month").splitlines() if "--live" in x and x.startswith(".venv")]
    command = line.split("#", 1)[0].split()
    assert command[:3] == [".venv/bin/python", "-m", "local.reconcile"]
    connection = tmp_path / "my-connection.json"
    connection.write_text(json.dumps(CONNECTION))  # without credentials: they come from the environment
    out = tmp_path / "out"
    argv = [str(connection) if arg == "my-connection.json" else arg for arg in command[1:]]
    before = exchange_counts(stack)
    result = subprocess.run(  # noqa: S603 - our own command line, as a merchant runs it
        [sys.executable, *argv, "--out", str(out), "--billbee-url", stack.billbee.base_url,
         "--sevdesk-url", stack.sevdesk.base_url],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, **live_env(stack.credentials)},
    )
    text = result.stdout + result.stderr
    assert result.returncode == 3, text  # November does not reconcile
    assert "credentials from the environment" in text and "Traceback" not in text
    assert re.search(r"read-only: \d+ request\(s\) sent \(\d+ GET\), 0 refused by the guard", text), text
    assert sandbox_writes(stack, before) == []
    assert_no_credential_in(stack.credentials, {"stdout": result.stdout, "stderr": result.stderr, **files_in(out)})

    live = json.loads((out / "reconciliation.json").read_text())
    api = served.report("2026-11-01", "2026-11-30").json()
    assert {(x["category"], x["invoiceNumber"]) for x in live["lines"]} == {
        (x["category"], x["invoiceNumber"]) for x in api["lines"]}
    assert live["totals"] == api["totals"] and live["counts"] == api["counts"]
    (missing,) = [x for x in live["lines"] if x["category"] == "missing"]
    assert missing["invoiceNumber"] == "RE-2026-1076" and missing["export"] is None
    assert missing["reasons"] == ["not in sevDesk; the connector's export records were not read (not available "
                                  "here), so the export state is unknown"]
    assert all(x["export"] is None for x in live["lines"])
    assert any("export records were not read" in note for note in live["notes"])
    assert (out / "reconciliation.csv").read_text().startswith("category,invoiceNumber,")


ORIGINAL_POSITIONS = SevdeskClient.voucher_positions


def future_write(swallow: bool) -> Any:
    """A write a future change of the reconciliation might make while it reads sevDesk's positions."""

    def voucher_positions(client: SevdeskClient, voucher_id: str) -> Any:
        try:
            client._call("PUT", f"Voucher/{voucher_id}/bookAmount", "book_amount", json={"amount": 1},
                         idempotent=False)
        except Exception:
            if not swallow:
                raise
        return ORIGINAL_POSITIONS(client, voucher_id)

    return voucher_positions


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "swallowed"])
def test_a_write_in_the_live_form_is_refused_before_it_leaves_the_process(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    swallow: bool,
) -> None:
    from local.reconcile import main

    stack = served.stack
    monkeypatch.setattr(SevdeskClient, "voucher_positions", future_write(swallow))
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps(stack.credentials))
    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps(CONNECTION))
    out = tmp_path / "out"
    before = exchange_counts(stack)
    code = main(["2026-11", "--live", "--connection", str(connection), "--credentials", str(credentials),
                 "--out", str(out), "--billbee-url", stack.billbee.base_url, "--sevdesk-url", stack.sevdesk.base_url,
                 "--no-rate-limit"], env={})
    output = capsys.readouterr()
    assert code == 5, output.out + output.err
    assert "STOPPED: the read-only guard refused PUT" in output.out and "Traceback" not in output.out + output.err
    assert sandbox_writes(stack, before) == []
    assert not (out / "reconciliation.json").exists()  # no report on data a refused write may have changed
    assert_no_credential_in(stack.credentials, {"stdout": output.out, "stderr": output.err, **files_in(out)})


def test_the_live_form_says_what_is_missing_before_it_sends_anything(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from local.reconcile import main

    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps(CONNECTION))
    before = exchange_counts(served.stack)
    cases = {
        ("2026-11", "--live"): "--live needs --connection FILE",
        ("--live", "--connection", str(connection)): "--live needs a period",
        ("2026-13", "--live", "--connection", str(connection)): "not a period",
        ("2026-11", "--live", "--connection", str(connection)): "no credentials: set the environment variables",
        ("2026-11", "--live", "--connection", str(connection), "--state", "out/state"): "--state and --orders go",
    }
    for argv, message in cases.items():
        assert main([*argv, "--out", str(tmp_path / "out")], env={}) == 2, argv
        output = capsys.readouterr()
        assert message in output.err and "Traceback" not in output.out + output.err, (argv, output)
    assert exchange_counts(served.stack) == before


def test_the_readmes_local_command_and_curl_calls_work_as_written(served: Served, tmp_path: Path) -> None:
    """README, "Reconciling a month": the local command literally, in a directory laid out like the repository after
    ``make run`` (``.venv`` and ``out/state``), and each curl line in bash against the served API, each answering the
    status its comment promises."""
    section = readme_section("Reconciling a month")
    (line,) = [x for x in section.splitlines() if x.startswith(".venv/bin/python -m local.reconcile --state")]
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    save_state(served.stack, tmp_path / "out" / "state")
    result = subprocess.run(  # noqa: S603 - the README's line, as a user types it
        [BASH, "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 3, result.stdout + result.stderr  # the newest invoice's month, as it is
    assert result.stdout.startswith("2026-11-01 to 2026-11-30: does NOT reconcile"), result.stdout
    assert json.loads((tmp_path / "out" / "reconciliation.json").read_text())["counts"]["missing"] == 1
    assert (tmp_path / "out" / "reconciliation.csv").exists()

    curls = [x for x in section.splitlines() if x.startswith("curl ")]
    assert all("--compressed" in x for x in curls)  # the gzip answer: Lambda answers at most 6 MB
    assert len(curls) == 2
    env = {**os.environ, "API": str(served.http.base_url).rstrip("/"),
           "AUTH": f"Authorization: Bearer {api_token(served.stack)}"}
    for curl in curls:
        command, promise = curl.split("  # ", 1)
        status = promise.split(":", 1)[0].strip()
        answer = subprocess.run(  # noqa: S603 - the README's line with curl's report of the status
            [BASH, "-c", command + " -s -w '\\n%{http_code}'"], cwd=tmp_path, capture_output=True, text=True,
            timeout=120, check=False, env=env,
        )
        assert answer.stdout.rsplit("\n", 1)[-1] == status == "200", (curl, answer.stdout[-500:], answer.stderr)
    assert (tmp_path / "reconciliation.csv").read_text().startswith("category,invoiceNumber,")
