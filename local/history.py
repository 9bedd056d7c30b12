"""A merchant's history for backfills and benchmarks: ``count`` orders made from the sample shop's invoiced orders,
spread evenly over ``days`` days from ``first_day``, with Billbee's ids and invoice numbers rising with time (as in a
real account: ids are "in sequence" [CS SDK]), so a page of orders listed by id spans hours, not the whole year.

Each copy gets a new id, order number and invoice number; every other round of copies brings new customers (a new
sevDesk contact each), the others reuse the template's customer. Every date of the template moves by the same amount,
so an order's dates keep their order (created, paid, invoiced, shipped). Credit notes are left out: their links to
an original belong to the sample shop's own numbers.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any

ORDER_ID_BASE = 500_000_000_000_000
INVOICE_NUMBER_BASE = 600_000
CUSTOMER_ID_BASE = 700_000_000_000
DATE_KEYS = ("At", "Date", "Created")


def _templates() -> list[dict[str, Any]]:
    from local.sample_shop import is_sample_credit_note, sample_orders

    return [o for o in sample_orders() if o.get("InvoiceNumber") and not is_sample_credit_note(o)]


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _shift(node: Any, delta: timedelta) -> Any:
    """Every ISO date-time under a key ending in At, Date or Created, moved by ``delta`` (format kept)."""
    if isinstance(node, list):
        return [_shift(item, delta) for item in node]
    if not isinstance(node, dict):
        return node
    shifted: dict[str, Any] = {}
    for key, value in node.items():
        moved = _parse(value) if isinstance(value, str) and key.endswith(DATE_KEYS) and len(value) >= 19 else None
        if moved is None:
            shifted[key] = _shift(value, delta)
            continue
        text = (moved + delta).isoformat(timespec="milliseconds" if "." in value else "seconds")
        shifted[key] = text[: len(value)] if "." in value else text
    return shifted


def order_history(count: int, *, first_day: date = date(2025, 12, 1), days: int = 365,
                  templates: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    base = templates if templates is not None else _templates()
    step = timedelta(days=days) / max(1, count)
    start = datetime.combine(first_day, datetime.min.time()) + timedelta(hours=8)
    orders = []
    for serial in range(count):
        template = base[serial % len(base)]
        created = datetime.fromisoformat(template["CreatedAt"])
        order = _shift(copy.deepcopy(template), start + step * serial - created)
        order_id = ORDER_ID_BASE + serial
        order["BillBeeOrderId"] = order_id
        order["Id"] = f"H-{serial}"
        order["OrderNumber"] = f"H-{serial}"
        order["InvoiceNumber"] = INVOICE_NUMBER_BASE + serial
        for index, payment in enumerate(order.get("Payments") or []):
            payment["BillbeeId"] = order_id * 10 + index
        if (serial // len(base)) % 2 == 1 and order.get("Customer"):
            order["Customer"]["Id"] = CUSTOMER_ID_BASE + serial
            order["Customer"]["Number"] = serial
            order["CustomerNumber"] = str(serial)
        orders.append(order)
    return orders


def history_connection(body: dict[str, Any], first_day: date = date(2025, 12, 1)) -> dict[str, Any]:
    """The sample connection opened to the history: its start date at the first day, every shop."""
    opened = copy.deepcopy(body)
    opened["general"]["startDate"] = first_day.isoformat()
    opened["general"]["shopIds"] = []
    return opened
