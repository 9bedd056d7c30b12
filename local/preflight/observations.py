"""What a preflight saw about the open questions of docs/real-apis.md, collected into ``observations.json``.

Three sources: every answer the guard let through (paging, 429s and their ``Retry-After``, timestamp forms, ``null``
lists, the voucher search's substring matches), the connector's own log lines that name the reading they met
(``left_out``, ``matched``, ``reading``), and what the preview found per order (which reading of the invoice-list
total, how the invoice-list item was matched, the printed invoice number's form). Each question gets the counts, a
few examples and an answer in words; a question a read-only run cannot settle says so.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from connector.billbee.models import Order

MAX_EXAMPLES = 5
TIMESTAMP_FIELDS = ("CreatedAt", "InvoiceDate", "PayedAt", "ShippedAt", "LastModifiedAt")
NULLABLE_LISTS = ("Tags", "Payments", "OrderItems", "Comments", "ShippingServices", "History", "ShippingIds")
LOGGED_READINGS = ("left_out", "matched", "reading")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.I)


def timestamp_form(value: str) -> str:
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return "other" if not re.match(r"^\d{4}-\d{2}-\d{2}$", value.strip()) else "date only"
    fraction, zone = match.groups()
    digits = f"{len(fraction)} fraction digits" if fraction else "no fraction"
    return f"{'with offset ' + zone.upper() if zone else 'naive (no offset)'}, {digits}"


def printed_form(printed: str, order: Order) -> str:
    """How Billbee printed the invoice number, relative to the order's prefix, number and postfix."""
    prefix, postfix = order.invoice_number_prefix or "", order.invoice_number_postfix or ""
    number = str(order.invoice_number or "")
    if printed == f"{prefix}{number}{postfix}":
        return "prefix + number + postfix" if postfix else "prefix + number (no postfix set)"
    if postfix and printed == f"{prefix}{number}":
        return "prefix + number (the postfix is not printed)"
    rest = printed[len(prefix):] if printed.startswith(prefix) else None
    if rest is not None:
        if postfix and rest.endswith(postfix):
            rest = rest[: -len(postfix)]
        if rest.isdigit() and rest != number and int(rest) == int(number or 0):
            return "prefix + zero-padded number" + (" + postfix" if printed.endswith(postfix) and postfix else "")
    return "another form"


class _LogCapture(logging.Handler):
    def __init__(self, sink: Observations) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        found = {name: getattr(record, name) for name in LOGGED_READINGS if hasattr(record, name)}
        if found:
            self.sink.logged(record.getMessage(), found)


