"""The export records a report needs, read as cheaply as the table allows.

A connection's records grow by every order it ever exported; reading them all for one month would cost a year's
records by December. So the records of a period's documents are read by key (``ORDER#<order id>``, 100 keys per
``BatchGetItem``), with the order id Billbee's invoice list gives as ``BillbeeId`` and, for a credit note, the one the
poll remembered under its number (``CREDITNOTENO#<number>``). Each is taken only if its printed invoice number is the
document's.

``BillbeeId`` is the order id in Billbee's PHP fixture but the invoice's own id in its C# SDK (billbee-api.md §8.3):
when not one document of the period finds its record that way, the account shows the second reading, and the records
are read in full once. They are read in full too for a voucher of the period whose number is not a document of the
period (its invoice is dated elsewhere, and only the number is known).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from connector.billbee.invoices import is_invoice, printed_number_matches
from connector.billbee.models import InvoiceDetails
from connector.observability import logger
from connector.reconciliation.documents import RecordIndex, record_order
from connector.store.records import OrderRecord


class RecordReader(Protocol):
    """The part of ``store.dynamo.Store`` the report reads (GetItem, BatchGetItem and Query: what the ApiFunction
    may do)."""

    def get_orders(self, connection_id: str, order_ids: Iterable[int]) -> dict[int, OrderRecord | None]: ...

    def list_orders(self, connection_id: str) -> list[OrderRecord]: ...

    def credit_note_order(self, connection_id: str, invoice_number: str | None) -> int | None: ...


def _number(invoice: InvoiceDetails) -> str:
    return (invoice.invoice_number or "").strip()


def _is_its_record(record: OrderRecord, invoice: InvoiceDetails) -> bool:
    number = _number(invoice)
    if record.invoice_number:
        return record.invoice_number.strip() == number
    order = record_order(record)  # an order invoiced after the poll last saw it: no number fixed yet
    return order is not None and printed_number_matches(number, order)


class Records:
    available = True  # the connector's table is there to read

    def __init__(self, store: RecordReader, connection_id: str) -> None:
        self.store = store
        self.connection_id = connection_id
        self._by_number: dict[str, OrderRecord] = {}
        self._full: RecordIndex | None = None
        self.read_in_full = False

    def resolve(self, invoices: Iterable[InvoiceDetails]) -> dict[str, OrderRecord]:
        """The record of each document that has one, by its printed number."""
        wanted = [i for i in invoices if _number(i) and _number(i) not in self._by_number]
        if not wanted:
            return dict(self._by_number)
        keys = [self._keys(invoice) for invoice in wanted]
        fetched = self.store.get_orders(self.connection_id, [i for ids in keys for i in ids])
        candidates = [next((r for r in (fetched.get(i) for i in ids) if r is not None and _is_its_record(r, invoice)),
                           None) for invoice, ids in zip(wanted, keys, strict=True)]
        found = 0
        for invoice, record in zip(wanted, candidates, strict=True):
            if record is not None:
                found += 1
                self._by_number[_number(invoice)] = record
        if self._full is None and found == 0:
            logger.info("reconciliation: no record found by BillbeeId; reading the records in full",
                        extra={"documents": len(wanted), "reading": "BillbeeId is the invoice's own id"})
            self._load_full()
        if self._full is not None:
            for invoice in wanted:
                record = self._full.find(invoice)
                if record is not None:
                    self._by_number.setdefault(_number(invoice), record)
        return dict(self._by_number)

    def _keys(self, invoice: InvoiceDetails) -> list[int]:
        """The order ids whose record may be the document's: its ``BillbeeId`` and, for a credit note, the order the
        poll remembered under its number."""
        ids: list[int] = []
        if invoice.billbee_id is not None:
            ids.append(invoice.billbee_id)
        if not is_invoice(invoice):
            remembered = self.store.credit_note_order(self.connection_id, _number(invoice))
            if remembered is not None and remembered not in ids:
                ids.append(remembered)
        return [i for i in ids if 0 < i < 2**63]

    def by_number(self, number: str) -> OrderRecord | None:
        """The record whose invoice number is ``number``, reading the records in full if it is not known yet."""
        if number in self._by_number:
            return self._by_number[number]
        if self._full is None:
            self._load_full()
        assert self._full is not None
        return self._full.by_number.get(number)

    def _load_full(self) -> None:
        self._full = RecordIndex(self.store.list_orders(self.connection_id))
        self.read_in_full = True


class _NoTable:
    def get_orders(self, connection_id: str, order_ids: Iterable[int]) -> dict[int, OrderRecord | None]:
        return {}

    def list_orders(self, connection_id: str) -> list[OrderRecord]:
        return []

    def credit_note_order(self, connection_id: str, invoice_number: str | None) -> int | None:
        return None


class NoRecords(Records):
    """No export records at all: a report over the live accounts from a machine without the connector's table
    (``python -m local.reconcile --live``). Nothing is looked up, and the report says so (``available``)."""

    available = False

    def __init__(self) -> None:
        super().__init__(_NoTable(), "")

    def resolve(self, invoices: Iterable[InvoiceDetails]) -> dict[str, OrderRecord]:
        return {}

    def by_number(self, number: str) -> OrderRecord | None:
        return None
