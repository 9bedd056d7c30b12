"""Exporting one order: exactly once, resumable (architecture.md §4).

The steps, each recorded in the order's record before the next starts, so a retry resumes where the last attempt
stopped:

1. claim the record (conditional write with a lease; a second worker backs off)
2. contact: the mapped one, or found by customer number, or created (if the connection creates contacts)
   (before the first write the order is read again: its state at the time of the transfer counts)
3. invoice PDF from Billbee -> ``uploadTempFile``
   (the ``CreateInvoice`` answer is used only when its number and total are the order's invoice's; the printed
   number it carries becomes the voucher's duplicate key, fixed once per order)
4. ``saveVoucher`` - after looking for a voucher with this invoice number first, so an earlier attempt whose answer
   was lost is adopted instead of duplicated
5. ``bookAmount`` per payment (reconciliation in Billbee) - a lost answer is settled by reading the voucher back

A write whose answer was lost (``saveVoucher``, ``bookAmount``, a contact) is never sent again in the invocation that
lost it: it may commit seconds later. The export comes back later, searches, and writes again only after searches
spread over a window found nothing (``outcomes.py``). Waiting for that, like waiting out a 429, uses up no attempt.
6. tag the order in Billbee (``POST``, never ``PUT``)
7. ``EXPORTED``
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from connector.billbee.invoices import document_problem, match_invoice
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
from connector.errors import (
    ApiError,
    NotFoundError,
    OutcomePending,
    RejectedError,
    TransientError,
    UnknownOutcome,
    UnreadableData,
    Waiting,
)
from connector.observability import logger
from connector.pipeline.connection import BROKEN, check_sevdesk_account, mark_broken
from connector.pipeline.credit_notes import original_link, original_order
from connector.pipeline.decisions import failed_attempt
from connector.pipeline.filters import filter_mismatch
from connector.pipeline.outcomes import LostWrite, Timing, after_lost_answer, after_search_found_nothing
from connector.pipeline.poll import CREDIT_NOTES_OFF
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.settings.model import ConnectionSettings, CreditNotes
from connector.sevdesk.bodies import german_date
from connector.store.dynamo import ConflictError, StoredConnection
from connector.store.records import CLAIMABLE, ExportState, OrderRecord

TEMP_FILE_MAX_AGE = timedelta(hours=1)  # re-upload a PDF whose temp file may have expired before the voucher
INVOICE_WINDOW = timedelta(minutes=1)  # the invoice list is searched this far around the order's invoice date
# A credit note waits while the invoice it reverses is still being exported by this connection.
ORIGINAL_BUSY = (ExportState.PENDING, ExportState.EXPORTING, ExportState.FAILED)


class Outcome(StrEnum):
    EXPORTED = "EXPORTED"
    ALREADY_DONE = "ALREADY_DONE"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    SKIPPED = "SKIPPED"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    RETRY_LATER = "RETRY_LATER"  # the message must come back (SQS batch item failure)
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ExportRequest:
    connection_id: str
    order_id: int
    reason: str = "poll"


class Exporter:
    def __init__(self, runtime: Runtime, *, worker_id: str | None = None) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        # When the outcome is RETRY_LATER: how long the message should stay away (None = the caller's back-off).
        self.retry_after: float | None = None

    def export(self, request: ExportRequest) -> Outcome:
        stored = self.store.get_connection(request.connection_id)
        if stored is None:
            logger.warning("export for an unknown connection", extra={"connection": request.connection_id})
            return Outcome.UNKNOWN
        if stored.status.state == "ERROR":
            # The poll re-checks the connection every hour and re-queues its orders once it works again.
            logger.warning("connection in error state; export postponed", extra={"connection": request.connection_id})
            return Outcome.CONNECTION_ERROR
        owner = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        lease = self.runtime.config.lease_seconds
        record = self.store.claim(request.connection_id, request.order_id, owner, lease)
        if record is None:
            existing = self.store.get_order(request.connection_id, request.order_id)
            if existing is not None and existing.state in CLAIMABLE:
                # The claim lost a conditional write to someone who left the order claimable (the poll marking it
                # queued): try once more, and never acknowledge an order that still waits for its export.
                record = self.store.claim(request.connection_id, request.order_id, owner, lease)
                if record is not None:
                    return self._run(stored, record, owner)
                self.retry_after = 1.0
                return Outcome.RETRY_LATER
            if existing is None:
                logger.warning("export for an unknown order", extra={"order": request.order_id})
                return Outcome.UNKNOWN
            if existing.state is ExportState.EXPORTING:
                # Another worker holds the lease (or died holding it): come back once it has run out.
                self.retry_after = max(1.0, existing.lease_until - self.store.epoch() + 1)
                return Outcome.RETRY_LATER
            return Outcome.ALREADY_DONE
        return self._run(stored, record, owner)

    # -- one attempt ---------------------------------------------------------------------------------------------
    def _run(self, stored: StoredConnection, record: OrderRecord, owner: str) -> Outcome:
        settings = stored.settings
        try:
            credentials = self.runtime.secrets.get(stored.secret_id)
            clients = self.runtime.clients_for(settings.connection_id, credentials)
            check_sevdesk_account(clients)
            return self._steps(settings, clients, record, owner)
        except BookkeepingProblem as problem:
            return self._finish(record, owner, ExportState.NEEDS_ATTENTION, reason=problem.reason)
        except BROKEN as exc:
            reason = mark_broken(self.runtime, stored, exc)
            self._finish(record, owner, ExportState.FAILED, error=reason)
            return Outcome.CONNECTION_ERROR
        except UnreadableData as exc:
            return self._finish(
                record, owner, ExportState.NEEDS_ATTENTION,
                reason=f"{exc.api} sent data the connector cannot read: {exc.detail}",
            )
        except RejectedError as exc:
            return self._finish(
                record, owner, ExportState.NEEDS_ATTENTION, reason=f"rejected by {exc.api}: {exc.detail}"
            )
        except ConflictError:
            # Someone else changed the record (our lease expired and another worker took over): let them finish.
            logger.warning("lost the lease", extra={"order": record.order_id})
            return Outcome.RETRY_LATER
        except (TransientError, NotFoundError) as exc:
            waiting = isinstance(exc, Waiting) or (isinstance(exc, TransientError) and exc.status == 429)
            if isinstance(exc, TransientError) and exc.retry_after:
                self.retry_after = exc.retry_after
            return self._fail(record, owner, str(exc), counts=not waiting)
        except Exception as exc:  # a bug must not lose the order: it stays FAILED with the error and is retried
            logger.exception("unexpected error during export", extra={"order": record.order_id})
            return self._fail(record, owner, f"internal error: {type(exc).__name__}: {exc}")

    def _fail(self, record: OrderRecord, owner: str, error: str, *, counts: bool = True) -> Outcome:
        """A retryable failure (``decisions.failed_attempt``)."""
        end = failed_attempt(error, attempts=record.attempts, max_attempts=self.runtime.config.max_attempts,
                             counts=counts)
        record.attempts = end.attempts
        self._finish(record, owner, end.state, error=error, reason=end.reason)
        return Outcome.RETRY_LATER if end.state is ExportState.FAILED else Outcome.NEEDS_ATTENTION

    def _finish(
        self,
        record: OrderRecord,
        owner: str,
        state: ExportState,
        *,
        reason: str | None = None,
        error: str | None = None,
    ) -> Outcome:
        record.state = state
        record.reason = reason
        if error is not None:
            record.last_error = error
        record.lease_owner = None
        record.lease_until = 0
        try:
            self.store.save(record, owner=owner)
        except ConflictError:
            return Outcome.RETRY_LATER
        log = logger.info if state is ExportState.EXPORTED else logger.warning
        log("export finished", extra={"order": record.order_id, "state": state.value, "reason": reason, "error": error})
        if state is ExportState.NEEDS_ATTENTION:
            return Outcome.NEEDS_ATTENTION
        if state is ExportState.FAILED:
            return Outcome.RETRY_LATER
        return Outcome.EXPORTED if state is ExportState.EXPORTED else Outcome.SKIPPED

    def _save(self, record: OrderRecord, owner: str) -> None:
        self.store.save(record, owner=owner)

    @property
    def _timing(self) -> Timing:
        config = self.runtime.config
        return Timing(config.unknown_recheck_seconds, config.unknown_settle_seconds, config.unknown_min_searches)

    # -- the steps -----------------------------------------------------------------------------------------------
    def _steps(
        self, settings: ConnectionSettings, clients: ConnectionClients, record: OrderRecord, owner: str
    ) -> Outcome:
        if record.steps.voucher_id is None:
            # The state *at the time of the transfer* counts (help text): read the order again before the voucher is
            # written, so an order cancelled since the poll listed it is not exported. One GET per order.
            try:
                fresh = clients.billbee.get_order(record.order_id)
            except NotFoundError:
                return self._finish(record, owner, ExportState.SKIPPED, reason="the order no longer exists in Billbee")
            if record.origin == "poll":
                stored_invoice = InvoiceDetails.model_validate(record.invoice) if record.invoice else None
                mismatch = filter_mismatch(fresh, settings, credit_note=is_credit_note(fresh, stored_invoice))
                if mismatch is not None:
                    return self._finish(record, owner, ExportState.SKIPPED, reason=mismatch)
            record.order = fresh.model_dump(mode="json", by_alias=True)
        try:
            order = Order.model_validate(record.order)
        except ValueError as exc:  # stored by an earlier version, or changed by hand
            raise BookkeepingProblem(f"the stored order cannot be read: {exc}") from exc
        if not order.has_invoice:
            # Never invoiced by us: Billbee's CreateInvoice would allocate a number (billbee-pitfalls #16).
            return self._finish(record, owner, ExportState.SKIPPED, reason="the order has no invoice yet")
        invoice = self._invoice_details(clients, settings, order, record, owner)
        if settings.sevdesk.credit_notes is CreditNotes.OFF and is_credit_note(order, invoice) \
                and record.steps.voucher_id is None:
            return self._finish(record, owner, ExportState.SKIPPED, reason=CREDIT_NOTES_OFF)
        original = self._original(clients, settings, order, record) if is_credit_note(order, invoice) else None
        plan = plan_voucher(order, invoice, settings, invoice_number=record.invoice_number, original=original)
        logger.info("invoice total", extra={"order": order.bill_bee_order_id, "reading": plan.total_reading})
        check_against_guidance(plan, self.runtime.revenue_guidance(clients))
        steps = record.steps
        if steps.delivery_date_is_voucher_date or clients.delivery_after_voucher_date_refused:
            # sevDesk refused a delivery date after the voucher date before (this order, or this connection).
            plan = _delivery_on_voucher_date(plan)

        if plan.contact is not None and steps.contact_id is None:
            steps.contact_id = self._contact(settings, clients, plan, owner)
            self._save(record, owner)

        if steps.voucher_id is None and (steps.file_name is None or self._temp_file_stale(steps.file_uploaded_at)):
            document = clients.billbee.invoice_document(order)
            problem = document_problem(
                document, order, invoice_number=record.invoice_number, expected_total=plan.total_gross
            )
            if problem is not None:
                raise BookkeepingProblem(problem)
            if record.invoice_number is None:
                # The duplicate key, fixed once: Billbee's printed string; prefix + number + postfix only if none.
                printed = (document.invoice_number or "").strip()
                record.invoice_number = printed or plan.invoice_number
                record.invoice_number_source = "createInvoice" if printed else "derived"
                plan = dataclasses.replace(plan, invoice_number=record.invoice_number)
            pdf = clients.billbee.invoice_pdf_bytes(order, document)
            steps.file_name = clients.sevdesk.upload_temp_file(pdf_file_name(plan.invoice_number), pdf)
            steps.file_uploaded_at = datetime.now(UTC).isoformat()
            self._save(record, owner)
        if record.invoice_number is None:  # the PDF was uploaded by an earlier version that did not fix the key
            record.invoice_number, record.invoice_number_source = plan.invoice_number, "derived"

        if steps.voucher_id is None:
            plan = self._voucher(clients, plan, record, owner)

        for payment in plan.payments:
            if payment.key not in steps.bookings:
                self._book(clients, plan, payment, record, owner)

        if record.set_tag and not steps.tagged:
            clients.billbee.add_tags(order.bill_bee_order_id, [settings.export_tag])
            steps.tagged = True
            self._save(record, owner)

        record.notes = list(plan.notes)
        record.last_error = None
        return self._finish(record, owner, ExportState.EXPORTED)

    def _invoice_details(
        self, clients: ConnectionClients, settings: ConnectionSettings, order: Order, record: OrderRecord, owner: str
    ) -> InvoiceDetails | None:
        """The order's invoice-list item (VAT rates of shipping and fees). The poll or the manual export normally
        stored it; if not, it is looked up once around the order's invoice date and kept."""
        if record.invoice:
            return InvoiceDetails.model_validate(record.invoice)
        if record.steps.voucher_id is not None or order.invoice_date is None:
            return None
        try:
            invoices = clients.billbee.invoices_since(
                order.invoice_date - INVOICE_WINDOW, order.invoice_date + INVOICE_WINDOW
            )
        except TransientError:
            if _bookable_without_positions(order, settings):
                logger.warning("invoice list unavailable; the order's lines share one rate", extra={
                    "order": order.bill_bee_order_id})
                return None
            raise  # the shipping's rate is only in the invoice list: wait for it rather than refuse the order
        found, how = match_invoice(order, invoices)
        logger.info("invoice-list item looked up", extra={"order": order.bill_bee_order_id, "matched": how})
        if found is None:
            return None
        record.invoice = found.model_dump(mode="json", by_alias=True)
        if record.invoice_number is None and found.invoice_number:
            record.invoice_number, record.invoice_number_source = found.invoice_number, "invoiceList"
        self._save(record, owner)
        return found

    @staticmethod
    def _temp_file_stale(uploaded_at: str | None) -> bool:
        if not uploaded_at:
            return True
        return datetime.now(UTC) - datetime.fromisoformat(uploaded_at) > TEMP_FILE_MAX_AGE

    def _lost_write(self, record: OrderRecord, owner: str, name: str, exc: UnknownOutcome, what: str) -> OutcomePending:
        """Record that a write's answer was lost, and the error that makes the message come back later."""
        decision = after_lost_answer(self.store.epoch(), self._timing)
        assert decision.lost is not None
        record.steps.unknown[name] = decision.lost.as_item()
        self._save(record, owner)
        logger.warning("write outcome unknown; looking again later",
                       extra={"order": record.order_id, "write": name, "error": str(exc), "wait": decision.wait})
        return OutcomePending(
            "sevdesk", f"{what}: the answer was lost ({exc.detail}); it may still be saved, so sevDesk is searched "
            f"again in {decision.wait:.0f} s before anything is written again", retry_after=decision.wait,
        )

    def _may_write(self, record: OrderRecord, owner: str, name: str, what: str) -> None:
        """A search for an earlier write's result found nothing: return if writing is safe, else wait (raise)."""
        decision = after_search_found_nothing(
            LostWrite.from_item(record.steps.unknown.get(name)), self.store.epoch(), self._timing
        )
        if decision.write:
            if name in record.steps.unknown:
                del record.steps.unknown[name]
                self._save(record, owner)
                logger.warning("no trace of a lost write after searching; writing again",
                               extra={"order": record.order_id, "write": name})
            return
        assert decision.lost is not None
        record.steps.unknown[name] = decision.lost.as_item()
        self._save(record, owner)
        raise OutcomePending(
            "sevdesk", f"{what}: an earlier answer was lost and sevDesk shows no result yet (search "
            f"{decision.lost.searches}); searching again in {decision.wait:.0f} s", retry_after=decision.wait,
        )

    def _voucher(self, clients: ConnectionClients, plan: VoucherPlan, record: OrderRecord, owner: str) -> VoucherPlan:
        """Create the voucher unless one with this invoice number exists: ``description`` is the duplicate key.
        Returns the plan as written (its delivery date may have become the voucher date)."""
        what = f"saveVoucher for {plan.invoice_number}"
        existing = clients.sevdesk.find_revenue_vouchers(plan.invoice_number)
        if len(existing) > 1:
            raise BookkeepingProblem(
                f"sevDesk already holds {len(existing)} revenue vouchers numbered {plan.invoice_number} "
                f"(ids {', '.join(v.id for v in existing)}); remove the duplicates, then retry"
            )
        if existing:
            logger.info("adopting existing voucher", extra={"order": plan.order_id, "voucher": existing[0].id})
            record.steps.unknown.pop("voucher", None)
            record.steps.voucher_id = existing[0].id
            self._save(record, owner)
            return plan
        self._may_write(record, owner, "voucher", what)
        try:
            try:
                voucher = clients.sevdesk.save_voucher(
                    plan, filename=record.steps.file_name, contact_id=record.steps.contact_id
                )
            except RejectedError as exc:
                if not _refuses_late_delivery(exc, plan):
                    raise
                # sevDesk forbids a delivery date after the invoice date on invoices; whether it does on vouchers
                # is unconfirmed. A 422 wrote nothing, so the voucher is saved again with the voucher date.
                logger.warning("sevDesk refused a delivery date after the voucher date; using the voucher date",
                               extra={"order": plan.order_id, "error": exc.detail})
                clients.delivery_after_voucher_date_refused = True
                record.steps.delivery_date_is_voucher_date = True
                self._save(record, owner)
                plan = _delivery_on_voucher_date(plan)
                voucher = clients.sevdesk.save_voucher(
                    plan, filename=record.steps.file_name, contact_id=record.steps.contact_id
                )
        except UnknownOutcome as exc:
            raise self._lost_write(record, owner, "voucher", exc, what) from exc
        record.steps.voucher_id = voucher.id
        self._save(record, owner)
        return plan

    def _book(
        self, clients: ConnectionClients, plan: VoucherPlan, payment: PlannedPayment, record: OrderRecord, owner: str
    ) -> None:
        steps = record.steps
        voucher_id = steps.voucher_id
        assert voucher_id is not None
        name = f"booking:{payment.key}"
        what = f"bookAmount {payment.key} for {plan.invoice_number}"
        if payment.key in steps.booking_attempted:
            if self._booking_landed(clients, voucher_id, payment, record):
                steps.unknown.pop(name, None)
                self._record_booking(record, payment, owner, reconciled=True)
                return
            self._may_write(record, owner, name, what)
        else:
            steps.booking_attempted.append(payment.key)
            self._save(record, owner)
        try:
            clients.sevdesk.book_amount(voucher_id, payment)
        except UnknownOutcome as exc:
            raise self._lost_write(record, owner, name, exc, what) from exc
        except RejectedError as exc:
            if str(exc.code) == "751":  # "voucher already paid": an earlier booking landed
                self._record_booking(record, payment, owner, reconciled=True)
                return
            raise
        self._record_booking(record, payment, owner, reconciled=False)

    @staticmethod
    def _booking_landed(
        clients: ConnectionClients, voucher_id: str, payment: PlannedPayment, record: OrderRecord
    ) -> bool:
        """sevDesk exposes no payment -> voucher link (sevdesk-pitfalls #25); the voucher's paid amount tells whether
        the booking in question went through."""
        voucher = clients.sevdesk.get_voucher(voucher_id)
        paid = Decimal(voucher.paid_amount or "0")
        already = sum((Decimal(str(b["amount"])) for b in record.steps.bookings.values()), Decimal(0))
        # Magnitudes: a credit note's refunds are negative, and so is what sevDesk shows as paid on it.
        return voucher.status == "1000" or abs(paid) >= abs(already + payment.amount) - Decimal("0.005")

    def _original(
        self,
        clients: ConnectionClients,
        settings: ConnectionSettings,
        order: Order,
        record: OrderRecord,
    ) -> Original | None:
        """The invoice a credit note reverses. Looked up in Billbee until the voucher is written (an unreachable
        Billbee fails the attempt like any step, so a Storno order is never booked unlinked on a transient error),
        then kept in the record and completed from the original's record. While the original's own export is under
        way the credit note waits for it (without using up an attempt): booked after it, and naming its voucher."""
        stored = record.credit_note_of
        if stored is None:
            if record.steps.voucher_id is not None:
                return None
            found, how = original_order(clients.billbee, order)
            logger.info("credit note's original", extra={"order": order.bill_bee_order_id, "found": how})
            if found is None:
                return None
            self.store.link_credit_note(settings.connection_id, found.bill_bee_order_id, order.bill_bee_order_id)
            stored = original_link(found, None)
        known = self.store.get_order(settings.connection_id, int(stored["orderId"]))
        if known is not None:
            if record.steps.voucher_id is None and known.steps.voucher_id is None and known.state in ORIGINAL_BUSY:
                raise Waiting("store", f"the credit note waits for the export of the invoice it reverses "
                              f"({known.invoice_number or known.order_id}, {known.state.value})", retry_after=30)
            stored = {**stored, "invoiceNumber": stored.get("invoiceNumber") or known.invoice_number,
                      "voucherId": stored.get("voucherId") or known.steps.voucher_id}
        record.credit_note_of = stored
        return Original(int(stored["orderId"]), stored.get("invoiceNumber"), stored.get("voucherId"))

    def _record_booking(self, record: OrderRecord, payment: PlannedPayment, owner: str, *, reconciled: bool) -> None:
        record.steps.bookings[payment.key] = {
            "amount": str(payment.amount),
            "checkAccountId": payment.check_account_id,
            "date": payment.date.isoformat(),
            "type": payment.booking_type,
            "reconciled": reconciled,
        }
        self._save(record, owner)

    def _contact(self, settings: ConnectionSettings, clients: ConnectionClients, plan: VoucherPlan, owner: str) -> str:
        contact = plan.contact
        assert contact is not None
        connection_id = settings.connection_id
        mapping = self.store.get_contact(connection_id, contact.customer_id) or {}
        if mapping.get("contactId"):
            contact_id = str(mapping["contactId"])
            if mapping.get("detailsPending"):
                self._contact_details(clients, connection_id, contact.customer_id, contact_id, plan)
            return contact_id
        lease = self.runtime.config.lease_seconds
        if not self.store.claim_contact(connection_id, contact.customer_id, owner, lease_seconds=lease):
            raise Waiting(
                "store",
                f"the contact of customer {contact.customer_id} is being created by another export",
                retry_after=lease / 2,
            )
        what = f"the contact of customer {contact.customer_number}"
        # Read again under the lease: another export may have lost a create's answer since.
        lost = _lost_contact(self.store.get_contact(connection_id, contact.customer_id) or {})
        found = clients.sevdesk.find_contact(contact.customer_number)
        if found is not None:
            # Found: created earlier by us (an answer lost) still needs its details; anyone else's is left as it is.
            self.store.save_contact(connection_id, contact.customer_id, found, details_pending=lost is not None)
            if lost is not None:
                self._contact_details(clients, connection_id, contact.customer_id, found, plan)
            return found
        decision = after_search_found_nothing(lost, self.store.epoch(), self._timing)
        if not decision.write:
            assert decision.lost is not None
            self.store.mark_contact_unknown(connection_id, contact.customer_id, decision.lost.since,
                                            decision.lost.searches)
            raise OutcomePending(
                "sevdesk", f"{what}: an earlier answer was lost and sevDesk shows no such contact yet; searching "
                f"again in {decision.wait:.0f} s", retry_after=decision.wait,
            )
        try:
            contact_id = clients.sevdesk.create_contact(contact)
        except UnknownOutcome as exc:
            after = after_lost_answer(self.store.epoch(), self._timing)
            assert after.lost is not None
            self.store.mark_contact_unknown(connection_id, contact.customer_id, after.lost.since, 0)
            logger.warning("contact create outcome unknown; looking again later",
                           extra={"customer": contact.customer_id, "error": str(exc), "wait": after.wait})
            raise OutcomePending(
                "sevdesk", f"{what}: the answer was lost ({exc.detail}); it may still be saved, so sevDesk is "
                f"searched again in {after.wait:.0f} s before it is created again", retry_after=after.wait,
            ) from exc
        self.store.save_contact(connection_id, contact.customer_id, contact_id, details_pending=True)
        self._contact_details(clients, connection_id, contact.customer_id, contact_id, plan)
        return contact_id

    def _contact_details(
        self, clients: ConnectionClients, connection_id: str, customer_id: int, contact_id: str, plan: VoucherPlan
    ) -> None:
        """Address and e-mail of a contact this connector created. Details: a failure here is logged and never
        blocks the voucher or duplicates the contact."""
        contact = plan.contact
        assert contact is not None
        try:
            clients.sevdesk.add_contact_address(contact_id, contact)
            if contact.email:
                clients.sevdesk.add_contact_email(contact_id, contact.email)
        except ApiError as exc:
            logger.warning("contact details not saved", extra={"contact": contact_id, "error": str(exc)})
        self.store.save_contact(connection_id, customer_id, contact_id, details_pending=False)




