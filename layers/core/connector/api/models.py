"""The HTTP API's request bodies and answers (pydantic): the wire format and the OpenAPI document's schemas."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from connector.billbee.models import Order
from connector.pipeline.explain import Verdict
from connector.pipeline.manual import MAX_ORDERS_PER_REQUEST, ManualOutcome
from connector.pipeline.setup import SetupReport
from connector.settings.model import CONNECTION_ID_PATTERN, KNOWN_PAYMENT_METHODS, ConnectionSettings, Credentials
from connector.store.records import ExportState, OrderRecord

MASK = "********"
MAX_ORDER_ID = 2**63 - 1  # Billbee ids are int64; larger numbers cannot be an order (and DynamoDB holds 38 digits)


# -- request bodies --------------------------------------------------------------------------------------------------
class _Request(BaseModel):
    """Wire names only (camelCase), no unknown fields, no silent coercion of "1" into 1."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)


OrderId = Annotated[int, Field(gt=0, le=MAX_ORDER_ID)]


class ExportBody(_Request):
    """The orders to export now, whatever the connection's start date, shops and states say."""

    order_ids: list[OrderId] = Field(
        min_length=1,
        max_length=MAX_ORDERS_PER_REQUEST,
        description=f"Billbee order ids (BillBeeOrderId), at most {MAX_ORDERS_PER_REQUEST}; duplicates count once",
    )
    set_tag: bool = Field(True, description="tag the exported orders in Billbee with the connection's export tag")
    only_untagged: bool = Field(False, description="skip orders that already carry the export tag")


def _known_payment_method(value: int) -> int:
    if value not in KNOWN_PAYMENT_METHODS:
        raise ValueError(f"unknown Billbee payment method id {value}")
    return value


class PaymentAccountBody(_Request):
    """An offline (clearing) account in sevDesk for one Billbee payment method, e.g. "PayPal BB"."""

    payment_method: Annotated[int, AfterValidator(_known_payment_method)] = Field(
        description="Billbee payment type id (GET .../setup-options lists them)"
    )
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="the account's name in sevDesk; an offline account of this name is reused instead of duplicated"
    )
    accounting_number: Annotated[int, Field(gt=0, le=99_999_999)] | None = Field(
        None, description="booking account number; sevDesk picks the next free one when omitted"
    )


class SetupOptionsBody(_Request):
    """Credentials to ask Billbee and sevDesk with, for a connection not stored yet (or to try new credentials)."""

    credentials: Credentials = Field(description="the four credentials; used for this request only, never stored")


class HandledBody(_Request):
    """Who booked the order by hand, and a note for the books (e.g. the voucher number in sevDesk)."""

    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="who booked it (a name or e-mail)"
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] = Field(
        description="why, or where it is booked"
    )


class ConnectionBody(ConnectionSettings):
    """The connection settings (README: "Connection settings"); ``connectionId`` defaults to the path's id.
    ``credentials`` are required when the connection is created and optional afterwards (the stored ones are kept)."""

    # Optional here only (the path names the connection): a deliberate narrowing of the base model's field.
    connection_id: Annotated[str | None, Field(pattern=CONNECTION_ID_PATTERN)] = None  # type: ignore[assignment]

    def settings_for(self, connection_id: str) -> ConnectionSettings:
        values = {name: getattr(self, name) for name in ConnectionSettings.model_fields}
        values["connection_id"] = connection_id
        return ConnectionSettings(**values)


# -- answers -----------------------------------------------------------------------------------------------------
class _Answer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Problem(_Answer):
    field: str = Field(description="where in the request, e.g. body.general.startDate or path.orderId")
    problem: str


class SetupCheckResult(_Answer):
    check: str
    ok: bool
    detail: str


class SetupResult(_Answer):
    ok: bool
    checks: list[SetupCheckResult]

    @classmethod
    def of(cls, report: SetupReport) -> SetupResult:
        return cls.model_validate(report.as_dict())


