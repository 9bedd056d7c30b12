"""The preflight's files: ``preflight.json`` (one entry per order), ``preflight.html`` (for a bookkeeper),
``requests.jsonl`` (every exchange, credentials masked) and ``observations.json``.

The page is static HTML without scripts; every value that comes from an API, a setting or a reason goes through
``html.escape`` (``_e``), so a customer called ``<script>`` is shown as text, never run.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from local.preflight.guard import ReadOnlyGuard
from local.preflight.observations import Observations
from local.preflight.preview import NOT_SHOWN, OUTCOMES, TAX_RULE_NAMES, PreflightResult

FORMAT_VERSION = 1
MAX_UNCHECKED_SHOWN = 100  # orders beyond --limit listed on the page (preflight.json lists every one)


def _sorted_orders(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {name: i for i, name in enumerate(OUTCOMES)}
    return sorted(orders, key=lambda o: (rank.get(o["outcome"], 99), str(o.get("createdAt") or ""), o["orderId"]))


def totals(orders: Iterable[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    """Gross per (tax rule, rate) over the vouchers of one outcome."""
    sums: dict[tuple[int, str], dict[str, Any]] = {}
    for order in orders:
        if order["outcome"] != outcome or not order.get("voucher"):
            continue
        voucher = order["voucher"]
        for position in voucher["positions"]:
            key = (int(voucher["taxRule"]), position["taxRate"])
            row = sums.setdefault(key, {"taxRule": key[0], "taxRuleName": voucher["taxRuleName"],
                                        "taxRate": key[1], "vouchers": set(), "gross": Decimal(0)})
            row["vouchers"].add(order["orderId"])
            row["gross"] += Decimal(position["sumGross"])
    return [{**row, "vouchers": len(row["vouchers"]), "gross": f"{row['gross']:.2f}"}
            for _, row in sorted(sums.items(), key=lambda item: (item[0][0], Decimal(item[0][1])))]


def booking_totals(orders: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    sums: dict[int, dict[str, Any]] = {}
    for order in orders:
        if order["outcome"] not in ("wouldExport", "alreadyInSevdesk"):
            continue
        for booking in order.get("bookings") or []:
            row = sums.setdefault(booking["checkAccountId"], {"checkAccountId": booking["checkAccountId"],
                                                              "checkAccount": booking["checkAccount"],
                                                              "bookings": 0, "amount": Decimal(0)})
            row["bookings"] += 1
            row["amount"] += Decimal(booking["amount"])
    return [{**row, "amount": f"{row['amount']:.2f}"} for _, row in sorted(sums.items())]


def report_json(result: PreflightResult, guard: ReadOnlyGuard) -> dict[str, Any]:
    orders = _sorted_orders(result.orders)
    return {
        "preflight": {
            "format": FORMAT_VERSION,
            "generatedAt": datetime.fromtimestamp(result.started, UTC).isoformat(timespec="seconds"),
            "seconds": result.seconds,
            "readOnly": "nothing was written: a guard under both clients let only reads leave the process",
        },
        "connection": result.settings.public_dict(),
        "apis": {"billbee": result.billbee_url, "sevdesk": result.sevdesk_url},
        "setupChecks": {"ok": result.setup_ok and not result.stopped, "checks": result.checks},
        "stopped": result.stopped,
        "stopKind": result.stop_kind,
        "error": result.error,
        "refusedWrite": result.refused_write,
        "summary": {
            "matching": result.matching,
            "limit": result.limit,
            "counts": result.counts(),
            "leftOutReasons": result.left_out_reasons,
            "problems": result.problems,
            "invoiceListError": result.invoice_list_error,
        },
        "totals": totals(orders, "wouldExport"),
        "adoptedTotals": totals(orders, "alreadyInSevdesk"),
        "bookingTotals": booking_totals(orders),
        "notShown": NOT_SHOWN,
        "requests": {"sent": guard.methods(), "refused": [
            {k: e[k] for k in ("api", "method", "path", "refused")} for e in guard.refused]},
        "orders": orders,
    }


def write_outputs(out: Path, result: PreflightResult, guard: ReadOnlyGuard, seen: Observations) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = report_json(result, guard)

    def dump(name: str, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        (out / name).write_text(guard.mask(text) + "\n", encoding="utf-8")

    dump("preflight.json", data)
    dump("observations.json", seen.as_dict())
    (out / "preflight.html").write_text(guard.mask(render_html(data, seen.as_dict())), encoding="utf-8")
    with (out / "requests.jsonl").open("w", encoding="utf-8") as handle:
        for line in guard.jsonl_lines():
            handle.write(line + "\n")
    return data


# -- HTML ----------------------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    if value is None:
        return "–"
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[Any]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:70rem;color:#1d232a;
padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:2px solid #d0d7de;padding-bottom:.2rem}h3{margin:.2rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 .8rem}th,td{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;
vertical-align:top}th{background:#f3f5f7}td.num,th.num{text-align:right}
.ok{color:#116329;font-weight:600}.bad{color:#b3261e;font-weight:600}
.readonly{background:#e8f3ec;border:1px solid #9fd4b0;padding:.5rem .8rem;border-radius:6px}
.warning{background:#fdf0e6;border:1px solid #f0b88a;padding:.5rem .8rem;border-radius:6px}
article.order{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .9rem;margin:.7rem 0}
article.order p{margin:.2rem 0}.reason{font-weight:600}.muted{color:#57606a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.3rem 0}dt{color:#57606a}dd{margin:0}
ul.notes{margin:.2rem 0}
"""