def _bookable_without_positions(order: Order, settings: ConnectionSettings) -> bool:
    try:
        plan_voucher(order, None, settings)
    except BookkeepingProblem:
        return False
    return True


def _lost_contact(mapping: dict[str, Any]) -> LostWrite | None:
    if mapping.get("unknownSince") is None:
        return None
    return LostWrite(float(mapping["unknownSince"]), int(mapping.get("unknownSearches") or 0))


def _refuses_late_delivery(exc: RejectedError, plan: VoucherPlan) -> bool:
    return exc.status == 422 and "deliverydate" in exc.detail.lower() and plan.delivery_date > plan.voucher_date


def _delivery_on_voucher_date(plan: VoucherPlan) -> VoucherPlan:
    if plan.delivery_date <= plan.voucher_date:
        return plan
    note = (
        f"sevDesk refused a delivery date ({german_date(plan.delivery_date)}) after the voucher date; the voucher "
        f"date {german_date(plan.voucher_date)} was saved as delivery date"
    )
    return dataclasses.replace(plan, delivery_date=plan.voucher_date, notes=(*plan.notes, note))


def pdf_file_name(invoice_number: str) -> str:
    """The name the invoice PDF is uploaded under (the preflight shows the same)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in invoice_number) or "invoice"
    return f"{safe}.pdf"
