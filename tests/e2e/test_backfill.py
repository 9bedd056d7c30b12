"""A backfill over several budgeted polls, and an hourly poll whose cost follows what changed (issue 12).

Every poll here is an invocation of the PollFunction told it has no time left (``remaining_ms=0``): its budget is over
after its first page, so it lists, stores and queues one page and keeps its place; the queue is drained between
polls, as the export function would drain it within the hour. That is the shape of a year of history listed over as
many hourly runs as it takes, made deterministic: pages, not seconds, set where each poll stops.

The backfills run with Billbee's limits on, K = 5 times faster in the sandbox and in the functions' shared limiter
(``billbee_rate_scale``): the same throttles, windows and Retry-After, in a fifth of the time. The 5,000-order backfill
the issue asks for runs with ``make test-backfill`` (marker ``backfill``; CI runs it after ``make test``); ``make
test`` runs the same test with 300 orders.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos import check_books, request_counts

from local.history import history_connection, order_history
from local.stack import LocalStack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION = history_connection(json.loads((REPO / "local" / "sample_connection.json").read_text()))
CID = CONNECTION["connectionId"]
PAGE_SIZE = 50
RATE_SCALE = 5.0  # Billbee's limits 5 times faster: 10 requests/s per endpoint, 50 per user
PER_ORDER_BILLBEE = {"get_order", "create_invoice", "download_invoice_pdf", "add_tags", "replace_tags",
                     "change_state", "find_order"}


def backfill(stack: LocalStack, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Polls with no time left, the queue drained after each, until a poll finishes its listing."""
    summaries = []
    for _ in range(len(orders) // PAGE_SIZE + 3):
        summary = dict(stack.poll(remaining_ms=0)["connections"][0])
        summaries.append(summary)
        stack.drain()
        if summary["complete"]:
            return summaries
    raise AssertionError(f"the listing did not finish in {len(summaries)} polls: {summaries[-1]}")


def backfill_once_each(count: int) -> None:
    orders = order_history(count)
    with LocalStack(orders=orders, billbee_rate_scale=RATE_SCALE,
                    extra_env={"BILLBEE_PAGE_SIZE": str(PAGE_SIZE)}) as stack:
        stack.save_connection(CONNECTION)
        summaries = backfill(stack, orders)
        # Several invocations, each stopped by its budget after one page and continued by the next.
        assert len(summaries) > 3
        assert all(not s["complete"] and s["listing"]["ordersListed"] > 0 for s in summaries[:-1])
        listed = [s["listing"]["ordersListed"] for s in summaries[:-1]]
        assert listed == sorted(listed) and len(set(listed)) == len(listed)  # each poll went on from the last
        stack.drain()
        books = check_books(stack, CID, originals=orders)
        states = Counter(r.state.value for r in stack.records(CID))
        assert books.vouchers == states["EXPORTED"] >= count * 0.9, states
        assert states["EXPORTED"] + states["NEEDS_ATTENTION"] == count, states  # nothing failed, lost or left open
        # No order waits for a person because of Billbee's limits: those need attention for their data alone.
        attention = [r for r in stack.records(CID) if r.state.value == "NEEDS_ATTENTION"]
        assert not [r.last_error for r in attention if "throttled" in (r.last_error or "") or "429" in (r.reason or "")]
        # The limits were on all along (the listing and every export went through the throttling sandbox).
        assert stack.billbee.rate_limits and stack.billbee.rate_scale == RATE_SCALE
        progress = stack.report(CID)["progress"]
        assert progress["listingComplete"] and progress["done"], progress


def test_a_backfill_over_many_budgeted_polls_exports_every_order_once() -> None:
    backfill_once_each(300)


@pytest.mark.backfill
def test_a_backfill_of_5000_orders_over_budgeted_polls_exports_every_order_once() -> None:
    backfill_once_each(5000)


@pytest.fixture(scope="module")
def settled() -> Iterator[tuple[LocalStack, list[dict[str, Any]]]]:
    orders = order_history(150)
    for order in orders[-10:]:  # not invoiced yet: they wait, and are listed every hour until they are
        order["InvoiceNumber"], order["InvoiceDate"] = None, None
    with LocalStack(orders=orders, billbee_rate_limits=False,
                    extra_env={"BILLBEE_PAGE_SIZE": str(PAGE_SIZE)}) as stack:
        stack.save_connection(CONNECTION)
        backfill(stack, orders)
        stack.poll()  # the first full hourly poll after the backfill: waiting orders are looked at once more
        stack.drain()
        yield stack, orders


def order_items(stack: LocalStack) -> dict[str, Any]:
    return {item["SK"]: item for item in stack.dump_table() if str(item.get("SK", "")).startswith("ORDER#")}


def test_a_second_hourly_poll_over_an_unchanged_account_sends_no_per_order_call_and_writes_no_record(
        settled: tuple[LocalStack, list[dict[str, Any]]]) -> None:
    stack, orders = settled
    waiting = [r for r in stack.records(CID) if r.state.value in ("SKIPPED", "NEEDS_ATTENTION")]
    assert len(waiting) >= 10  # the orders without an invoice wait, and are listed every hour
    before_items = order_items(stack)
    before_calls = request_counts(stack)
    summary = dict(stack.poll()["connections"][0])
    calls = request_counts(stack) - before_calls
    assert summary["status"] == "OK" and summary["complete"] and summary["queued"] == 0, summary
    assert summary["unchanged"] >= len(waiting)
    per_order = {op: n for (api, op), n in calls.items() if api == "billbee" and op in PER_ORDER_BILLBEE}
    assert per_order == {}, calls
    sevdesk = sum(n for (api, _op), n in calls.items() if api == "sevdesk")
    assert sevdesk <= 2, calls  # the hourly look at the account (token, bookkeeping version), nothing per order
    # The listing's pages (only the waiting orders are untagged) and one page of orders cancelled after export.
    assert calls[("billbee", "list_orders")] <= len(waiting) // PAGE_SIZE + 1 + 1, calls
    assert calls[("billbee", "list_invoices")] <= 1, calls  # credit notes since the last poll
    assert order_items(stack) == before_items  # not one record written


def test_every_export_message_names_its_connection_as_the_fair_queue_tenant(
        settled: tuple[LocalStack, list[dict[str, Any]]]) -> None:
    from connector.pipeline.queue import enqueue_exports

    stack, orders = settled
    enqueue_exports(stack.runtime, CID, [o["BillBeeOrderId"] for o in orders[:3]], reason="manual", mark=False)
    messages = stack.sqs().receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                           AttributeNames=["All"]).get("Messages", [])
    stack.drain()  # exported already: each message is answered without a write
    assert len(messages) == 3
    assert {m["Attributes"].get("MessageGroupId") for m in messages} == {CID}