class Observations:
    def __init__(self) -> None:
        self.paging: Counter[str] = Counter()
        self.throttled: list[dict[str, Any]] = []
        self.timestamps: Counter[str] = Counter()
        self.timestamp_examples: dict[str, str] = {}
        self.null_lists: Counter[str] = Counter()
        self.orders_seen = 0
        self.searches = 0
        self.searches_with_others = 0
        self.search_examples: list[dict[str, Any]] = []
        self.bookkeeping_version: str | None = None
        self.invoice_types: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()
        self.total_examples: dict[str, list[dict[str, Any]]] = {}
        self.matched: Counter[str] = Counter()
        self.forms: Counter[str] = Counter()
        self.form_examples: dict[str, list[dict[str, Any]]] = {}
        self.connector_log: list[dict[str, Any]] = []
        self.left_out_by_billbee: Counter[str] = Counter()
        self.filters_sent: list[list[str]] = []
        self.existing_left_out: Counter[str] = Counter()  # what the unfiltered listing shows exists
        self.late_delivery = 0
        self.server_errors: Counter[str] = Counter()

    # -- sources -------------------------------------------------------------------------------------------------
    def log_handler(self) -> logging.Handler:
        return _LogCapture(self)

    def logged(self, message: str, readings: dict[str, Any]) -> None:
        if len(self.connector_log) < 200:
            self.connector_log.append({"message": message, **{k: _plain(v) for k, v in readings.items()}})
        left_out = readings.get("left_out")
        if isinstance(left_out, dict):
            for reason, number in left_out.items():
                self.left_out_by_billbee[str(reason)] += int(number)

    def exchange(self, entry: dict[str, Any], body: Any) -> None:
        """Called by the guard for every exchange."""
        status = entry.get("status")
        api, path = entry["api"], str(entry["path"]).lower()
        if status == 429:
            headers = entry.get("responseHeaders") or {}
            self.throttled.append({"api": api, "path": entry["path"], "retryAfter": headers.get("retry-after")})
        elif isinstance(status, int) and status >= 500:
            self.server_errors[f"{api} {entry['path']} {status}"] += 1
        if status != 200 or not isinstance(body, dict):
            return
        if api == "billbee" and (path.endswith("/orders") or path.endswith("/orders/invoices")):
            kind = "invoices" if path.endswith("/invoices") else "orders"
            self.paging[f"{kind}: {'with' if isinstance(body.get('Paging'), dict) else 'without'} Paging"] += 1
            data = body.get("Data") or []
            if kind == "orders":
                if any(k.startswith(("orderStateId", "shopId", "tag")) for k, _ in entry.get("query") or []):
                    keys = sorted({k for k, _ in entry["query"] if k not in ("page", "pageSize", "minOrderDate")})
                    if keys not in self.filters_sent:
                        self.filters_sent.append(keys)
                for raw in data if isinstance(data, list) else []:
                    if isinstance(raw, dict):
                        self._order(raw)
            else:
                for raw in data if isinstance(data, list) else []:
                    if isinstance(raw, dict):
                        self.invoice_types[str(raw.get("Type") or "none")] += 1
        elif api == "sevdesk" and path.endswith("/voucher"):
            query = dict(entry.get("query") or [])
            wanted = query.get("descriptionLike")
            rows = body.get("objects") or []
            if wanted is not None and isinstance(rows, list):
                self.searches += 1
                others = [r.get("description") for r in rows if isinstance(r, dict) and r.get("description") != wanted]
                if others:
                    self.searches_with_others += 1
                    if len(self.search_examples) < MAX_EXAMPLES:
                        self.search_examples.append({"searched": wanted, "alsoFound": others[:5]})
        elif api == "sevdesk" and path.endswith("/bookkeepingsystemversion"):
            objects = body.get("objects")
            if isinstance(objects, dict):
                self.bookkeeping_version = str(objects.get("version"))

    def _order(self, raw: dict[str, Any]) -> None:
        self.orders_seen += 1
        for name in TIMESTAMP_FIELDS:
            value = raw.get(name)
            if isinstance(value, str):
                form = timestamp_form(value)
                self.timestamps[form] += 1
                self.timestamp_examples.setdefault(form, f"{name} {value}")
        for name in NULLABLE_LISTS:
            if name in raw and raw[name] is None:
                self.null_lists[name] += 1

    def invoice(self, order: Order, printed: str | None, matched: str, reading: str | None,
                list_total: str | None) -> None:
        """What the preview found for one invoiced order."""
        self.matched[matched] += 1
        if printed:
            form = printed_form(printed, order)
            self.forms[form] += 1
            examples = self.form_examples.setdefault(form, [])
            if len(examples) < MAX_EXAMPLES:
                examples.append({"printed": printed, "prefix": order.invoice_number_prefix,
                                 "number": order.invoice_number, "postfix": order.invoice_number_postfix})
        else:
            self.forms["no invoice-list item (the export would take CreateInvoice's number)"] += 1
        if reading:
            self.totals[reading] += 1
            examples = self.total_examples.setdefault(reading, [])
            if len(examples) < MAX_EXAMPLES:
                examples.append({"invoice": printed or order.printed_invoice_number, "listTotalGross": list_total,
                                 "orderTotalCost": None if order.total_cost is None else str(order.total_cost)})

    # -- the file ------------------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "about": "What this preflight saw about the behaviours docs/real-apis.md lists as assumed or conflicting. "
            "Counts are over the answers and orders of this run; 'notObserved' marks what a read-only run cannot "
            "settle.",
            "questions": [
                self._totals(), self._retry_after(), self._forms(), self._matched(), self._paging(),
                self._array_form(), self._timestamps(), self._null_lists(), self._search(),
                self._version(), self._credit_notes(),
                {
                    "id": "createInvoiceOnInvoiced",
                    "question": "What does CreateInvoice answer for an order that already has an invoice?",
                    "notObserved": "the preflight never calls CreateInvoice (it can allocate an invoice number); the "
                    "export checks its answer's number and total before attaching the PDF",
                },
                {
                    "id": "deliveryAfterVoucherDate",
                    "question": "Does sevDesk accept a voucher whose delivery date is after its voucher date?",
                    "notObserved": "only a saved voucher tells (the canary); the export falls back to the voucher "
                    "date on a 422 naming deliveryDate",
                    "vouchersConcerned": self.late_delivery,
                },
                {
                    "id": "naiveTimestampZone",
                    "question": "Which zone do Billbee's naive timestamps mean?",
                    "notObserved": "the forms are above (timestamps); the zone itself needs a change made at a known "
                    "time, which a read-only run does not make",
                },
            ],
            "serverErrors": dict(self.server_errors),
            "connectorLog": self.connector_log,
        }

    def _totals(self) -> dict[str, Any]:
        with_fees = self.totals.get("TotalGross includes the fees", 0)
        without = self.totals.get("TotalGross is the positions only (fees extra)", 0)
        if with_fees and not without:
            answer = "TotalGross includes the fees"
        elif without and not with_fees:
            answer = "TotalGross is the positions only; the fees come on top"
        elif with_fees and without:
            answer = "both readings occurred (per invoice, see the counts)"
        else:
            answer = "not seen: no invoice with fees was read"
        return {"id": "invoiceListTotals", "question": "Do GET /orders/invoices totals include the fees "
                "(ERRATA Billbee 6)?", "counts": dict(self.totals), "examples": self.total_examples,
                "answer": answer}

    def _retry_after(self) -> dict[str, Any]:
        with_header = [t for t in self.throttled if t["retryAfter"] is not None]
        bare = [t for t in self.throttled if t["retryAfter"] is None]
        if not self.throttled:
            answer = "no 429 was met"
        elif bare and not with_header:
            answer = "every 429 came without Retry-After"
        elif with_header and not bare:
            answer = "every 429 carried Retry-After"
        else:
            answer = "some 429s carried Retry-After, some did not"
        return {"id": "retryAfter", "question": "Does a 429 carry Retry-After (ERRATA Billbee 5)?",
                "throttled": self.throttled[:50], "withRetryAfter": len(with_header), "withoutRetryAfter": len(bare),
                "answer": answer}

    def _forms(self) -> dict[str, Any]:
        return {"id": "printedInvoiceNumbers", "question": "How does Billbee print invoice numbers (prefix, "
                "number, postfix)?", "counts": dict(self.forms), "examples": self.form_examples,
                "answer": ", ".join(f"{n} x {form}" for form, n in self.forms.most_common()) or "no invoice read"}

    def _matched(self) -> dict[str, Any]:
        by_order = self.matched.get("BillbeeId is the order id", 0)
        answer = "no invoice-list item matched"
        if by_order:
            answer = "BillbeeId is the order id (PHP SDK fixture reading)"
        elif self.matched.get("OrderNumber and invoice number") or self.matched.get("invoice number"):
            answer = "BillbeeId is not the order id (C# SDK reading): items matched by order or invoice number"
        return {"id": "invoiceBillbeeId", "question": "Is the invoice list's BillbeeId the order id?",
                "counts": dict(self.matched), "answer": answer}

    def _paging(self) -> dict[str, Any]:
        return {"id": "paging", "question": "Do paged answers carry Paging?", "counts": dict(self.paging),
                "answer": ", ".join(f"{k} ({n} pages)" for k, n in sorted(self.paging.items())) or "no page read"}

    def _array_form(self) -> dict[str, Any]:
        states = sum(n for k, n in self.left_out_by_billbee.items() if k.startswith("the order's state"))
        shops = sum(n for k, n in self.left_out_by_billbee.items() if "shop" in k and "manual" not in k)
        tagged = sum(n for k, n in self.left_out_by_billbee.items() if "export tag" in k)
        exist = self.existing_left_out
        parts = []
        for name, returned, existing in (("states (orderStateId[i])", states, exist.get("state", 0)),
                                         ("shops (shopId[i])", shops, exist.get("shop", 0)),
                                         ("the export tag (tag[0] + excludeTags)", tagged, exist.get("tag", 0))):
            if returned:
                parts.append(f"{name}: NOT applied by Billbee ({returned} orders it should have dropped came back; "
                             "the connector's own filter dropped them)")
            elif existing:
                parts.append(f"{name}: applied by Billbee ({existing} such orders exist and none came back)")
            else:
                parts.append(f"{name}: cannot tell (no order it would drop exists)")
        return {"id": "arrayQueryForm", "question": "Does Billbee bind the indexed array form name[0]= "
                "(ERRATA Billbee 8)?", "queryKeysSent": self.filters_sent,
                "leftOutByTheConnectorsOwnFilters": dict(self.left_out_by_billbee),
                "existingOrdersTheFiltersLeaveOut": dict(exist), "answer": "; ".join(parts)}

    def _timestamps(self) -> dict[str, Any]:
        return {"id": "timestamps", "question": "Which forms do Billbee's order timestamps take (ERRATA Billbee 4)?",
                "counts": dict(self.timestamps), "examples": self.timestamp_examples,
                "answer": ", ".join(f"{n} x {form}" for form, n in self.timestamps.most_common()) or "none read"}

    def _null_lists(self) -> dict[str, Any]:
        return {"id": "nullLists", "question": "Which order lists arrive as null instead of [] (ERRATA Billbee 7)?",
                "ordersRead": self.orders_seen, "nullCounts": dict(self.null_lists),
                "answer": ", ".join(f"{k} ({n} orders)" for k, n in sorted(self.null_lists.items())) or "none"}

    def _search(self) -> dict[str, Any]:
        answer = "no voucher search made"
        if self.searches:
            answer = (f"{self.searches_with_others} of {self.searches} searches also returned other vouchers "
                      "(a substring match)" if self.searches_with_others else
                      f"none of {self.searches} searches returned another voucher (cannot tell substring matching)")
        return {"id": "voucherSearchSubstring", "question": "Is sevDesk's descriptionLike a substring match "
                "(sevdesk-pitfalls #14)?", "searches": self.searches, "withOtherVouchers": self.searches_with_others,
                "examples": self.search_examples, "answer": answer}

    def _version(self) -> dict[str, Any]:
        return {"id": "bookkeepingVersion", "question": "Which sevDesk bookkeeping version is the account on?",
                "answer": self.bookkeeping_version or "not read"}

    def _credit_notes(self) -> dict[str, Any]:
        return {"id": "invoiceListTypes", "question": "Which item types does the invoice list carry?",
                "counts": dict(self.invoice_types),
                "answer": ", ".join(f"{n} x {t}" for t, n in self.invoice_types.most_common()) or "none read"}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
