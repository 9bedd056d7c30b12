"""The monthly reconciliation report (docs/reconciliation.md): Billbee's invoices and credit notes of a period against
sevDesk's revenue vouchers of the period, matched by invoice number, with totals per tax rule and rate.

- ``report``: the arithmetic, pure (records in, report out; no I/O): ``reconcile``;
- ``documents``: Billbee invoice-list items, sevDesk vouchers and export records as the report's records, pure;
- ``render``: the report as JSON and CSV;
- ``job``: reading both APIs and the export records for a period, resumable within a time budget;
- ``jobs``: an unfinished job kept in the table between two requests of the HTTP API.
"""
