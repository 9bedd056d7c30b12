"""How long the reconciliation report takes for a large month: figures, not assertions (docs/reconciliation.md).

    python -m local.reconcile_bench [--invoices 5000] [--readers 4]

Builds a month of ``--invoices`` invoices on the local stack (the sample shop's November orders, copied with new ids
and numbers and spread over the month), each with its voucher (and its payment booked) in the sevDesk sandbox and an
``EXPORTED`` record in the table, the way the export leaves them. Then it measures, with Billbee's rate limits on
(2 requests/s per endpoint, in the sandbox and in the connector's shared limiter):

1. the HTTP API: ``GET /connections/{id}/reconciliation`` sent again after each 202, as a client would, each request
   reading for the API's time budget (``RECONCILIATION_SECONDS``, 15 s), and the time of every request;
2. the same report read in one go (``python -m local.reconcile``'s way), with the requests each API received.

Last it prints the peak memory of the process (stack, sandboxes and report together: an upper bound for the report).

The sandboxes answer on 127.0.0.1 in a millisecond or two; the live APIs take ~100-300 ms a request, so the figures
printed for the live APIs are estimates from the request counts (see docs/reconciliation.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ORDER_ID_BASE = 400_000_000_000_000
INVOICE_NUMBER_BASE = 200_000


def month_of_orders(count: int) -> list[dict[str, Any]]:
    from local.sample_shop import is_sample_credit_note, sample_orders

    templates = [o for o in sample_orders() if o.get("InvoiceNumber") and not is_sample_credit_note(o)
                 and str(o["InvoiceDate"]).startswith("2026-11")]
    orders = []
    for serial in range(count):
        order = copy.deepcopy(templates[serial % len(templates)])
        day = 1 + serial % 30
        stamp = f"2026-11-{day:02d}T10:{serial % 60:02d}:00"
        order.update(BillBeeOrderId=ORDER_ID_BASE + serial, Id=f"B-{serial}", OrderNumber=f"B-{serial}",
                     InvoiceNumber=INVOICE_NUMBER_BASE + serial, InvoiceDate=stamp, CreatedAt=stamp, PayedAt=stamp,
                     ShippedAt=stamp, State=4)
        for index, payment in enumerate(order.get("Payments") or []):
            payment.update(BillbeeId=(ORDER_ID_BASE + serial) * 10 + index, PayDate=stamp)
        orders.append(order)
    return orders


def book_the_month(stack: Any, connection_id: str, orders: list[dict[str, Any]]) -> None:
    """Each order's voucher in sevDesk and its EXPORTED record, written the way the export writes them."""
    from connector.billbee.models import InvoiceDetails, Order
    from connector.bookkeeping.voucher import plan_voucher
    from connector.sevdesk.client import SevdeskClient
    from connector.store.records import ExportState, OrderRecord, Steps
    from local.sandbox.invoices import invoice_for, printed_invoice_number

    stored = stack.runtime.store.get_connection(connection_id)
    client = SevdeskClient(api_token=stack.credentials["sevdeskApiToken"], base_url=stack.sevdesk.base_url)

    def book(raw: dict[str, Any]) -> None:
        invoice_raw = invoice_for(raw)
        order, invoice = Order.model_validate(raw), InvoiceDetails.model_validate(invoice_raw)
        number = printed_invoice_number(raw)
        plan = plan_voucher(order, invoice, stored.settings, invoice_number=number)
        voucher = client.save_voucher(plan)
        bookings = {}
        for payment in plan.payments:
            client.book_amount(voucher.id, payment)
            bookings[payment.key] = {"amount": str(payment.amount), "account": payment.check_account_id}
        stack.runtime.store.create_order(OrderRecord(
            connection_id=connection_id, order_id=order.bill_bee_order_id, state=ExportState.EXPORTED,
            order=raw, invoice=invoice_raw, invoice_number=number, invoice_number_source="invoiceList",
            steps=Steps(voucher_id=voucher.id, bookings=bookings, tagged=True)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(book, orders))
    client.close()


def measure_api(stack: Any, connection_id: str, first: str, last: str) -> dict[str, Any]:
    import httpx

    from local.serve import api_token, serve_stack

    requests = []
    started = time.monotonic()
    with serve_stack(stack) as server:
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_token(stack)}"}, timeout=120)
        while True:
            begun = time.monotonic()
            response = http.get(f"/connections/{connection_id}/reconciliation", params={"from": first, "to": last})
            requests.append({"status": response.status_code, "seconds": round(time.monotonic() - begun, 2)})
            if response.status_code != 202:
                break
            time.sleep(float(response.headers.get("retry-after") or 1))  # what a client does
        http.close()
    body = response.json()
    return {"requests": requests, "seconds": round(time.monotonic() - started, 2),
            "counts": body.get("counts"), "lines": len(body.get("lines") or [])}


def measure_direct(stack: Any, connection_id: str, first: date, last: date, readers: int) -> dict[str, Any]:
    from connector.reconciliation.job import JobState, ReconciliationJob, run_to_end
    from connector.reconciliation.records import Records
    from connector.reconciliation.report import Period

    runtime = stack.runtime
    stored = runtime.store.get_connection(connection_id)
    clients = runtime.build_clients(connection_id, runtime.secrets.get(stored.secret_id))
    timings: dict[str, float] = {}

    class TimedRecords(Records):
        def resolve(self, invoices: Iterable[Any]) -> dict[str, Any]:
            begun = time.monotonic()
            try:
                return super().resolve(invoices)
            finally:
                timings["records"] = timings.get("records", 0) + time.monotonic() - begun

    job = ReconciliationJob(JobState.new(Period(first, last)), billbee=clients.billbee, sevdesk=clients.sevdesk,
                            records=lambda: TimedRecords(runtime.store, connection_id), settings=stored.settings,
                            readers=readers)
    begun = time.monotonic()
    report = run_to_end(job)
    total = time.monotonic() - begun
    clients.billbee.close()
    clients.sevdesk.close()
    return {"seconds": round(total, 2), "recordsSeconds": round(timings.get("records", 0), 2),
            "requests": job.state.requests, "counts": report.counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.reconcile_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--readers", type=int, default=4, help="concurrent GET /VoucherPos in the one-go run")
    args = parser.parse_args(argv)

    from local.stack import LocalStack

    connection = json.loads((REPO / "local" / "sample_connection.json").read_text())
    connection_id = connection["connectionId"]
    orders = month_of_orders(args.invoices)
    with LocalStack(orders=orders) as stack, stack.function_logs(REPO / "out" / "reconcile-bench.log"):
        stack.save_connection(connection)
        begun = time.monotonic()
        book_the_month(stack, connection_id, orders)
        print(f"set-up: {len(orders)} invoices, vouchers and records in {time.monotonic() - begun:.1f} s", flush=True)
        api = measure_api(stack, connection_id, "2026-11-01", "2026-11-30")
        print("HTTP API (RECONCILIATION_SECONDS=15):", json.dumps(api), flush=True)
        # Another first day: Billbee allows one read a minute per page and minInvoiceDate (billbee-api.md §2).
        direct = measure_direct(stack, connection_id, date(2026, 10, 31), date(2026, 11, 30), args.readers)
        print("in one go:", json.dumps(direct), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (stack, sandboxes and report): {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
