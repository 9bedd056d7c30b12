"""The preflight's work: the connector's own reads and rules against the merchant's accounts, no write.

1. the setup checks the HTTP API runs before it saves a connection (``pipeline.setup.check_connection``);
2. the orders the connection's filters select, listed by the poll's own code (``pipeline.poll.list_candidates``),
   their invoice-list items matched as the poll matches them (``InvoiceIndex``);
3. per order what the export would do (``pipeline/export.py``, in its order of steps): the contact it would find or
   create (``find_contact``), the voucher planned by the same pure rules (``plan_voucher``,
   ``check_against_guidance``), the look-up by invoice number that adopts a voucher already in sevDesk
   (``find_revenue_vouchers``), and the exact bodies of the writes it would send (``sevdesk.bodies``);
4. with ``left_out``, every order since the start date the filters leave out, and by which filter
   (``pipeline.filters.why_left_out``).

What only a write could show is named, not guessed: ``CreateInvoice`` (the PDF, and its number for an order the
invoice list has no item for), the temp file's name, the id of a contact still to be created, and whether sevDesk
takes a delivery date after the voucher date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from connector.billbee.invoices import InvoiceIndex, is_invoice
from connector.billbee.models import InvoiceDetails, Order
from connector.bookkeeping.voucher import (
    BookkeepingProblem,
    Original,
    PlannedPayment,
    VoucherPlan,
    check_against_guidance,
    is_credit_note,
    plan_voucher,
)
from connector.config import Config
from connector.errors import ApiError, AuthError
from connector.pipeline import poll
from connector.pipeline.credit_notes import original_link, original_order
from connector.pipeline.export import pdf_file_name
from connector.pipeline.filters import filter_mismatch, why_left_out
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.pipeline.setup import SetupReport, check_connection
from connector.ratelimit import LocalRateLimiter, NoRateLimit, RateLimiter
from connector.settings.model import ConnectionSettings, Credentials, CreditNotes
from connector.sevdesk.bodies import (
    book_amount_body,
    contact_address_body,
    contact_body,
    email_body,
    save_voucher_body,
)
from connector.sevdesk.models import RevenueAccount, VoucherState
from connector.transport import RetryPolicy
from local.preflight.guard import ReadOnlyGuard, WriteRefused
from local.preflight.observations import Observations

# Outcomes, in the order the report shows them: (title, what it means in plain words).
OUTCOMES: dict[str, tuple[str, str]] = {
    "wouldExport": (
        "Would be exported",
        "a new revenue voucher would be saved in sevDesk with the invoice PDF, its payments booked, and the order "
        "tagged in Billbee",
    ),
    "alreadyInSevdesk": (
        "Already in sevDesk: would be adopted",
        "sevDesk already holds a revenue voucher with this invoice number (for example booked by Billbee's own "
        "sevDesk connection); the export would take that voucher over and never save a second one",
    ),
    "needsAttention": (
        "Needs a bookkeeper's attention",
        "the export would not book it; it would wait as NEEDS_ATTENTION with the reason shown until someone acts",
    ),
    "skipped": (
        "Not exported now (skipped)",
        "the export would skip it for the reason shown; an order without an invoice waits until it is invoiced in "
        "Billbee (the connector never creates an invoice)",
    ),
    "couldNotCheck": (
        "Could not be checked",
        "an API did not answer for this order; run the preflight again",
    ),
    "beyondLimit": (
        "Not checked (beyond --limit)",
        "the connection's filters select it, but the preflight showed details for the first orders only",
    ),
    "leftOut": (
        "Left out by the connection's filters",
        "Billbee holds the order since the start date, but the connection's shops, order states or export tag "
        "leave it out, so the export would not touch it",
    ),
}
EXPORT_STATES = {
    "wouldExport": "EXPORTED", "alreadyInSevdesk": "EXPORTED", "needsAttention": "NEEDS_ATTENTION",
    "skipped": "SKIPPED", "couldNotCheck": None, "beyondLimit": None, "leftOut": None,
}
TAX_RULE_NAMES = {
    1: "taxable sales (Umsatzsteuerpflichtige Umsätze)",
    2: "exports to third countries (Ausfuhren)",
    3: "intra-EU supplies (innergemeinschaftliche Lieferungen)",
    11: "Kleinunternehmer §19 UStG (Steuer nicht erhoben)",
}
VOUCHER_STATUS = {"50": "draft", "100": "open", "750": "partly paid", "1000": "paid"}
STOPPING_CHECKS = ("billbeeCredentials", "sevdeskToken", "bookkeepingVersion")
WHAT_TO_DO = {
    "billbeeCredentials": "check the Billbee API key (Billbee gives it on request), the user name (the login e-mail) "
    "and the API password (Billbee: Settings > API), and that the API is activated for the account",
    "sevdeskToken": "use the API token of a sevDesk administrator (sevDesk: Settings > Users > API token)",
    "bookkeepingVersion": "switch the sevDesk account to bookkeeping 2.0 (sevdesk-Update 2.0); the connector writes "
    "only to 2.0",
    "shop": "put one of the listed shop ids into general.shopIds",
    "paymentAccount": "map the payment method to an active offline (clearing) account in accounts.paymentAccounts; "
    "POST /connections/{id}/payment-accounts creates one",
    "revenueAccount": "map this tax rule and rate to a revenue account sevDesk's receipt guidance allows "
    "(GET /connections/{id}/setup-options lists them)",
    "unreachable": "the API could not be asked: check its base URL and the network, then run the preflight again",
}
# What the export does that a read-only run cannot show (preflight.json and the page say so once).
NOT_SHOWN = [
    "the invoice PDF: the export reads it with Billbee's CreateInvoice and checks that its number and total are the "
    "voucher's (else the order needs attention); CreateInvoice can allocate an invoice number, so the preflight "
    "never calls it and shows the PDF's file name only",
    "the temp file's name sevDesk gives the uploaded PDF (saveVoucher's filename), and the id of a contact still to "
    "be created: shown as <...> placeholders in the bodies",
    "whether sevDesk takes a delivery date after the voucher date (unconfirmed): if it refuses one, the export saves "
    "the voucher date as delivery date and notes it",
    "the export reads each order again right before writing: an order whose state changes after the preflight is "
    "judged by its state then",
]
LIST_RETRY_ATTEMPTS = 4
PROGRESS_EVERY = 25


class PreflightRuntime(Runtime):
    """The connector's ``Runtime`` for the preflight: the clients are built with the read-only guard under them and
    share an in-process Billbee rate limiter. No table, queue or secret store: the preflight keeps nothing, so
    ``store`` and ``secrets`` are never set (any use would fail loudly)."""

    def __init__(self, config: Config, guard: ReadOnlyGuard) -> None:
        self.guard = guard
        self.limiter: RateLimiter = LocalRateLimiter("preflight") if config.rate_limits else NoRateLimit()
        super().__init__(config=config, table=None, sqs=None, secrets_client=None)

    def __post_init__(self) -> None:
        """Nothing to connect to: no store, no secrets."""

    def limiter_for(self, connection_id: str, *, max_wait: float | None = None) -> RateLimiter:
        return self.limiter

    def transport_for(self, api: str) -> httpx.BaseTransport:
        return self.guard.transport(api)


@dataclass
class PreflightOptions:
    settings: ConnectionSettings
    credentials: Credentials
    billbee_url: str
    sevdesk_url: str
    limit: int = 500
    timeout: float = 20.0
    max_wait: float = 65.0  # longest Retry-After (or documented window) waited out; Billbee's invoice list: 60 s
    rate_limits: bool = True
    progress: Callable[[str], None] = print
    progress_seconds: float = 5.0


@dataclass
class PreflightResult:
    settings: ConnectionSettings
    billbee_url: str
    sevdesk_url: str
    started: float = field(default_factory=time.time)
    checks: list[dict[str, Any]] = field(default_factory=list)
    setup_ok: bool = False
    stopped: str | None = None  # why the preflight stopped early (the report says it)
    stop_kind: str | None = None  # "refused" (settings/credentials) or "unreachable" (try again)
    error: str | None = None  # an API failed while listing
    orders: list[dict[str, Any]] = field(default_factory=list)
    matching: int = 0  # orders the filters select (readable + unreadable)
    limit: int = 0
    problems: list[str] = field(default_factory=list)  # unreadable orders without a usable id
    left_out_total: int = 0
    left_out_reasons: dict[str, int] = field(default_factory=dict)
    invoice_list_error: str | None = None
    refused_write: str | None = None
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.orders:
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
        if self.left_out_total > counts.get("leftOut", 0):
            counts["leftOut"] = self.left_out_total
        return counts


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _day(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def check_label(name: str) -> str:
    return name.split("[", 1)[0]


class Preflight:
    def __init__(self, options: PreflightOptions, guard: ReadOnlyGuard, observations: Observations) -> None:
        self.options = options
        self.settings = options.settings
        self.guard = guard
        self.seen = observations
        config = Config(
            table_name="(none: the preflight stores nothing)",
            export_queue_url="",
            billbee_base_url=options.billbee_url,
            sevdesk_base_url=options.sevdesk_url,
            http_timeout=options.timeout,
            rate_limits=options.rate_limits,
        )
        self.runtime = PreflightRuntime(config, guard)
        self.result = PreflightResult(options.settings, options.billbee_url, options.sevdesk_url,
                                      limit=options.limit)
        self._contacts: dict[str, dict[str, Any]] = {}  # customer number -> what the first order found or planned
        self._account_names: dict[int, str] = {}
        self._printed: dict[int, str] = {}  # the invoice list's printed number per candidate (the poll's record)
        self._voucher_ids: dict[int, str] = {}  # vouchers already in sevDesk, per order
        self._revenue_labels: dict[int, str] = {}
        self._last_progress = time.monotonic()

    def say(self, text: str) -> None:
        self.options.progress(text)

    # -- 1. setup checks -----------------------------------------------------------------------------------------
    def run(self) -> PreflightResult:
        started = time.monotonic()
        try:
            if self._setup_checks():
                self._orders()
        finally:
            self.result.seconds = round(time.monotonic() - started, 2)
            if self.guard.refused and self.result.refused_write is None:
                first = self.guard.refused[0]
                self.result.refused_write = str(WriteRefused(first["api"], first["method"], first["path"],
                                                             first["refused"]))
        return self.result

    def _setup_checks(self) -> bool:
        result = self.result
        self.say("setup checks (the ones the HTTP API runs before it saves a connection):")
        try:
            report = check_connection(self.runtime, self.settings, self.options.credentials)
        except WriteRefused:
            raise
        except ApiError as exc:
            result.stopped = f"the setup checks could not finish: {exc}"
            result.stop_kind = "refused" if isinstance(exc, AuthError) else "unreachable"
            self.say(f"  BAD {result.stopped}")
            return False
        result.checks = [self._check(report, c.name, c.ok, c.detail) for c in report.checks]
        result.setup_ok = report.ok
        for check in result.checks:
            line = f"  {'ok ' if check['ok'] else 'BAD'} {check['check']}: {check['detail']}"
            if not check["ok"]:
                line += f"\n      what to do: {check['whatToDo']}"
            self.say(line)
        failed = {c["check"] for c in result.checks if not c["ok"]}
        if report.unreachable:
            result.stopped = "an API could not be asked: " + ", ".join(report.unreachable)
            result.stop_kind = "unreachable"
            return False
        stopping = failed & set(STOPPING_CHECKS)
        if stopping or "sevdeskToken" not in {c["check"] for c in result.checks}:
            result.stopped = ("the connector could not work with this account: "
                              + ", ".join(sorted(stopping or {"sevdeskToken"})))
            result.stop_kind = "refused"
            return False
        return True

    @staticmethod
    def _check(report: SetupReport, name: str, ok: bool, detail: str) -> dict[str, Any]:
        todo = None
        if not ok:
            key = "unreachable" if name in report.unreachable else check_label(name)
            todo = WHAT_TO_DO.get(key, detail)
        return {"check": name, "ok": ok, "detail": detail, "whatToDo": todo}

    # -- 2. the orders -------------------------------------------------------------------------------------------
    def _orders(self) -> None:
        policy = RetryPolicy(attempts=LIST_RETRY_ATTEMPTS, max_retry_after=self.options.max_wait)
        clients = self.runtime.build_clients(self.settings.connection_id, self.options.credentials, retry=policy)
        try:
            self._list_and_detail(clients)
        except WriteRefused:
            raise
        except ApiError as exc:
            self.result.error = f"stopped: {exc}"
            self.say(f"stopped: {exc}")
        finally:
            clients.billbee.close()
            clients.sevdesk.close()

    def _list_and_detail(self, clients: ConnectionClients) -> None:
        result, settings = self.result, self.settings
        general = settings.general
        self.say(f"listing the orders the filters select (start date {general.start_date}, states "
                 f"{general.order_state_ids}, shops {general.shop_ids or 'all'}, without the tag "
                 f"{settings.export_tag!r}) with the poll's own code ...")
        candidates = poll.list_candidates(clients, settings)
        listed = {o.bill_bee_order_id: o for o in (Order.model_validate(raw) for raw in candidates.orders)}
        unreadable_ids = {b.order_id for b in candidates.unreadable if b.order_id is not None}
        for bad in candidates.unreadable:
            self._unreadable(bad.order_id, bad.raw, bad.problem)

        index = self._invoice_index(clients, list(listed.values()))
        everything = self._all_orders(clients)
        # Credit notes are exported whatever their order's state (docs/settings.md): the poll takes them from the
        # invoice list, so a Storno order in a state the connection does not choose is a candidate all the same.
        for order in everything.values():
            if order.bill_bee_order_id not in listed and self._credit_note_outside_states(order, index):
                listed[order.bill_bee_order_id] = order
        orders = sorted(listed.values(), key=lambda o: (o.created_at or datetime.min, o.bill_bee_order_id))
        if index is not None:
            for order in orders:
                item, _ = index.find(order)
                if item is not None and item.invoice_number:
                    self._printed[order.bill_bee_order_id] = item.invoice_number
        result.matching = len(orders) + len(candidates.unreadable)
        self.say(f"{result.matching} order(s) would be exported or looked at by the connector"
                 + (f"; details for the first {self.options.limit} (--limit)" if len(orders) > self.options.limit
                    else ""))
        self._left_out(everything, set(listed) | unreadable_ids)

        detailed, beyond = orders[: self.options.limit], orders[self.options.limit :]
        guidance = clients.sevdesk.revenue_guidance()
        self._revenue_labels = {a.account_datev_id: a.label for a in guidance}
        self._account_names = {a.id: a.name for a in clients.sevdesk.check_accounts()}
        self.say(f"checking {len(detailed)} order(s) against sevDesk (existing vouchers, contacts) ...")
        for number, order in enumerate(detailed, 1):
            result.orders.append(self._detail(clients, order, index, guidance))
            self._progress(number, len(detailed))
        for order in beyond:
            result.orders.append({**self._head(order), "outcome": "beyondLimit", "exportState": None,
                                  "reason": f"beyond --limit {self.options.limit}: not checked"})

    def _unreadable(self, order_id: int | None, raw: Any, problem: str) -> None:
        """An order the models cannot read: the poll gives it its own NEEDS_ATTENTION record (or names it in the
        poll's summary when it has no usable id)."""
        data = raw if isinstance(raw, dict) else {}
        if order_id is None:
            self.result.problems.append(f"an order without a usable BillBeeOrderId (order number "
                                        f"{data.get('OrderNumber') or 'unknown'}): {problem}")
            return
        self.result.orders.append({
            "orderId": order_id, "orderNumber": data.get("OrderNumber"), "outcome": "needsAttention",
            "exportState": "NEEDS_ATTENTION", "reason": f"Billbee sent order data the connector cannot read: {problem}",
        })

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last_progress >= self.options.progress_seconds:
            self._last_progress = now
            self.say(f"  ... {done} of {total} order(s) checked")

    def _invoice_index(self, clients: ConnectionClients, orders: list[Order]) -> InvoiceIndex | None:
        """The invoice list as the first poll reads it: from the start date, or the day before the oldest invoice
        if that is older (positions, the VAT rate of shipping, credit notes)."""
        since = datetime.combine(self.settings.general.start_date, datetime.min.time())
        dates = [o.invoice_date for o in orders if o.has_invoice and o.invoice_date is not None]
        if dates:
            since = min(since, min(dates).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1))
        self.say(f"reading Billbee's invoice list since {since.date()} (positions, VAT rate of shipping) ...")
        try:
            return InvoiceIndex(clients.billbee.iter_invoices(since))
        except AuthError:
            raise
        except ApiError as exc:
            self.result.invoice_list_error = str(exc)
            self.say(f"  the invoice list could not be read ({exc}); the orders are planned without it, as the "
                     "export would after looking once more")
            return None

    def _all_orders(self, clients: ConnectionClients) -> dict[int, Order]:
        """Every order since the start date, without the state, shop and tag filters."""
        self.say("listing every order since the start date, to tell which ones the filters leave out ...")
        found: dict[int, Order] = {}
        for page in clients.billbee.iter_order_pages(min_order_date=self.settings.general.start_date):
            for order in page.items:
                found[order.bill_bee_order_id] = order
        return found

    def _credit_note_outside_states(self, order: Order, index: InvoiceIndex | None) -> bool:
        if index is None or not order.has_invoice:
            return False
        item, _ = index.find(order)
        if item is None or is_invoice(item):
            return False
        start = self.settings.general.start_date
        if item.invoice_date is not None and item.invoice_date.date() < start:
            return False
        return filter_mismatch(order, self.settings, credit_note=True) is None

    def _left_out(self, everything: dict[int, Order], selected: set[int]) -> None:
        result = self.result
        reasons: dict[str, int] = {}
        listed = 0
        for order in sorted(everything.values(), key=lambda o: (o.created_at or datetime.min, o.bill_bee_order_id)):
            if order.bill_bee_order_id in selected:
                continue
            reason = why_left_out(order.model_dump(mode="json", by_alias=True), self.settings)
            reasons[reason] = reasons.get(reason, 0) + 1
            kind = ("state" if reason.startswith("the order's state") else "tag" if "export tag" in reason
                    else "shop" if "shop" in reason else "other")
            self.seen.existing_left_out[kind] += 1
            if listed < self.options.limit:
                result.orders.append({**self._head(order), "outcome": "leftOut", "exportState": None,
                                      "reason": reason})
            listed += 1
        result.left_out_total = listed
        result.left_out_reasons = reasons
        self.say(f"{listed} order(s) since the start date are left out by the filters")

    def _original(self, clients: ConnectionClients, order: Order) -> Original | None:
        """The invoice a credit note reverses, found by the export's own look-up (``credit_notes.original_order``)
        and linked as the export links it: the original's record (a candidate of the same poll) holds the invoice
        list's printed number; its voucher id is known here only when that voucher is in sevDesk already."""
        found, how = original_order(clients.billbee, order)
        if found is None:
            return None
        link = original_link(found, None)
        number = self._printed.get(found.bill_bee_order_id) or link["invoiceNumber"]
        return Original(found.bill_bee_order_id, number, self._voucher_ids.get(found.bill_bee_order_id))

    # -- 3. one order --------------------------------------------------------------------------------------------
    def _head(self, order: Order) -> dict[str, Any]:
        address = order.invoice_address
        return {
            "orderId": order.bill_bee_order_id,
            "orderNumber": order.order_number,
            "shopId": order.shop_id,
            "state": order.state,
            "createdAt": _day(order.created_at),
            "customer": (address.company or address.person_name) if address is not None else None,
            "invoiceNumber": order.printed_invoice_number if order.has_invoice else None,
        }

    def _detail(
        self,
        clients: ConnectionClients,
        order: Order,
        index: InvoiceIndex | None,
        guidance: list[RevenueAccount],
    ) -> dict[str, Any]:
        entry = self._head(order)
        try:
            return self._plan(clients, order, index, guidance, entry)
        except (WriteRefused, AuthError):
            raise
        except ApiError as exc:
            return {**entry, "outcome": "couldNotCheck", "exportState": None, "reason": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bug in the rules: the export would record it FAILED; so do we
            return {**entry, "outcome": "couldNotCheck", "exportState": "FAILED",
                    "reason": f"internal error: {type(exc).__name__}: {exc}"}

    def _plan(
        self,
        clients: ConnectionClients,
        order: Order,
        index: InvoiceIndex | None,
        guidance: list[RevenueAccount],
        entry: dict[str, Any],
    ) -> dict[str, Any]:
        if not order.has_invoice:
            return {**entry, "outcome": "skipped", "exportState": "SKIPPED", "reason": "the order has no invoice yet"}
        found: InvoiceDetails | None = None
        how = "the invoice list could not be read"
        if index is not None:
            found, how = index.find(order)
        printed = found.invoice_number if found is not None and found.invoice_number else None
        entry["invoice"] = self._invoice_view(order, found, how, printed)
        credit_note = is_credit_note(order, found)
        if credit_note and self.settings.sevdesk.credit_notes is CreditNotes.OFF:
            return {**entry, "outcome": "skipped", "exportState": "SKIPPED", "reason": (
                "a credit note, and credit notes are booked by hand (the connection's setting sevdesk.creditNotes "
                "is off)")}
        original = self._original(clients, order) if credit_note else None
        try:
            plan = plan_voucher(order, found, self.settings, invoice_number=printed, original=original)
        except BookkeepingProblem as problem:
            self.seen.invoice(order, printed, how, None, _money(found.total_gross) if found else None)
            return {**entry, "outcome": "needsAttention", "exportState": "NEEDS_ATTENTION", "reason": problem.reason}
        self.seen.invoice(order, printed, how, plan.total_reading, _money(found.total_gross) if found else None)
        entry["invoiceNumber"] = plan.invoice_number
        entry["invoice"]["totalReading"] = plan.total_reading
        try:
            check_against_guidance(plan, guidance)
        except BookkeepingProblem as problem:
            return {**entry, "outcome": "needsAttention", "exportState": "NEEDS_ATTENTION", "reason": problem.reason}
        notes: list[str] = []  # the preflight's own remarks; the plan's notes are the export's
        if printed is None:
            notes.append(
                f"Billbee's invoice list has no item for this order ({how}): the export takes the printed number from "
                f"CreateInvoice, which the preflight does not call; shown is prefix + number + postfix "
                f"{plan.invoice_number!r}"
            )
        if plan.delivery_date > plan.voucher_date:
            self.seen.late_delivery += 1
        if credit_note and original is not None and original.voucher_id is None:
            notes.append(f"credit note of {original.invoice_number}: if that invoice's voucher is saved before this "
                         "credit note, the export adds its id to each position's text ('(Beleg <id>)')")

        # Step 2 of the export: the contact, before anything else is written.
        contact, contact_writes = self._contact(clients, order, plan) if plan.contact is not None else (None, [])
        contact_ref = None if contact is None else (contact.get("contactId") or contact["placeholder"])

        # Step 4's look-up: a voucher with this number is adopted, two or more need a bookkeeper.
        existing = clients.sevdesk.find_revenue_vouchers(plan.invoice_number)
        entry["existingVouchers"] = [self._voucher_state(v) for v in existing]
        pdf_name = pdf_file_name(plan.invoice_number)
        entry["voucher"] = self._voucher_view(plan, pdf_name)
        entry["preflightNotes"] = notes
        entry["contact"] = contact
        if len(existing) > 1:
            return {**entry, "outcome": "needsAttention", "exportState": "NEEDS_ATTENTION", "reason": (
                f"sevDesk already holds {len(existing)} revenue vouchers numbered {plan.invoice_number} (ids "
                f"{', '.join(v.id for v in existing)}); remove the duplicates, then retry")}
        adopted = existing[0] if existing else None
        if adopted is not None:
            self._voucher_ids[order.bill_bee_order_id] = adopted.id
        voucher_ref = adopted.id if adopted is not None else "<id of the new voucher>"
        writes = self._writes(order, plan, pdf_name, contact_writes, contact_ref, adopted, voucher_ref)
        entry["bookings"] = [self._booking_view(p, voucher_ref, adopted) for p in plan.payments]
        entry["writes"] = writes
        entry["saveVoucher"] = None if adopted is not None else save_voucher_body(
            plan, filename=_temp_file(pdf_name), contact_id=contact_ref)
        if adopted is not None:
            reason = (f"sevDesk already holds voucher {adopted.id} numbered {plan.invoice_number} "
                      f"({VOUCHER_STATUS.get(adopted.status or '', adopted.status)}, {adopted.sum_gross} gross): "
                      "it would be adopted, not saved again")
            if adopted.sum_gross is not None and Decimal(adopted.sum_gross) != plan.total_gross:
                reason += f"; note: it shows {adopted.sum_gross}, the invoice {_money(plan.total_gross)}"
            return {**entry, "outcome": "alreadyInSevdesk", "exportState": "EXPORTED", "reason": reason}
        return {**entry, "outcome": "wouldExport", "exportState": "EXPORTED", "reason": None}

    def _invoice_view(
        self, order: Order, found: InvoiceDetails | None, how: str, printed: str | None
    ) -> dict[str, Any]:
        view: dict[str, Any] = {
            "number": printed or order.printed_invoice_number,
            "numberSource": "invoiceList" if printed else "derived (prefix + number + postfix)",
            "date": _day(order.invoice_date),
            "matched": how,
            "orderTotalCost": _money(order.total_cost),
            "currency": order.currency,
            "vatMode": order.vat_mode,
            "paymentMethod": order.payment_method,
            "payments": [{"amount": _money(p.pay_value), "date": _day(p.pay_date), "type": p.payment_type}
                         for p in order.payments],
            "listItem": None,
        }
        if found is not None:
            view["listItem"] = {
                "billbeeId": found.billbee_id,
                "type": found.type,
                "totalGross": _money(found.total_gross),
                "totalNet": _money(found.total_net),
                "positions": [{"title": p.title, "amount": str(p.amount), "vatRate": _rate(p.vat_rate),
                               "totalGross": str(p.total_gross_value)} for p in found.positions or []],
                "fees": [{"type": f.type, "gross": str(f.gross), "vatRate": _rate(f.vat_rate)}
                         for f in found.additional_fees or []],
            }
        return view

    def _contact(
        self, clients: ConnectionClients, order: Order, plan: VoucherPlan
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What the export's contact step would do, and the writes it would send (the first order of a customer
        creates its contact; later ones reuse it, as the export's contact mapping does)."""
        contact = plan.contact
        assert contact is not None
        known = self._contacts.get(contact.customer_number)
        if known is not None:
            verb = "created" if known["action"] == "create" else "found"
            return {**known, "action": "reuse", "detail": f"the contact {verb} for order {known['firstOrder']} "
                    f"(customer number {contact.customer_number})"}, []
        found = clients.sevdesk.find_contact(contact.customer_number)
        placeholder = f"<new contact {contact.customer_number}>"
        view: dict[str, Any] = {
            "customerNumber": contact.customer_number,
            "name": contact.organisation_name or " ".join(p for p in (contact.first_name, contact.last_name) if p),
            "email": contact.email,
            "firstOrder": order.bill_bee_order_id,
            "placeholder": placeholder,
        }
        writes: list[dict[str, Any]] = []
        if found is not None:
            view.update(action="reuse", contactId=found,
                        detail=f"sevDesk contact {found} has the customer number {contact.customer_number}")
        else:
            writes.append({"api": "sevdesk", "method": "POST", "path": "Contact", "body": contact_body(contact)})
            if contact.street or contact.city:
                country = clients.sevdesk.country_id(contact.country_code)
                writes.append({"api": "sevdesk", "method": "POST", "path": "ContactAddress",
                               "body": contact_address_body(placeholder, contact, country)})
            if contact.email:
                writes.append({"api": "sevdesk", "method": "POST", "path": "CommunicationWay",
                               "body": email_body(placeholder, contact.email)})
            view.update(action="create", contactId=None,
                        detail=f"no sevDesk contact has the customer number {contact.customer_number}: it would be "
                               "created with its address and e-mail")
        self._contacts[contact.customer_number] = view
        return view, writes

    def _writes(
        self,
        order: Order,
        plan: VoucherPlan,
        pdf_name: str,
        contact_writes: list[dict[str, Any]],
        contact_ref: str | None,
        adopted: VoucherState | None,
        voucher_ref: str,
    ) -> list[dict[str, Any]]:
        """The write requests the export would send for this order, in its order; the preflight sent none."""
        writes = list(contact_writes)
        writes.append({"api": "billbee", "method": "POST", "path": f"orders/CreateInvoice/{order.bill_bee_order_id}",
                       "query": {"includeInvoicePdf": "true"}, "body": None,
                       "note": "reads the existing invoice's PDF (never sent by the preflight)"})
        writes.append({"api": "sevdesk", "method": "POST", "path": "Voucher/Factory/uploadTempFile",
                       "body": {"file": pdf_name}, "note": "the invoice PDF, multipart"})
        if adopted is None:
            writes.append({"api": "sevdesk", "method": "POST", "path": "Voucher/Factory/saveVoucher",
                           "body": save_voucher_body(plan, filename=_temp_file(pdf_name), contact_id=contact_ref)})
        for payment in plan.payments:
            writes.append({"api": "sevdesk", "method": "PUT", "path": f"Voucher/{voucher_ref}/bookAmount",
                           "body": book_amount_body(payment)})
        writes.append({"api": "billbee", "method": "POST", "path": f"orders/{order.bill_bee_order_id}/tags",
                       "body": {"Tags": [self.settings.export_tag]}})
        return writes

    def _voucher_view(self, plan: VoucherPlan, pdf_name: str) -> dict[str, Any]:
        return {
            "description": plan.invoice_number,
            "voucherDate": plan.voucher_date.isoformat(),
            "deliveryDate": plan.delivery_date.isoformat(),
            "taxRule": plan.tax_rule,
            "taxRuleName": TAX_RULE_NAMES.get(plan.tax_rule, f"tax rule {plan.tax_rule}"),
            "currency": plan.currency,
            "totalGross": _money(plan.total_gross),
            "supplierName": plan.supplier_name,
            "positions": [
                {"accountDatevId": p.account_datev_id, "account": self._revenue_labels.get(p.account_datev_id),
                 "taxRate": _rate(p.tax_rate), "sumGross": _money(p.sum_gross), "comment": p.comment}
                for p in plan.positions
            ],
            "pdfName": pdf_name,
            "notes": list(plan.notes),  # what the export records on the order
        }

    def _booking_view(self, payment: PlannedPayment, voucher_ref: str, adopted: VoucherState | None) -> dict[str, Any]:
        view: dict[str, Any] = {
            "key": payment.key,
            "amount": _money(payment.amount),
            "date": book_amount_body(payment)["date"],
            "type": payment.booking_type,
            "checkAccountId": payment.check_account_id,
            "checkAccount": self._account_names.get(payment.check_account_id),
            "paymentMethod": payment.payment_method,
            "voucher": voucher_ref,
            "body": book_amount_body(payment),
        }
        if adopted is not None and adopted.status == "1000":
            view["note"] = ("the voucher in sevDesk is paid already: sevDesk would answer 751 'already paid' and the "
                            "booking would count as done")
        return view

    @staticmethod
    def _voucher_state(voucher: VoucherState) -> dict[str, Any]:
        return {"id": voucher.id, "description": voucher.description, "status": voucher.status,
                "statusName": VOUCHER_STATUS.get(voucher.status or ""), "sumGross": voucher.sum_gross,
                "paidAmount": voucher.paid_amount}


def _temp_file(pdf_name: str) -> str:
    return f"<temp file of {pdf_name}>"