def _checks_html(data: dict[str, Any]) -> str:
    checks = data["setupChecks"]["checks"]
    if not checks:
        return f'<p class="bad">{_e(data["stopped"] or "the setup checks did not run")}</p>'
    rows = "".join(
        f'<tr><td class="{"ok" if c["ok"] else "bad"}">{"ok" if c["ok"] else "bad"}</td><td>{_e(c["check"])}</td>'
        f'<td>{_e(c["detail"])}</td><td>{_e(c["whatToDo"] if not c["ok"] else "")}</td></tr>'
        for c in checks
    )
    return ('<table class="checks"><thead><tr><th></th><th>check</th><th>result</th><th>what to do</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _summary_html(data: dict[str, Any]) -> str:
    summary = data["summary"]
    counts = summary["counts"]
    rows = [[OUTCOMES[name][0], counts.get(name, 0), OUTCOMES[name][1]] for name in OUTCOMES if counts.get(name)]
    parts = [f"<p>{_e(summary['matching'])} order(s) match the connection's filters.</p>",
             _table(["outcome", "orders", "meaning"], rows, "outcomes")]
    for title, key in (("New vouchers per tax rule and rate", "totals"),
                       ("Vouchers already in sevDesk (adopted) per tax rule and rate", "adoptedTotals")):
        if data[key]:
            parts.append(f"<h3>{_e(title)}</h3>")
            parts.append(_table(["tax rule", "rate %", "vouchers", "gross"],
                                [[f"{t['taxRule']} {t['taxRuleName']}", t["taxRate"], t["vouchers"], t["gross"]]
                                 for t in data[key]], "totals"))
    if data["bookingTotals"]:
        parts.append("<h3>Payments that would be booked, per sevDesk account</h3>")
        parts.append(_table(["account", "bookings", "amount"],
                            [[f"{b['checkAccountId']} {b['checkAccount'] or ''}".strip(), b["bookings"], b["amount"]]
                             for b in data["bookingTotals"]], "bookings-total"))
    if summary["leftOutReasons"]:
        parts.append("<h3>Why orders are left out</h3>")
        parts.append(_table(["orders", "reason"], [[n, r] for r, n in sorted(
            summary["leftOutReasons"].items(), key=lambda item: -item[1])], "left-out"))
    for problem in summary["problems"]:
        parts.append(f'<p class="warning">{_e(problem)}</p>')
    if summary["invoiceListError"]:
        parts.append(f'<p class="warning">Billbee\'s invoice list could not be read: {_e(summary["invoiceListError"])}'
                     "</p>")
    return "".join(parts)


def _order_html(order: dict[str, Any]) -> str:
    voucher = order.get("voucher")
    invoice = order.get("invoice") or {}
    title = f"Invoice {order.get('invoiceNumber') or '–'} · order {order['orderId']}"
    if order.get("orderNumber"):
        title += f" ({order['orderNumber']})"
    parts = [f'<article class="order" id="order-{_e(order["orderId"])}" data-order-id="{_e(order["orderId"])}" '
             f'data-outcome="{_e(order["outcome"])}"><h3>{_e(title)}</h3>']
    facts = [("customer", order.get("customer")), ("order date", order.get("createdAt")),
             ("shop", order.get("shopId")), ("Billbee state", order.get("state"))]
    if order.get("reason"):
        parts.append(f'<p class="reason">{_e(order["reason"])}</p>')
    if voucher:
        contact = order.get("contact")
        counterpart = voucher["supplierName"]
        if contact:
            counterpart = f"{contact['name']} – contact {contact['customerNumber']}: {contact['detail']}"
        facts += [("voucher date", voucher["voucherDate"]), ("delivery date", voucher["deliveryDate"]),
                  ("tax rule", f"{voucher['taxRule']} {voucher['taxRuleName']}"),
                  ("total", f"{voucher['totalGross']} {voucher['currency']}"),
                  ("customer in sevDesk", counterpart), ("PDF attached", voucher["pdfName"]),
                  ("invoice number from", invoice.get("numberSource"))]
    elif invoice:
        facts += [("invoice date", invoice.get("date")), ("order total", invoice.get("orderTotalCost"))]
    parts.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts if v is not None) + "</dl>")
    if voucher:
        parts.append(_table(["revenue account", "VAT %", "gross", "text"],
                            [[f"{p['accountDatevId']} {p['account'] or ''}".strip(), p["taxRate"], p["sumGross"],
                              p["comment"]] for p in voucher["positions"]], "positions"))
        bookings = order.get("bookings") or []
        if bookings:
            parts.append(_table(["payment", "amount", "date", "type", "account"],
                                [[b["key"], b["amount"], b["date"], b["type"],
                                  f"{b['checkAccountId']} {b['checkAccount'] or ''}".strip()] for b in bookings],
                                "bookings"))
        else:
            parts.append('<p class="muted">No payment would be booked: the voucher stays open.</p>')
        notes = [*voucher["notes"], *(b["note"] for b in bookings if b.get("note")),
                 *(f"preflight: {n}" for n in order.get("preflightNotes") or [])]
        if notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</article>")
    return "".join(parts)


