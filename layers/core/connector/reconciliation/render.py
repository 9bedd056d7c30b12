"""The report as the HTTP API and ``local.reconcile`` hand it out: JSON (camelCase, amounts as decimal strings with two
places, never floats), CSV for a spreadsheet, and a short text for a terminal."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connector.money import rate_key
from connector.reconciliation.report import (
    Amounts,
    BillbeeDocument,
    Category,
    ExportInfo,
    Line,
    Report,
    SevdeskVoucher,
    tax_rule_label,
)

# The order a bookkeeper works through the lines: what is wrong first.
CATEGORY_ORDER = (Category.MISSING, Category.DIFFERENT, Category.EXTRA, Category.OPEN, Category.MATCHED)
CSV_COLUMNS = (
    "category", "invoiceNumber", "kind", "taxRule", "rate", "billbeeDate", "billbeeGross", "billbeeNet", "billbeeVat",
    "voucherId", "voucherDate", "voucherStatus", "sevdeskGross", "sevdeskNet", "sevdeskVat", "differenceGross",
    "exportState", "orderId", "reasons",
)
# A spreadsheet runs a cell that starts with one of these as a formula; text from sevDesk (a voucher's description,
# typed by a person) must not (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def amounts_dict(amounts: Amounts) -> dict[str, str]:
    return {"gross": money(amounts.gross), "net": money(amounts.net), "vat": money(amounts.vat)}


def _rates(rates: Mapping[Decimal, Amounts]) -> list[dict[str, str]]:
    return [{"rate": rate_key(rate), **amounts_dict(rates[rate])} for rate in sorted(rates, reverse=True)]


def _billbee(document: BillbeeDocument, in_period: bool) -> dict[str, Any]:
    return {
        "kind": document.kind.value,
        "orderId": document.order_id,
        "invoiceDate": document.invoice_date.isoformat() if document.invoice_date else None,
        "vatMode": document.vat_mode,
        "taxRule": document.tax_rule,
        "inPeriod": in_period,
        "total": amounts_dict(document.total),
        "rates": _rates(document.rates),
        "notes": list(document.notes),
    }


def _sevdesk(voucher: SevdeskVoucher, in_period: bool) -> dict[str, Any]:
    return {
        "voucherId": voucher.voucher_id,
        "voucherDate": voucher.voucher_date.isoformat() if voucher.voucher_date else None,
        "taxRule": voucher.tax_rule,
        "status": voucher.status,
        "paidAmount": money(voucher.paid_amount),
        "inPeriod": in_period,
        "total": amounts_dict(voucher.total),
        "rates": _rates(voucher.rates),
    }


def _export(export: ExportInfo) -> dict[str, Any]:
    return {"orderId": export.order_id, "state": export.state, "reason": export.reason, "voucherId": export.voucher_id}


def ordered_lines(report: Report) -> list[Line]:
    rank = {category: index for index, category in enumerate(CATEGORY_ORDER)}
    return sorted(report.lines, key=lambda line: (rank[line.category], line.number or "",
                                                  line.sevdesk.voucher_id if line.sevdesk else ""))


def report_dict(report: Report, *, connection_id: str, generated_at: str) -> dict[str, Any]:
    return {
        "connectionId": connection_id,
        "period": {"from": report.period.first.isoformat(), "to": report.period.last.isoformat()},
        "generatedAt": generated_at,
        "reconciles": report.reconciles,
        "paymentReconciliation": "billbee" if report.reconciliation_in_billbee else "sevdesk",
        "counts": report.counts,
        "totals": [
            {
                "taxRule": row.tax_rule,
                "taxRuleName": tax_rule_label(row.tax_rule),
                "rate": rate_key(row.rate),
                "billbee": amounts_dict(row.billbee),
                "sevdesk": amounts_dict(row.sevdesk),
                "difference": amounts_dict(row.difference),
            }
            for row in report.totals
        ],
        "total": {
            "billbee": amounts_dict(report.billbee_total),
            "sevdesk": amounts_dict(report.sevdesk_total),
            "difference": amounts_dict(report.billbee_total - report.sevdesk_total),
        },
        "lines": [
            {
                "category": line.category.value,
                "invoiceNumber": line.number,
                "reasons": list(line.reasons),
                "billbee": None if line.billbee is None else _billbee(line.billbee, line.billbee_in_period),
                "sevdesk": None if line.sevdesk is None else _sevdesk(line.sevdesk, line.sevdesk_in_period),
                "export": None if line.export is None else _export(line.export),
            }
            for line in ordered_lines(report)
        ],
        "notes": list(report.notes),
    }


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def report_csv(report: Report) -> str:
    """One row per line and VAT rate, then one ``total`` row per (tax rule, rate) and one for everything. Amounts
    appear only where the line counts them in the period, so a spreadsheet's sum per rate is the total row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in ordered_lines(report):
        billbee, sevdesk = line.billbee_counted, line.sevdesk_counted
        rates: list[Decimal | None] = [*sorted(set(billbee) | set(sevdesk), reverse=True)] or [None]
        for rate in rates:
            ours = billbee.get(rate) if rate is not None else None
            theirs = sevdesk.get(rate) if rate is not None else None
            difference = (ours or Amounts()) - (theirs or Amounts())
            document, voucher = line.billbee, line.sevdesk
            rule = document.tax_rule if document is not None else voucher.tax_rule if voucher is not None else None
            writer.writerow([
                line.category.value,
                _cell(line.number),
                document.kind.value if document is not None else "",
                "" if rule is None else rule,
                "" if rate is None else rate_key(rate),
                document.invoice_date.isoformat() if document is not None and document.invoice_date else "",
                money(ours.gross) if ours else "", money(ours.net) if ours else "", money(ours.vat) if ours else "",
                _cell(voucher.voucher_id) if voucher is not None else "",
                voucher.voucher_date.isoformat() if voucher is not None and voucher.voucher_date else "",
                _cell(voucher.status) if voucher is not None else "",
                money(theirs.gross) if theirs else "", money(theirs.net) if theirs else "",
                money(theirs.vat) if theirs else "",
                money(difference.gross) if rate is not None else "",
                line.export.state if line.export is not None else "",
                line.export.order_id if line.export is not None else (document.order_id if document else ""),
                _cell("; ".join(line.reasons)),
            ])
    for row in report.totals:
        writer.writerow([
            "total", "", "", "" if row.tax_rule is None else row.tax_rule, rate_key(row.rate), "",
            money(row.billbee.gross), money(row.billbee.net), money(row.billbee.vat), "", "", "",
            money(row.sevdesk.gross), money(row.sevdesk.net), money(row.sevdesk.vat), money(row.difference.gross),
            "", "", tax_rule_label(row.tax_rule),
        ])
    ours, theirs = report.billbee_total, report.sevdesk_total
    writer.writerow([
        "total", "", "", "", "", "", money(ours.gross), money(ours.net), money(ours.vat), "", "", "",
        money(theirs.gross), money(theirs.net), money(theirs.vat), money(ours.gross - theirs.gross), "", "",
        "every tax rule and rate",
    ])
    return out.getvalue()


