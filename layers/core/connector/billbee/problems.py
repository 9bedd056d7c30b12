"""Billbee data the connector cannot read, described in words a merchant understands.

One unreadable order must never stop the others (issue: "one bad order never stops the others"): the client hands
such an order back as an ``UnreadableOrder`` with the field and what is wrong with it, and the pipeline gives it its
own record instead of failing the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

MAX_SHOWN_PROBLEMS = 3
MAX_INPUT_CHARS = 60


@dataclass(frozen=True)
class UnreadableOrder:
    raw: Any
    order_id: int | None  # None: not even the order id could be read
    problem: str


def field_path(location: tuple[int | str, ...]) -> str:
    """``("OrderItems", 2, "TotalPrice")`` -> ``OrderItems[2].TotalPrice``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the order"


def describe_validation_error(error: ValidationError) -> str:
    """Each bad field with its value: ``OrderItems[0].TotalPrice is 'zwölf', not a number``."""
    parts = []
    for item in error.errors()[:MAX_SHOWN_PROBLEMS]:
        where = field_path(tuple(item.get("loc") or ()))
        shown = repr(item.get("input"))
        if len(shown) > MAX_INPUT_CHARS:
            shown = shown[: MAX_INPUT_CHARS - 3] + "..."
        message = str(item.get("msg") or "invalid").removeprefix("Value error, ")
        parts.append(f"{where} is {shown}: {message}")
    more = error.error_count() - MAX_SHOWN_PROBLEMS
    if more > 0:
        parts.append(f"and {more} more problem(s)")
    return "; ".join(parts)


def raw_order_id(raw: Any) -> int | None:
    """The BillBeeOrderId of a raw order if it is a plausible one (a positive int64), else None."""
    if not isinstance(raw, dict):
        return None
    value = raw.get("BillBeeOrderId")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 < value < 2**63:
        return value
    return None


def order_fields(raw: Any) -> dict[str, Any]:
    """The parts of a raw order the connector reads (the fields of its model), for storing an order the models
    cannot read: never the seller's comments, the history or other data that can grow without bound."""
    from connector.billbee.models import Order

    if not isinstance(raw, dict):
        return {"raw": repr(raw)[:500]}
    names = {field.alias or name for name, field in Order.model_fields.items()}
    return {key: value for key, value in raw.items() if key in names}
