"""What the settings tests (test_settings_*.py) share: sample orders and connection, one hourly run, lookups."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import connection_body

from local.sample_shop import sample_orders
from local.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONNECTION = json.loads((REPO / "local" / "sample_connection.json").read_text())
ORDERS = {o["BillBeeOrderId"]: o for o in sample_orders()}


def orders(*order_ids: int) -> list[dict[str, Any]]:
    return [copy.deepcopy(ORDERS[order_id]) for order_id in order_ids]


def connection(connection_id: str = "demo-shop", **changes: Any) -> dict[str, Any]:
    """The sample connection with some settings changed (``support.connection_body``), named after its id."""
    return connection_body(connection_id, **{"name": f"{connection_id} → sevDesk", **changes})


@contextmanager
def local_stack(order_list: list[dict[str, Any]], **kwargs: Any) -> Iterator[LocalStack]:
    # Billbee's rate limits are the subject of other tests; here they only cost time.
    with LocalStack(orders=order_list, billbee_rate_limits=False, **kwargs) as stack:
        yield stack


def run_once(stack: LocalStack) -> dict[str, Any]:
    """One hourly run: the real PollFunction, then the export queue drained into the real ExportFunction."""
    result = stack.poll()
    stack.drain()
    return result


def invoice_number(order_id: int) -> str:
    order = ORDERS[order_id]
    return f"{order['InvoiceNumberPrefix'] or ''}{order['InvoiceNumber']}{order['InvoiceNumberPostfix'] or ''}"


def vouchers(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return {v["description"]: v for v in stack.sevdesk.dump()["vouchers"]}


def calls(stack: LocalStack, operation: str) -> list[Any]:
    return [e for e in stack.sevdesk.exchanges if e.operation == operation]