def report_text(report: Report) -> str:
    """A few lines for a terminal: the verdict, the lines that need a look, and the totals."""
    period = report.period
    verdict = "reconciles" if report.reconciles else "does NOT reconcile"
    counts = ", ".join(f"{n} {category}" for category, n in report.counts.items() if n)
    out = [f"{period.first} to {period.last}: {verdict} ({counts or 'nothing in the period'})"]
    for line in ordered_lines(report):
        if line.category is Category.MATCHED:
            continue
        what = line.number or "(no number)"
        if line.sevdesk is not None:
            what += f" [voucher {line.sevdesk.voucher_id}]"
        out.append(f"  {line.category.value:<9} {what}: {'; '.join(line.reasons)}")
    out.append("  totals (tax rule, rate): Billbee gross / sevDesk gross / difference")
    for row in report.totals:
        out.append(f"    {tax_rule_label(row.tax_rule)}, {rate_key(row.rate)} %: {money(row.billbee.gross)} / "
                   f"{money(row.sevdesk.gross)} / {money(row.difference.gross)}")
    total = report.billbee_total - report.sevdesk_total
    out.append(f"    all: {money(report.billbee_total.gross)} / {money(report.sevdesk_total.gross)} / "
               f"{money(total.gross)}")
    for note in report.notes:
        out.append(f"  note: {note}")
    return "\n".join(out)
