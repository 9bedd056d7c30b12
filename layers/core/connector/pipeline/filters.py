"""A connection's order filters (tab 1), checked on our side too: Billbee's own filters may not drop everything
(manual orders and ``shopId``, billbee-api.md §10), and the state that counts is the state *at the time of the
transfer* (help text), so the export checks it again right before the voucher is written."""

from __future__ import annotations

from typing import Any

from connector.billbee.models import Order
from connector.settings.model import ConnectionSettings


def filter_mismatch(
    order: Order, settings: ConnectionSettings, *, check_tag: bool = True, credit_note: bool = False
) -> str | None:
    """Why the order does not (or no longer) belong to this connection's export, or None if it does.

    A credit note (a Storno order or a Gutschrift) is exported whatever its order state: issuing it is what counts,
    and a merchant who chose "paid, shipped, closed" for invoices still wants every refund of those invoices in the
    books (docs/settings.md, "Credit notes"). The start date, the shops and the tag apply as to any order."""
    general = settings.general
    if not credit_note and order.state not in general.order_state_ids:
        return (
            f"the order's state is now {order.state}, not one of the connection's states "
            f"{general.order_state_ids}"
        )
    if order.created_at is not None and order.created_at.date() < general.start_date:
        return f"the order was created before the connection's start date {general.start_date.isoformat()}"
    if order.shop_id is None:
        if not general.include_manual_orders:
            return "the order is a manual order (no shop) and the connection excludes manual orders"
    elif general.shop_ids and order.shop_id not in general.shop_ids:
        return f"the order's shop {order.shop_id} is not one of the connection's shops"
    if check_tag and order.has_tag(settings.export_tag):
        return f"the order already carries the export tag {settings.export_tag!r}"
    return None


def matches_filters(order: Order, settings: ConnectionSettings) -> bool:
    return filter_mismatch(order, settings) is None


def why_left_out(raw: Any, settings: ConnectionSettings) -> str:
    """Why an order Billbee holds has no export record: its data cannot be read, or which filter leaves it out."""
    from pydantic import ValidationError

    from connector.billbee.problems import describe_validation_error

    try:
        order = Order.model_validate(raw)
    except ValidationError as exc:
        return f"Billbee's data for it cannot be read: {describe_validation_error(exc)}"
    mismatch = filter_mismatch(order, settings)
    if mismatch is not None:
        return mismatch
    if not order.has_invoice:
        return "the order has no invoice yet"
    return "not listed by Billbee for the connection's filters yet (the next hourly run looks again)"