class ErrorBody(_Answer):
    error: str = Field(description="what is wrong, in one sentence")
    problems: list[Problem] | None = Field(None, description="each invalid field of the request")
    setup: SetupResult | None = Field(None, description="the setup checks, when they refused a connection")


class PublicSettings(ConnectionSettings):
    """The stored settings: everything but the credentials, which are never returned."""

    credentials: None = Field(default=None, exclude=True)


class MaskedCredentials(_Answer):
    billbee_api_key: str = MASK
    billbee_username: str = MASK
    billbee_api_password: str = MASK
    sevdesk_api_token: str = MASK


class ConnectionStatusView(_Answer):
    state: str = Field(description="OK, or ERROR when the connection cannot work until its user acts")
    reason: str | None = None
    since: str | None = None


class LastPoll(_Answer):
    polled_at: str
    summary: dict[str, Any]


class ExportProgress(_Answer):
    """Where the exports stand and, during a backfill, when they will be done (pipeline/progress.py)."""

    listing_complete: bool = Field(description="false while a listing of the orders continues over several polls")
    orders_listed: int | None = Field(description="orders the unfinished listing has listed so far")
    orders_left_to_list: int | None = Field(description="at most this many more (Billbee's pages left x page size)")
    queued: int = Field(description="PENDING and EXPORTING")
    exported: int
    waiting: int = Field(description="SKIPPED (no invoice yet, no longer wanted) and NEEDS_ATTENTION")
    failed: int = Field(description="FAILED: retried by the queue and the next poll")
    exports_per_hour: float | None = Field(description="measured over the last hour; null: fewer than two exports")
    estimated_seconds_left: int | None = Field(description="queued, failed and left to list at the measured rate")
    done: bool = Field(description="listing complete and nothing queued or failed")
    text: str = Field(description="the same in one sentence")


class ConnectionView(_Answer):
    connection: PublicSettings
    credentials: MaskedCredentials = Field(description="stored in Secrets Manager; never returned")
    status: ConnectionStatusView
    last_poll: LastPoll | None = Field(description="the last hourly poll, a failed one included (status, error)")
    counts: dict[str, int] = Field(description="export records per state; NEEDS_ATTENTION ones need a person")
    progress: ExportProgress


class ConnectionSummary(_Answer):
    connection_id: str
    name: str
    enabled: bool
    status: ConnectionStatusView


class ConnectionList(_Answer):
    connections: list[ConnectionSummary]


class SavedConnection(_Answer):
    created: bool = Field(description="true when this PUT created the connection")
    connection: PublicSettings
    setup: SetupResult


class DeletedConnection(_Answer):
    deleted: str
    detail: str


class OrderStatus(_Answer):
    """An order's export record: state, steps done, voucher id, last error, reason."""

    connection_id: str
    order_id: int
    state: ExportState
    invoice_number: str | None
    voucher_id: str | None
    contact_id: str | None
    file_name: str | None = Field(description="the invoice PDF's temp file in sevDesk, once uploaded")
    bookings: dict[str, dict[str, Any]] = Field(description="payments booked on the voucher, by payment key")
    tagged: bool
    set_tag: bool = Field(description="whether the export tags the order in Billbee")
    attempts: int
    last_error: str | None
    reason: str | None = Field(description="why the order is SKIPPED or NEEDS_ATTENTION")
    notes: list[str]
    origin: str = Field(description="poll, manual or retry")
    handled: dict[str, str] | None = Field(None, description="who marked it as booked by hand, when and why")
    credit_note_of: dict[str, Any] | None = Field(
        None, description="for a Storno order: the invoice it reverses ({orderId, invoiceNumber, voucherId})"
    )
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, record: OrderRecord) -> OrderStatus:
        return cls.model_validate({**record.public_dict(), "setTag": record.set_tag})


