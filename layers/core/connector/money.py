"""Money is Decimal, never float: Billbee sends JSON numbers with up to 7 decimals (``3498.6000000``)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_decimal(value: Any) -> Decimal:
    """A JSON number or numeric string as Decimal; floats go through ``str`` so 0.1 stays 0.1."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def cents(value: Decimal) -> Decimal:
    """Round half-up to cents, the way German invoices round."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rate_key(rate: Decimal) -> str:
    """A VAT rate as a canonical string: 19, 7, 0, 5.5 (no trailing zeros)."""
    normalized = rate.normalize()
    text = format(normalized, "f")
    return text
