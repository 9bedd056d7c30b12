"""Exporting one order: exactly once, resumable (architecture.md §4).

The steps, each recorded in the order's record before the next starts, so a retry resumes where the last attempt
stopped:

1. claim the record (conditional write with a lease; a second worker backs off)
2. contact: the mapped one, or found by customer number, or created (if the connection creates contacts)
   (before the first write the order is read again: its state at the time of the transfer counts)
3. invoice PDF from Billbee -> ``uploadTempFile``
4. ``saveVoucher`` - after looking for a voucher with this invoice number first, so an earlier attempt whose answer
   was lost is adopted instead of duplicated
5. ``bookAmount`` per payment (reconciliation in Billbee) - a lost answer is settled by reading the voucher back
6. tag the order in Billbee (``POST``, never ``PUT``)
7. ``EXPORTED``
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from connector.billbee.models import InvoiceDetails, Order
from connector.bookkeeping.voucher import (
    BookkeepingProblem,
    PlannedPayment,
    VoucherPlan,
    book_amount_body,
    check_against_guidance,
    plan_voucher,
    save_voucher_body,
)
from connector.errors import ApiError, AuthError, NotFoundError, RejectedError, TransientError, UnknownOutcome
from connector.observability import logger
from connector.pipeline.filters import filter_mismatch
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.secrets import CredentialsUnavailable
from connector.settings.model import ConnectionSettings
from connector.store.dynamo import ConflictError, StoredConnection
from connector.store.records import CLAIMABLE, ExportState, OrderRecord

SUPPORTED_BOOKKEEPING_VERSION = "2.0"
TEMP_FILE_MAX_AGE = timedelta(hours=1)  # re-upload a PDF whose temp file may have expired before the voucher
IN_CALL_WRITE_ATTEMPTS = 3


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


class ConnectionBroken(Exception):
    """The connection cannot work until its user acts (bad token, bookkeeping 1.0): stop, no retry storm."""


def check_sevdesk_account(clients: ConnectionClients) -> None:
    """Only sevDesk bookkeeping 2.0 is written to (bookkeeping.md); checked before the first write."""
    if clients.checked_version is None:
        clients.checked_version = clients.sevdesk.bookkeeping_version()
    if clients.checked_version != SUPPORTED_BOOKKEEPING_VERSION:
        raise ConnectionBroken(
            f"the sevDesk account uses bookkeeping version {clients.checked_version}; the connector writes only to "
            "version 2.0 (taxRule/accountDatev). Switch the account to sevdesk-Update 2.0"
        )


def auth_failure_reason(exc: AuthError) -> str:
    if exc.api == "sevdesk":
        return "sevDesk rejected the API token (wrong or revoked); enter a valid admin token for this connection"
    return "Billbee rejected the API key, user name or API password (or the API is not activated for the account)"


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
        except (ConnectionBroken, CredentialsUnavailable, AuthError) as exc:
            reason = auth_failure_reason(exc) if isinstance(exc, AuthError) else str(exc)
            self.store.set_connection_status(settings.connection_id, "ERROR", reason)
            self.runtime.forget_clients(settings.connection_id)
            self.runtime.secrets.forget(stored.secret_id)  # a token replaced right now must be read, not the cache
            logger.error("connection broken", extra={"connection": settings.connection_id, "reason": reason})
            self._finish(record, owner, ExportState.FAILED, error=reason)
            return Outcome.CONNECTION_ERROR
        except RejectedError as exc:
            return self._finish(
                record, owner, ExportState.NEEDS_ATTENTION, reason=f"rejected by {exc.api}: {exc.detail}"
            )
        except ConflictError:
            # Someone else changed the record (our lease expired and another worker took over): let them finish.
            logger.warning("lost the lease", extra={"order": record.order_id})
            return Outcome.RETRY_LATER
        except (TransientError, NotFoundError) as exc:
            if isinstance(exc, TransientError) and exc.retry_after:
                self.retry_after = exc.retry_after
            return self._fail(record, owner, str(exc))
        except Exception as exc:  # a bug must not lose the order: it stays FAILED with the error and is retried
            logger.exception("unexpected error during export", extra={"order": record.order_id})
            return self._fail(record, owner, f"internal error: {type(exc).__name__}: {exc}")

    def _fail(self, record: OrderRecord, owner: str, error: str) -> Outcome:
        state = ExportState.FAILED
        reason = None
        if record.attempts >= self.runtime.config.max_attempts:
            state = ExportState.NEEDS_ATTENTION
            reason = f"gave up after {record.attempts} attempts; last error: {error}"
        self._finish(record, owner, state, error=error, reason=reason)
        return Outcome.RETRY_LATER if state is ExportState.FAILED else Outcome.NEEDS_ATTENTION

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
                mismatch = filter_mismatch(fresh, settings)
                if mismatch is not None:
                    return self._finish(record, owner, ExportState.SKIPPED, reason=mismatch)
            record.order = fresh.model_dump(mode="json", by_alias=True)
        order = Order.model_validate(record.order)
        if not order.has_invoice:
            # Never invoiced by us: Billbee's CreateInvoice would allocate a number (billbee-pitfalls #16).
            return self._finish(record, owner, ExportState.SKIPPED, reason="the order has no invoice yet")
        invoice = InvoiceDetails.model_validate(record.invoice) if record.invoice else None
        plan = plan_voucher(order, invoice, settings)
        check_against_guidance(plan, self.runtime.revenue_guidance(clients))
        steps = record.steps
        record.invoice_number = plan.invoice_number

        if plan.contact is not None and steps.contact_id is None:
            steps.contact_id = self._contact(settings, clients, plan, owner)
            self._save(record, owner)

        if steps.voucher_id is None and (steps.file_name is None or self._temp_file_stale(steps.file_uploaded_at)):
            _, pdf = clients.billbee.invoice_pdf(order)
            steps.file_name = clients.sevdesk.upload_temp_file(f"{_safe_name(plan.invoice_number)}.pdf", pdf)
            steps.file_uploaded_at = datetime.now(UTC).isoformat()
            self._save(record, owner)

        if steps.voucher_id is None:
            steps.voucher_id = self._voucher(clients, plan, record, owner)
            self._save(record, owner)

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

    @staticmethod
    def _temp_file_stale(uploaded_at: str | None) -> bool:
        if not uploaded_at:
            return True
        return datetime.now(UTC) - datetime.fromisoformat(uploaded_at) > TEMP_FILE_MAX_AGE

    def _voucher(self, clients: ConnectionClients, plan: VoucherPlan, record: OrderRecord, owner: str) -> str:
        """Create the voucher unless one with this invoice number exists: ``description`` is the duplicate key."""
        body = save_voucher_body(plan, filename=record.steps.file_name, contact_id=record.steps.contact_id)
        for _ in range(IN_CALL_WRITE_ATTEMPTS):
            existing = clients.sevdesk.find_revenue_vouchers(plan.invoice_number)
            if len(existing) > 1:
                raise BookkeepingProblem(
                    f"sevDesk already holds {len(existing)} revenue vouchers numbered {plan.invoice_number} "
                    f"(ids {', '.join(v.id for v in existing)}); remove the duplicates, then retry"
                )
            if existing:
                logger.info("adopting existing voucher", extra={"order": plan.order_id, "voucher": existing[0].id})
                return existing[0].id
            try:
                return clients.sevdesk.save_voucher(body).id
            except UnknownOutcome as exc:
                logger.warning("saveVoucher outcome unknown; looking it up", extra={"order": plan.order_id,
                                                                                    "error": str(exc)})
        raise TransientError("sevdesk", f"saveVoucher for {plan.invoice_number}: outcome still unknown")

    def _book(
        self, clients: ConnectionClients, plan: VoucherPlan, payment: PlannedPayment, record: OrderRecord, owner: str
    ) -> None:
        steps = record.steps
        voucher_id = steps.voucher_id
        assert voucher_id is not None
        for _ in range(IN_CALL_WRITE_ATTEMPTS):
            if payment.key in steps.booking_attempted and self._booking_landed(clients, voucher_id, payment, record):
                self._record_booking(record, payment, owner, reconciled=True)
                return
            if payment.key not in steps.booking_attempted:
                steps.booking_attempted.append(payment.key)
                self._save(record, owner)
            try:
                clients.sevdesk.book_amount(voucher_id, book_amount_body(payment))
            except UnknownOutcome as exc:
                logger.warning("bookAmount outcome unknown; reading the voucher back",
                               extra={"order": plan.order_id, "error": str(exc)})
                continue
            except RejectedError as exc:
                if str(exc.code) == "751":  # "voucher already paid": an earlier booking landed
                    self._record_booking(record, payment, owner, reconciled=True)
                    return
                raise
            self._record_booking(record, payment, owner, reconciled=False)
            return
        raise TransientError("sevdesk", f"bookAmount for {plan.invoice_number}: outcome still unknown")

    @staticmethod
    def _booking_landed(
        clients: ConnectionClients, voucher_id: str, payment: PlannedPayment, record: OrderRecord
    ) -> bool:
        """sevDesk exposes no payment -> voucher link (sevdesk-pitfalls #25); the voucher's paid amount tells whether
        the booking in question went through."""
        voucher = clients.sevdesk.get_voucher(voucher_id)
        paid = Decimal(voucher.paid_amount or "0")
        already = sum((Decimal(str(b["amount"])) for b in record.steps.bookings.values()), Decimal(0))
        return voucher.status == "1000" or paid >= already + payment.amount - Decimal("0.005")

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
        mapping = self.store.get_contact(connection_id, contact.customer_id)
        if mapping and mapping.get("contactId"):
            return str(mapping["contactId"])
        lease = self.runtime.config.lease_seconds
        if not self.store.claim_contact(connection_id, contact.customer_id, owner, lease_seconds=lease):
            raise TransientError(
                "store",
                f"the contact of customer {contact.customer_id} is being created by another export",
                retry_after=lease / 2,
            )
        contact_id: str | None = None
        created_here = False  # our create was sent in this call (its answer may have been lost)
        for _ in range(IN_CALL_WRITE_ATTEMPTS):
            contact_id = clients.sevdesk.find_contact(contact.customer_number)
            if contact_id is not None:
                break
            try:
                created_here = True
                contact_id = clients.sevdesk.create_contact(contact)
            except UnknownOutcome:
                continue
            break
        if contact_id is not None and created_here:
            # Address and e-mail are details: a failure here must not block the voucher or duplicate the contact.
            try:
                clients.sevdesk.add_contact_address(contact_id, contact)
                if contact.email:
                    clients.sevdesk.add_contact_email(contact_id, contact.email)
            except ApiError as exc:
                logger.warning("contact details not saved", extra={"contact": contact_id, "error": str(exc)})
        if contact_id is None:
            raise TransientError("sevdesk", f"contact for customer {contact.customer_number}: outcome still unknown")
        self.store.save_contact(connection_id, contact.customer_id, contact_id)
        return contact_id


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "invoice"