class OrderPage(_Answer):
    orders: list[OrderStatus]
    next: str | None = Field(description="pass as ?next= for the following page; null on the last page")


class DeadLetterView(_Answer):
    message_id: str
    order_id: int | None = Field(description="null when the message was malformed")
    connection_id: str | None = Field(description="null when the message was malformed (shown to every connection)")
    body: str


class DeadLetterList(_Answer):
    connection_id: str
    approximate_count: int = Field(description="messages in the dead-letter queue, all connections")
    messages: list[DeadLetterView] = Field(description="this connection's and malformed ones, among those seen")


class RetryAnswer(_Answer):
    order_id: int
    outcome: str = Field(description="queued")


class OrderOutcomeView(_Answer):
    order_id: int
    outcome: ManualOutcome
    detail: str | None
    voucher_id: str | None


class ExportAnswer(_Answer):
    connection_id: str
    orders: list[OrderOutcomeView] = Field(description="one entry per distinct order id, in the request's order")
    counts: dict[str, int] = Field(description="how many orders got each outcome")
    resend: list[int] = Field(description="ids not checked within this request's time budget: send them again")


class BillbeeOrderSummary(_Answer):
    """Who and what the order is, as Billbee has it now (shown next to the explanation)."""

    order_number: str | None = Field(description="the shop's order number")
    customer_name: str | None
    company: str | None
    shop_name: str | None
    state: int | None = Field(description="Billbee's order state id")
    state_name: str | None = Field(None, description="the state's name in Billbee, when Billbee named it")
    invoice_number: str | None = Field(description="as printed (prefix + number + postfix); null without invoice")
    created_at: str | None
    tags: list[str]

    @classmethod
    def of(cls, order: Order, state_names: dict[int, str | None] | None = None) -> BillbeeOrderSummary:
        address = order.invoice_address
        customer = (order.customer.name if order.customer else None) or (address.person_name if address else None)
        return cls(
            order_number=order.order_number, customer_name=customer or None,
            company=address.company if address else None,
            shop_name=order.seller.billbee_shop_name if order.seller else None, state=order.state,
            state_name=(state_names or {}).get(order.state) if order.state is not None else None,
            invoice_number=order.printed_invoice_number if order.has_invoice else None,
            created_at=order.created_at.isoformat() if order.created_at else None, tags=list(order.tags or []),
        )


class OrderExplanation(_Answer):
    """ "Why was this order not exported?" in plain words, for any order id."""

    connection_id: str
    order_id: int
    verdict: Verdict = Field(description="exported (or booked by hand), inProgress, or notExported")
    reason: str = Field(description="why, in one sentence")
    what_to_do: str | None = Field(description="what a person can do about it; null when nothing is needed")
    record: OrderStatus | None = Field(description="the export record; null when the connector has none")
    order: BillbeeOrderSummary | None = Field(description="the order as Billbee has it; null when unavailable")
    billbee_error: str | None = Field(None, description="why Billbee's side is missing, when it could not be read")


class Named(_Answer):
    id: int
    name: str | None


class SevdeskAccount(_Answer):
    id: int
    name: str
    type: str = Field(description="offline or register: accounts the connector can book payments on")


class AllowedTaxRule(_Answer):
    tax_rule: int
    name: str | None
    tax_rates: list[str] = Field(description="percent values allowed with this rule, as in revenueAccounts.taxRate")


class RevenueAccountOption(_Answer):
    account_datev_id: int
    account_number: str | None
    account_name: str | None
    allowed_tax_rules: list[AllowedTaxRule]


class BillbeeOptions(_Answer):
    shops: list[Named]
    order_states: list[Named]
    payment_types: list[Named]


class SevdeskOptions(_Answer):
    payment_accounts: list[SevdeskAccount]
    revenue_accounts: list[RevenueAccountOption]


class SetupOptions(_Answer):
    billbee: BillbeeOptions
    sevdesk: SevdeskOptions


