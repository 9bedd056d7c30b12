"""One bad order never stops the others, and trouble is loud (issue 9).

A merchant's real data holds every kind of bad order: dates that are no dates, numbers in words, enum values Billbee
never documented, NaN, impossible ids, orders far too big for a database item, orders that contradict themselves,
odd payments. They go through the real CLI (``python -m local.run``) and the HTTP API mixed with good orders: every
good order is exported exactly as it is without the bad ones, every bad one gets its own record and a reason that
names the field, and the summary, the status API and the exit status say that something needs attention.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ApiClient

from local.faults import FaultRule
from local.sample_shop import sample_orders
from local.serve import api_token, serve_stack
from local.stack import LocalStack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CID = CONNECTION["connectionId"]
SAMPLE = sample_orders()
GOOD = [SAMPLE[i] for i in (0, 2, 5, 6, 11, 20)]  # paid, company, manual, repeat customer, split payment, unpaid


def bad(n: int, **changes: Any) -> dict[str, Any]:
    """A copy of a paid one-rate sample order with its own id and invoice number, then changed."""
    order = copy.deepcopy(SAMPLE[3])
    order.update(BillBeeOrderId=300000189200000 + n, InvoiceNumber=8000 + n, OrderNumber=f"#B{n}",
                 Customer={**order["Customer"], "Id": 9900 + n})
    order.update(changes)
    return order


def with_item_change(n: int, **item: Any) -> dict[str, Any]:
    order = bad(n)
    order["OrderItems"][0].update(item)
    return order


def long_order(n: int, lines: int) -> dict[str, Any]:
    order = bad(n)
    template = order["OrderItems"][0]
    order["OrderItems"] = [
        {**template, "BillbeeId": 700000000000 + i, "TotalPrice": 1.19, "TaxAmount": 0.19, "Quantity": 1,
         "Product": {**(template.get("Product") or {}), "Title": f"Artikel {i} " + "lang " * 120}}
        for i in range(lines)
    ]
    order["ShippingCost"] = 0.0
    order["TotalCost"] = round(1.19 * lines, 2)
    order["Payments"] = [{**order["Payments"][0], "PayValue": order["TotalCost"]}]
    return order


def paid(n: int, payments: list[tuple[float, int]]) -> dict[str, Any]:
    order = bad(n)
    template = order["Payments"][0]
    order["Payments"] = [{**template, "BillbeeId": 610000 + n * 10 + i, "PayValue": value, "PaymentType": method}
                         for i, (value, method) in enumerate(payments)]
    return order


UNREADABLE = {
    bad(1, InvoiceDate="morgen")["BillBeeOrderId"]: "InvoiceDate is 'morgen'",
    bad(2, TotalCost="12,50")["BillBeeOrderId"]: "TotalCost is '12,50'",
    bad(3, VatMode=9)["BillBeeOrderId"]: "VatMode is 9",
    with_item_change(4, TaxIndex=7)["BillBeeOrderId"]: "OrderItems[0].TaxIndex is 7",
    bad(5, TotalCost=float("nan"))["BillBeeOrderId"]: "TotalCost is nan",
}
CONTRADICTION = bad(10, TotalCost=999.99)
TOTAL = SAMPLE[3]["TotalCost"]
ODD_PAYMENTS = paid(11, [(TOTAL + 10.0, 59)])  # 10 more than the invoice total
REFUNDED = paid(12, [(TOTAL, 59), (-5.0, 59)])  # a refund after the full payment
UNKNOWN_TYPE = paid(13, [(TOTAL, 999)])  # a payment type Billbee does not list
READABLE_BUT_ODD = [
    bad(6, Tags=None, Payments=[{**SAMPLE[3]["Payments"][0], "BillbeeId": 600006}], Comments=None,
        ShippingServices=None),  # null lists
    bad(7, SellerComment="Notiz " * 120_000),  # a 600 KB seller comment
    long_order(8, 400),  # 400 lines with long titles: ~300 KB of order
    ODD_PAYMENTS, REFUNDED, UNKNOWN_TYPE,
]
BAD_ORDERS = [
    bad(1, InvoiceDate="morgen"), bad(2, TotalCost="12,50"), bad(3, VatMode=9), with_item_change(4, TaxIndex=7),
    bad(5, TotalCost=float("nan")), bad(9, BillBeeOrderId="abc", OrderNumber="#B9"), CONTRADICTION,
    *READABLE_BUT_ODD,
]


def local_run(tmp: Path, orders: list[dict[str, Any]], *extra: str) -> tuple[int, str, Path]:
    orders_file = tmp / "orders.json"
    orders_file.write_text(json.dumps(orders))  # NaN is written as JSON's non-standard NaN, as Python reads it
    connection_file = tmp / "connection.json"
    connection_file.write_text(json.dumps(CONNECTION))
    out = tmp / "out"
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "local.run", "--orders", str(orders_file), "--connection", str(connection_file),
         "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    return result.returncode, result.stdout + result.stderr, out


def vouchers_by_number(out: Path) -> dict[str, Any]:
    vouchers = json.loads((out / "sevdesk.json").read_text())["vouchers"]
    return {
        v["description"]: (
            sorted((p["taxRate"], p["sumGross"], p["accountDatev"]["id"]) for p in v["positions"]),
            sorted((b["amount"], b["type"], b["checkAccount"]["id"]) for b in v["bookings"]),
            v["creditDebit"], v["taxRule"]["id"], v["voucherDate"],
        )
        for v in vouchers
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    alone = tmp_path_factory.mktemp("good-alone")
    mixed = tmp_path_factory.mktemp("mixed")
    return {"alone": local_run(alone, GOOD), "mixed": local_run(mixed, [*GOOD[:3], *BAD_ORDERS, *GOOD[3:]])}


def test_good_orders_are_exported_exactly_as_without_the_bad_ones(runs: dict[str, Any]) -> None:
    code, output, out = runs["alone"]
    assert code == 0, output
    alone = vouchers_by_number(out)
    _, _, mixed_out = runs["mixed"]
    mixed = vouchers_by_number(mixed_out)
    assert {number: mixed[number] for number in alone} == alone


def test_every_bad_order_has_its_own_record_naming_the_field_and_the_readable_ones_are_exported(
    runs: dict[str, Any],
) -> None:
    code, output, out = runs["mixed"]
    report = json.loads((out / "report.json").read_text())
    records = {o["orderId"]: o for o in report["orders"]}
    for order_id, words in UNREADABLE.items():
        assert records[order_id]["state"] == "NEEDS_ATTENTION", (order_id, records.get(order_id))
        assert "cannot read" in records[order_id]["reason"] and words in records[order_id]["reason"], words
    contradiction = records[CONTRADICTION["BillBeeOrderId"]]
    assert contradiction["state"] == "NEEDS_ATTENTION" and "TotalCost" in contradiction["reason"]
    for order in READABLE_BUT_ODD:
        assert records[order["BillBeeOrderId"]]["state"] == "EXPORTED", records[order["BillBeeOrderId"]]
    # The order whose id is no id cannot have a record: the poll's summary names it.
    [problem] = report["poll"]["connections"][0]["problems"]
    assert "#B9" in problem and "BillBeeOrderId" in problem


def test_odd_payments_are_booked_correctly_and_said(runs: dict[str, Any]) -> None:
    _, _, out = runs["mixed"]
    records = {o["orderId"]: o for o in json.loads((out / "report.json").read_text())["orders"]}
    total = f"{TOTAL:.2f}"
    over = records[ODD_PAYMENTS["BillBeeOrderId"]]
    assert [b["amount"] for b in over["bookings"].values()] == [total]
    assert any("exceeds the open amount by 10.00" in n for n in over["notes"])
    refunded = records[REFUNDED["BillBeeOrderId"]]
    assert [b["amount"] for b in refunded["bookings"].values()] == [total]
    assert any("refund of 5.00" in n for n in refunded["notes"])
    assert not any("no payment" in n for n in refunded["notes"])
    unknown = records[UNKNOWN_TYPE["BillBeeOrderId"]]
    default_account = CONNECTION["sevdesk"]["defaultCheckAccountId"]
    assert [b["checkAccountId"] for b in unknown["bookings"].values()] == [default_account]
    assert any("payment type Billbee does not list (999)" in n for n in unknown["notes"])


def test_the_summary_and_the_exit_status_say_that_orders_need_attention(runs: dict[str, Any]) -> None:
    code, output, _ = runs["mixed"]
    assert code == 3, output
    assert "need attention" in output
    assert "InvoiceDate is 'morgen'" in output and "#B9" in output
    assert "Traceback" not in output
    # A run this long (Billbee's 2 requests/s) shows its progress as it goes.
    assert output.startswith("poll: OK") and "message(s) still in the queue" in output


def test_a_failing_poll_is_an_error_in_the_summary_and_the_exit_status(tmp_path: Path) -> None:
    # @1: the setup checks' own call goes through; every poll after it fails
    code, output, out = local_run(tmp_path, GOOD[:2], "--faults", "billbee.list_orders=503*inf@1")
    assert code == 1, output
    assert "the poll FAILED" in output and "list_orders" in output
    poll = json.loads((out / "report.json").read_text())["poll"]["connections"][0]
    assert poll["status"] == "FAILED"


def test_orders_the_filters_leave_out_are_counted_by_filter(tmp_path: Path) -> None:
    outside = [dict(copy.deepcopy(o), State=1) for o in GOOD[:2]] + [
        dict(copy.deepcopy(GOOD[2]), CreatedAt="2025-01-01T10:00:00")]
    code, output, out = local_run(tmp_path, outside)
    assert code == 0, output
    assert "3 order(s) left out by the connection's filters (every order)" in output
    assert "2 x the order's state is now 1" in output and "1 x the order was created before" in output
    assert len(json.loads((out / "report.json").read_text())["leftOut"]) == 3


# -- the HTTP API ----------------------------------------------------------------------------------------------------
class Served:
    def __init__(self, stack: LocalStack, url: str) -> None:
        self.stack = stack
        self.http = ApiClient(url, api_token(stack))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    orders = [*GOOD, *[o for o in BAD_ORDERS if o["BillBeeOrderId"] in UNREADABLE], CONTRADICTION]
    with LocalStack(orders=orders, billbee_rate_limits=False) as stack:
        stack.save_connection(CONNECTION)
        with serve_stack(stack) as server:
            yield Served(stack, server.url)


def test_a_manual_export_of_good_and_bad_orders_answers_each_one(served: Served) -> None:
    ids = [GOOD[0]["BillBeeOrderId"], *UNREADABLE, GOOD[1]["BillBeeOrderId"]]
    answer = served.http.post(f"/connections/{CID}/exports", json={"orderIds": ids})
    assert answer.status_code == 202, answer.text
    outcomes = {o["orderId"]: o for o in answer.json()["orders"]}
    assert outcomes[GOOD[0]["BillBeeOrderId"]]["outcome"] == "queued"
    assert outcomes[GOOD[1]["BillBeeOrderId"]]["outcome"] == "queued"
    for order_id, words in UNREADABLE.items():
        assert outcomes[order_id]["outcome"] == "needsAttention" and words in outcomes[order_id]["detail"]
        record = served.http.get(f"/connections/{CID}/orders/{order_id}").json()
        assert record["state"] == "NEEDS_ATTENTION" and words in record["reason"]


def test_the_status_api_shows_the_last_poll_and_what_needs_attention(served: Served) -> None:
    served.stack.poll()
    served.stack.drain()
    view = served.http.get(f"/connections/{CID}").json()
    assert view["lastPoll"]["summary"]["status"] == "OK"
    assert view["counts"]["NEEDS_ATTENTION"] == len(UNREADABLE) + 1
    assert view["counts"]["EXPORTED"] == len([o for o in GOOD if o.get("InvoiceNumber")])

    served.stack.faults.add(FaultRule("billbee", "list_orders", "503", times=float("inf")))
    try:
        served.stack.poll()
    finally:
        served.stack.faults.clear()
    failed = served.http.get(f"/connections/{CID}").json()["lastPoll"]["summary"]
    assert failed["status"] == "FAILED" and "list_orders" in failed["error"]


def test_an_order_booked_by_hand_is_marked_handled_and_stops_coming_back(served: Served) -> None:
    order_id = CONTRADICTION["BillBeeOrderId"]
    served.stack.poll()
    before = served.http.get(f"/connections/{CID}/orders/{order_id}").json()
    assert before["state"] == "NEEDS_ATTENTION"
    body = {"by": "Steuerbüro Muster", "note": "gebucht als Beleg 2026-0815"}
    marked = served.http.post(f"/connections/{CID}/orders/{order_id}/handled", json=body)
    assert marked.status_code == 200, marked.text
    handled = marked.json()
    assert handled["state"] == "HANDLED" and handled["handled"]["by"] == "Steuerbüro Muster"
    assert handled["handled"]["was"] == before["reason"] and "gebucht als Beleg 2026-0815" in handled["reason"]
    served.stack.billbee.set_state(order_id, 4)  # Billbee changes the order: it still never comes back
    served.stack.poll()
    served.stack.drain()
    assert served.http.get(f"/connections/{CID}/orders/{order_id}").json()["state"] == "HANDLED"
    assert served.http.get(f"/connections/{CID}").json()["counts"]["HANDLED"] == 1
    assert served.http.post(f"/connections/{CID}/orders/{order_id}/retry").status_code == 409
    exported = next(o["BillBeeOrderId"] for o in GOOD if o.get("InvoiceNumber"))
    refused = served.http.post(f"/connections/{CID}/orders/{exported}/handled", json=body)
    assert refused.status_code == 409 and "EXPORTED" in refused.json()["error"]
    empty = served.http.post(f"/connections/{CID}/orders/{order_id}/handled", json={"by": "  ", "note": "x"})
    assert empty.status_code == 400


def test_a_name_or_export_tag_of_only_spaces_is_refused_with_a_400(served: Served) -> None:
    for change in ({"name": "   "}, {"exportTag": "   "}):
        body = {**CONNECTION, **change}
        answer = served.http.put(f"/connections/{CID}", json=body)
        assert answer.status_code == 400, answer.text
        assert [p["field"] for p in answer.json()["problems"]] == [f"body.{next(iter(change))}"]


def test_the_dead_letter_listing_shows_every_message_not_the_first_ten(served: Served) -> None:
    dlq = served.stack.env["EXPORT_DLQ_URL"]
    sqs = served.stack.sqs()
    for n in range(23):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"connectionId": CID, "orderId": 500 + n}))
    answer = served.http.get(f"/connections/{CID}/dead-letters").json()
    assert answer["approximateCount"] >= 23
    assert sorted(m["orderId"] for m in answer["messages"] if 500 <= (m["orderId"] or 0) < 600) == list(
        range(500, 523))
    again = served.http.get(f"/connections/{CID}/dead-letters").json()  # the look put every message back
    assert len(again["messages"]) == len(answer["messages"])
