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
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, float):
            number = Decimal(repr(value))
        else:
            number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        # German number text ("12,50") and other prose end here: never guess what the merchant meant.
        raise ValueError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def cents(value: Decimal) -> Decimal:
    """Round half-up to cents, the way German invoices round."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rate_key(rate: Decimal) -> str:
    """A VAT rate as a canonical string: 19, 7, 0, 5.5 (no trailing zeros)."""
    normalized = rate.normalize()
    text = format(normalized, "f")
    return text