class CreatedPaymentAccount(_Answer):
    payment_method: int
    check_account: SevdeskAccount
    created: bool = Field(description="false when an offline account of that name existed and was mapped instead")
    connection: PublicSettings




# -- the reconciliation report (routes/reconciliation.py; docs/reconciliation.md) ------------------------------------
class AmountsView(_Answer):
    gross: str = Field(description="in EUR, two decimals, as text (never a float)")
    net: str
    vat: str


class RateAmountsView(AmountsView):
    rate: str = Field(description="VAT rate in percent, e.g. 19, 7, 0")


class ReconciledDocument(_Answer):
    """A Billbee invoice or credit note, its amounts recomputed from its positions and fees."""

    kind: str = Field(description="invoice or creditNote")
    order_id: int | None
    invoice_date: str | None
    vat_mode: int | None
    tax_rule: int | None = Field(description="the sevDesk tax rule its VatMode maps to; null: none fits (VatMode 4, 5)")
    in_period: bool = Field(description="false for the invoice of a voucher of the period that is dated elsewhere")
    total: AmountsView
    rates: list[RateAmountsView]
    notes: list[str]


class ReconciledVoucher(_Answer):
    """A sevDesk revenue voucher, its amounts per rate from its positions."""

    voucher_id: str
    voucher_date: str | None
    tax_rule: int | None
    status: str | None = Field(description="50 draft, 100 open, 750 partially paid, 1000 paid")
    paid_amount: str
    in_period: bool = Field(description="false for a voucher of a document of the period dated in another period")
    total: AmountsView
    rates: list[RateAmountsView]


class ReconciledExport(_Answer):
    order_id: int
    state: ExportState
    reason: str | None
    voucher_id: str | None


class ReconciliationLine(_Answer):
    category: str = Field(description="matched, open, different, missing or extra")
    invoice_number: str | None
    reasons: list[str]
    billbee: ReconciledDocument | None
    sevdesk: ReconciledVoucher | None
    export: ReconciledExport | None = Field(description="the connector's export record of the number, if any")


class ReconciliationTotal(_Answer):
    tax_rule: int | None
    tax_rule_name: str
    rate: str
    billbee: AmountsView
    sevdesk: AmountsView
    difference: AmountsView = Field(description="Billbee minus sevDesk")


class ReconciliationSum(_Answer):
    billbee: AmountsView
    sevdesk: AmountsView
    difference: AmountsView


class ReconciliationPeriod(_Answer):
    first: str = Field(alias="from")
    last: str = Field(alias="to")


class ReconciliationReport(_Answer):
    connection_id: str
    period: ReconciliationPeriod
    generated_at: str
    reconciles: bool = Field(description="no line missing, extra or different, and every difference 0.00")
    payment_reconciliation: str = Field(description="billbee or sevdesk: where payments are reconciled")
    counts: dict[str, int] = Field(description="lines per category")
    totals: list[ReconciliationTotal] = Field(description="per tax rule and rate; each side counts what it dates in "
                                                          "the period")
    total: ReconciliationSum
    lines: list[ReconciliationLine] = Field(description="missing first, then different, extra, open, matched")
    notes: list[str]


class ReconciliationRunning(_Answer):
    """A period too large for one request: what was read so far. Send the same request again after retryAfter."""

    connection_id: str
    period: ReconciliationPeriod
    status: str = Field(description="running, or busy while another request works on the same period")
    retry_after: int = Field(description="seconds; also in the Retry-After header")
    progress: dict[str, Any] | None
    detail: str | None = None


ConnectionIdPath = Annotated[
    str,
    Path(alias="connectionId", pattern=CONNECTION_ID_PATTERN,
         description="lower-case letters, digits and '-', e.g. demo-shop"),
]
OrderIdPath = Annotated[
    int, Path(alias="orderId", gt=0, le=MAX_ORDER_ID, description="the Billbee order id (BillBeeOrderId)")
]