def _observations_html(observations: dict[str, Any]) -> str:
    rows = [[q["question"], q.get("answer") or f"not observed: {q.get('notObserved')}"]
            for q in observations["questions"]]
    return _table(["question (docs/real-apis.md)", "what this run saw"], rows, "observations")


def render_html(data: dict[str, Any], observations: dict[str, Any]) -> str:
    connection = data["connection"]
    sent = data["requests"]["sent"]
    reads = sum(sent.values())
    writes = sum(n for method, n in sent.items() if method != "GET")
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Preflight: {_e(connection['name'])}</title><style>{STYLE}</style></head><body>",
        f"<header><h1>Preflight of the connection {_e(connection['name'])} ({_e(connection['connectionId'])})</h1>",
        f"<p>What the connector would book, shown before anything is booked. Generated "
        f"{_e(data['preflight']['generatedAt'])} against Billbee {_e(data['apis']['billbee'])} and sevDesk "
        f"{_e(data['apis']['sevdesk'])}.</p>",
        f'<p class="readonly" id="read-only">Nothing was written: {_e(reads)} requests were sent, '
        f"{_e(writes)} of them writes; {_e(len(data['requests']['refused']))} refused by the read-only guard.</p>",
    ]
    if data["refusedWrite"]:
        parts.append(f'<p class="warning">The read-only guard stopped a write: {_e(data["refusedWrite"])}. This is a '
                     "bug in the connector; nothing was sent.</p>")
    if data["stopped"] or data["error"]:
        parts.append(f'<p class="warning">The preflight stopped early: {_e(data["stopped"] or data["error"])}</p>')
    parts.append("</header>")
    parts.append(f'<section id="checks"><h2>Setup checks</h2>{_checks_html(data)}</section>')
    parts.append(f'<section id="summary"><h2>Summary</h2>{_summary_html(data)}</section>')
    orders = data["orders"]
    for name, (title, meaning) in OUTCOMES.items():
        group = [o for o in orders if o["outcome"] == name]
        if not group:
            continue
        total = data["summary"]["counts"].get(name, len(group))
        if name == "beyondLimit":
            group = group[:MAX_UNCHECKED_SHOWN]
        shown = f" (showing {len(group)}; preflight.json lists more)" if total > len(group) else ""
        parts.append(f'<section class="outcome" id="outcome-{_e(name)}"><h2>{_e(title)}: {_e(total)}{_e(shown)}</h2>'
                     f'<p class="muted">{_e(meaning)}.</p>')
        parts.extend(_order_html(order) for order in group)
        parts.append("</section>")
    parts.append('<section id="not-shown"><h2>What the preflight cannot show</h2><ul>'
                 + "".join(f"<li>{_e(item)}</li>" for item in data["notShown"]) + "</ul></section>")
    parts.append(f'<section id="observations"><h2>What this run saw about the APIs</h2>'
                 f"{_observations_html(observations)}</section>")
    parts.append(f'<footer class="muted"><p>Tax rules: {_e(", ".join(f"{k} {v}" for k, v in TAX_RULE_NAMES.items()))}'
                 ".</p></footer></body></html>")
    return "\n".join(parts)
