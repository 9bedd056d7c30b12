"""The HTTP API (API Gateway HTTP API -> ApiFunction): connection setup, manual export, status.

Routes (the OpenAPI document generated from them is served at ``GET /openapi.json``):

    GET    /connections                                   the connections and their status
    PUT    /connections/{connectionId}                    create or change (runs the setup checks first)
    GET    /connections/{connectionId}                    settings (credentials masked), status, last poll
    DELETE /connections/{connectionId}                    remove settings and credentials (order records stay)
    GET    /connections/{connectionId}/setup-options      Billbee shops, order states, payment types; sevDesk
                                                          offline accounts and revenue accounts
    POST   /connections/{connectionId}/payment-accounts   create an offline (clearing) account for a payment method
                                                          and map the method to it
    POST   /connections/{connectionId}/exports            manual export of chosen orders
    GET    /connections/{connectionId}/orders?state=      export records in one state, paged (GSI, no scan)
    GET    /connections/{connectionId}/orders/{orderId}   one export record
    POST   /connections/{connectionId}/orders/{orderId}/retry   re-queue a FAILED or NEEDS_ATTENTION order

Every route, ``/openapi.json`` included, needs ``Authorization: Bearer <token>`` with the token kept in Secrets
Manager (``API_TOKEN_SECRET_ID``); anything else gets 401 and no data. The document describes the API's shape only,
but a self-hosted bookkeeping API has no reason to show even that to strangers, and every client that reads it
(curl, schemathesis, an OpenAPI viewer) can send the header.

Bad input gets a 4xx JSON error ``{"error": ..., "problems": [{"field", "problem"}]}`` naming the problem; an
unexpected failure gets a 500 with a generic message and the details only in the function's log. Request bodies are
JSON whatever their ``Content-Type`` says (curl's ``-d`` sends ``application/x-www-form-urlencoded``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from connector.bookkeeping.voucher import RATE_NAMES
from connector.errors import ApiError
from connector.money import rate_key
from connector.observability import logger, redact_secret
from connector.pipeline.deadletters import peek_dead_letters
from connector.pipeline.manual import (
    DEFAULT_TIME_BUDGET_SECONDS,
    MAX_ORDERS_PER_REQUEST,
    ManualOutcome,
    interactive_clients,
    request_manual_export,
)
from connector.pipeline.poll import Poller
from connector.pipeline.runtime import Runtime
from connector.pipeline.setup import SetupError, SetupReport, save_connection
from connector.secrets import CredentialsUnavailable
from connector.settings.model import (
    CONNECTION_ID_PATTERN,
    KNOWN_PAYMENT_METHODS,
    ConnectionSettings,
    PaymentAccount,
)
from connector.store.dynamo import ConflictError, StoredConnection, conn_pk
from connector.store.records import ExportState, OrderRecord

API_VERSION = "1.0.0"
MAX_BODY_BYTES = 256 * 1024  # a connection is ~2 KB and 500 order ids ~10 KB; anything near this is not ours
TOKEN_CACHE_SECONDS = 300
MASK = "********"
MAX_ORDER_ID = 2**63 - 1  # Billbee ids are int64; larger numbers cannot be an order (and DynamoDB holds 38 digits)
JSON = "application/json"
_RATE_PERCENT = {name: rate_key(rate) for rate, name in RATE_NAMES.items()}


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


class ConnectionView(_Answer):
    connection: PublicSettings
    credentials: MaskedCredentials = Field(description="stored in Secrets Manager; never returned")
    status: ConnectionStatusView
    last_poll: LastPoll | None


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


# -- errors ------------------------------------------------------------------------------------------------------
class ApiProblem(Exception):
    """Answer ``status`` with an error body; raised anywhere inside a route."""

    def __init__(self, status: int, message: str, *, problems: list[Problem] | None = None,
                 setup: SetupResult | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=message, problems=problems, setup=setup)


ERROR_TEXT = {
    400: "Malformed JSON, a wrong type, an unknown or missing field, or an invalid path or query parameter",
    401: "No or wrong bearer token; no data",
    404: "No such connection, order record or route",
    409: "The request conflicts with the current state (the message says what to do)",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    422: "The setup checks refused the connection; nothing was saved",
    502: "Billbee or sevDesk could not be asked, or refused the connection's credentials",
}


def _responses(success: dict[int, tuple[type[BaseModel], str]], *errors: int) -> dict[int, Any]:
    documented: dict[int, Any] = {
        code: {"description": text, "content": {JSON: {"model": model}}} for code, (model, text) in success.items()
    }
    for code in (400, 401, *errors):
        documented[code] = {"description": ERROR_TEXT[code], "content": {JSON: {"model": ErrorBody}}}
    return documented


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A finished API Gateway answer, for the checks that run before routing."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, "Cache-Control": "no-store", **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _problems(errors: list[dict[str, Any]]) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []
    headline = "invalid request"
    for err in errors:
        loc = [str(part) for part in err.get("loc") or ()]
        kind = err.get("type")
        if kind == "json_invalid":
            return "the body is not valid JSON", [Problem(field="body", problem=str(err.get("ctx", {}).get("error")))]
        if kind == "missing" and loc == ["body"]:
            return "a JSON body is required", [Problem(field="body", problem="missing")]
        message = str(err.get("msg") or "invalid")
        if loc == ["body", "orderIds"] and kind == "too_long":
            headline = f"at most {MAX_ORDERS_PER_REQUEST} order ids per request; split the request"
            message = headline
        problems.append(Problem(field=".".join(loc) or "request", problem=message))
    return headline, problems


def _decode_page_token(token: str, connection_id: str, state: ExportState) -> dict[str, Any]:
    """The paging token is DynamoDB's LastEvaluatedKey, base64url-encoded; it is checked before DynamoDB sees it,
    so a forged one cannot read another connection's records or make the query fail."""
    invalid = ApiProblem(400, "next is not a paging token of this list",
                         problems=[Problem(field="query.next", problem="not issued by this API for this list")])
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise invalid from exc
    if not isinstance(key, dict) or set(key) != {"PK", "SK", "GSI1PK", "GSI1SK"}:
        raise invalid
    if not all(isinstance(v, str) for v in key.values()):
        raise invalid
    if key["PK"] != conn_pk(connection_id) or key["GSI1PK"] != f"{conn_pk(connection_id)}#STATE#{state.value}":
        raise invalid
    return key


def _encode_page_token(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _clean_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Drop the validation answer powertools documents on every route (422 ``HTTPValidationError``): this API
    answers validation problems with 400 and ``ErrorBody`` instead."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            for code in list(responses):
                schema = ((responses[code].get("content") or {}).get(JSON) or {}).get("schema") or {}
                if schema.get("$ref", "").endswith("/HTTPValidationError"):
                    del responses[code]
    schemas = document.get("components", {}).get("schemas", {})
    text = json.dumps(document.get("paths", {})) + json.dumps({k: v for k, v in schemas.items()
                                                                if k not in ("HTTPValidationError", "ValidationError",
                                                                             "ResponseValidationError")})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"/{name}\"" not in text:
            schemas.pop(name, None)
    return document


ConnectionIdPath = Annotated[
    str,
    Path(alias="connectionId", pattern=CONNECTION_ID_PATTERN,
         description="lower-case letters, digits and '-', e.g. demo-shop"),
]
OrderIdPath = Annotated[
    int, Path(alias="orderId", gt=0, le=MAX_ORDER_ID, description="the Billbee order id (BillBeeOrderId)")
]


class ApiApp:
    def __init__(self, runtime: Runtime, *, export_time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.export_time_budget = export_time_budget
        self.clock = clock
        self.app = APIGatewayHttpResolver(enable_validation=True)
        self.app.configure_openapi(
            title="Billbee → sevDesk connector",
            version=API_VERSION,
            description=(
                "Connection setup, manual export and export status of the self-hosted Billbee → sevDesk connector. "
                "Every request needs `Authorization: Bearer <token>` (the token is in the ApiTokenSecret secret). "
                "Errors are JSON `{error, problems}`."
            ),
            security_schemes={"bearerToken": HTTPBearer(description="the value of the ApiTokenSecret secret")},
            security=[{"bearerToken": []}],
        )
        self._token: tuple[float, str] | None = None
        self._openapi: str | None = None
        self._started = 0.0
        self._register()

    # -- before routing ------------------------------------------------------------------------------------------
    def api_token(self) -> str:
        now = time.monotonic()
        if self._token is None or now - self._token[0] > TOKEN_CACHE_SECONDS:
            secret_id = self.runtime.config.api_token_secret_id
            if not secret_id:
                raise RuntimeError("API_TOKEN_SECRET_ID is not configured")
            value = self.runtime.secrets_client.get_secret_value(SecretId=secret_id)["SecretString"]
            redact_secret(value)
            self._token = (now, value)
        return self._token[1]

    def openapi_document(self) -> str:
        if self._openapi is None:
            document = json.loads(self.app.get_openapi_json_schema())
            self._openapi = json.dumps(_clean_openapi(document), ensure_ascii=False, indent=2)
        return self._openapi

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, supplied = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            return False
        # Constant-time: the comparison must not tell how much of a guessed token was right.
        return hmac.compare_digest(supplied.strip().encode(), self.api_token().encode())

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda entry: authenticate, check the body, route; never a stack trace to the caller."""
        self._started = self.clock()
        try:
            headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
            if not self._authorised(headers):
                return _json_response(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
            prepared = self._prepare(event, headers)
            if "statusCode" in prepared:
                return prepared
            answer = dict(self.app.resolve(prepared, context))
            answer.setdefault("headers", {})["Cache-Control"] = "no-store"
            return answer
        except Exception:
            logger.exception("unhandled API error")
            return _json_response(500, {"error": "internal error; see the function's logs"})

    def _prepare(self, event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """The body as UTF-8 JSON text, checked here once, or an error answer.

        API Gateway base64-encodes bodies it takes for binary; Python's json accepts 10**5 nested brackets or a
        5000-digit number only by raising RecursionError/ValueError, which must become a 400, not a 500."""
        method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "GET").upper()
        raw = event.get("body")
        encoded = bool(event.get("isBase64Encoded"))
        event = {**event, "headers": dict(headers), "isBase64Encoded": False}
        if method not in ("POST", "PUT", "PATCH") or raw in (None, ""):
            event["body"] = None
            return event
        if encoded:
            try:
                data = base64.b64decode(str(raw), validate=True)
            except (ValueError, binascii.Error):
                return _json_response(400, {"error": "the body is not valid base64"})
        else:
            data = str(raw).encode()
        return self._checked_body(event, data)

    def _checked_body(self, event: dict[str, Any], data: bytes) -> dict[str, Any]:
        if len(data) > MAX_BODY_BYTES:
            return _json_response(413, {"error": f"request body larger than {MAX_BODY_BYTES} bytes"})
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _json_response(400, {"error": "the body is not UTF-8 text"})
        try:
            json.loads(text)
        except RecursionError:
            return _json_response(400, {"error": "the body is not valid JSON: nested too deeply"})
        except ValueError as exc:
            return _json_response(400, {"error": f"the body is not valid JSON: {exc}"})
        event["body"] = text
        # This API reads JSON only, whatever the client declared (curl -d says form-urlencoded).
        event["headers"]["content-type"] = JSON
        return event

    # -- helpers used by the routes ------------------------------------------------------------------------------
    def _connection(self, connection_id: str) -> StoredConnection:
        stored = self.runtime.store.get_connection(connection_id)
        if stored is None:
            raise ApiProblem(404, f"no connection {connection_id!r}")
        return stored

    def _record(self, connection_id: str, order_id: int) -> OrderRecord:
        self._connection(connection_id)
        record = self.runtime.store.get_order(connection_id, order_id)
        if record is None:
            raise ApiProblem(404, f"connection {connection_id!r} has no export record of order {order_id}")
        return record

    def _credentials(self, stored: StoredConnection) -> Any:
        try:
            return self.runtime.secrets.get(stored.secret_id)
        except CredentialsUnavailable as exc:
            raise ApiProblem(502, f"the connection's credentials are unavailable ({exc}); PUT them again") from exc

    @staticmethod
    def _view(stored: StoredConnection) -> ConnectionStatusView:
        return ConnectionStatusView(state=stored.status.state, reason=stored.status.reason, since=stored.status.since)

    # -- routes --------------------------------------------------------------------------------------------------
    def _register(self) -> None:  # noqa: C901 - the route table reads best in one place
        app = self.app
        runtime = self.runtime

        @app.get("/openapi.json", include_in_schema=False)
        def openapi() -> Response[Any]:
            return Response(200, content_type=JSON, body=self.openapi_document())

        @app.get(
            "/connections",
            operation_id="listConnections",
            summary="List the connections",
            responses=_responses({200: (ConnectionList, "Every connection with its status")}),
        )
        def list_connections() -> Response[ConnectionList]:
            connections = [
                ConnectionSummary(
                    connection_id=c.settings.connection_id, name=c.settings.name, enabled=c.settings.enabled,
                    status=self._view(c),
                )
                for c in runtime.store.list_connections()
            ]
            return Response(200, content_type=JSON, body=ConnectionList(connections=connections))

        @app.put(
            "/connections/<connectionId>",
            operation_id="putConnection",
            summary="Create or change a connection",
            description=(
                "Runs the setup checks (both credentials valid, sevDesk bookkeeping 2.0, every mapped payment "
                "account exists and is offline, every revenue account allows its tax rule and rate) before anything "
                "is written; a refused connection is not saved at all. Credentials are written to Secrets Manager "
                "and never returned; omit them to keep the stored ones."
            ),
            responses=_responses(
                {200: (SavedConnection, "Changed"), 201: (SavedConnection, "Created")}, 413, 422, 502
            ),
        )
        def put_connection(connection_id: ConnectionIdPath, body: ConnectionBody) -> Response[SavedConnection]:
            # powertools validated in Python's lax mode ("yes" for true, "3" for 3); the settings are validated again
            # strictly from the JSON text, where dates and decimals may still be strings, as the schema says.
            try:
                body = ConnectionBody.model_validate_json(app.current_event.body or "", strict=True)
            except ValidationError as exc:
                raise ApiProblem(400, "invalid connection settings", problems=[
                    Problem(field=".".join(["body", *(str(p) for p in err["loc"])]), problem=err["msg"])
                    for err in exc.errors(include_url=False)
                ]) from exc
            if body.connection_id not in (None, connection_id):
                raise ApiProblem(400, "connectionId in the body differs from the path", problems=[
                    Problem(field="body.connectionId", problem=f"must be {connection_id!r} or left out")])
            settings = body.settings_for(connection_id)
            existed = runtime.store.get_connection(connection_id) is not None
            try:
                report = save_connection(runtime, settings)
            except SetupError as exc:
                # 502 when Billbee or sevDesk could not be asked (retry later); 422 when the checks refused it.
                raise ApiProblem(502 if exc.unreachable else 422, str(exc), setup=SetupResult.of(exc.report)) from exc
            except CredentialsUnavailable as exc:
                raise ApiProblem(502, f"the stored credentials are unavailable ({exc}); send them again") from exc
            except ApiError as exc:
                raise ApiProblem(502, f"the setup checks could not finish: {exc}; nothing was saved") from exc
            except ValueError as exc:  # e.g. credentials missing for a new connection
                raise ApiProblem(400, str(exc), problems=[Problem(field="body.credentials", problem=str(exc))]) from exc
            answer = SavedConnection(
                created=not existed,
                connection=PublicSettings.model_validate(settings.public_dict()),
                setup=SetupResult.of(report),
            )
            return Response(200 if existed else 201, content_type=JSON, body=answer)

        @app.get(
            "/connections/<connectionId>",
            operation_id="getConnection",
            summary="Read a connection",
            description="The settings without credentials (masked), the connection's status and its last poll.",
            responses=_responses({200: (ConnectionView, "The connection")}, 404),
        )
        def get_connection(connection_id: ConnectionIdPath) -> Response[ConnectionView]:
            stored = self._connection(connection_id)
            cursor = runtime.store.get_cursor(connection_id)
            view = ConnectionView(
                connection=PublicSettings.model_validate(stored.settings.public_dict()),
                credentials=MaskedCredentials(),
                status=self._view(stored),
                last_poll=LastPoll.model_validate(cursor) if cursor else None,
            )
            return Response(200, content_type=JSON, body=view)

        @app.delete(
            "/connections/<connectionId>",
            operation_id="deleteConnection",
            summary="Remove a connection",
            description=(
                "Removes the settings and the credentials' secret. The order export records stay: they are the "
                "history of what was exported and keep a re-created connection of the same id from exporting an "
                "order twice."
            ),
            responses=_responses({200: (DeletedConnection, "Removed")}, 404),
        )
        def delete_connection(connection_id: ConnectionIdPath) -> Response[DeletedConnection]:
            stored = self._connection(connection_id)
            runtime.store.delete_connection(connection_id)
            runtime.secrets.delete(stored.secret_id)
            runtime.forget_clients(connection_id)
            answer = DeletedConnection(
                deleted=connection_id, detail="settings and credentials removed; order export records kept"
            )
            return Response(200, content_type=JSON, body=answer)

        @app.get(
            "/connections/<connectionId>/setup-options",
            operation_id="getSetupOptions",
            summary="What the settings can be filled with",
            description=(
                "Billbee: shops, order states, payment types. sevDesk: the offline accounts payments can be booked "
                "on (bank accounts cannot) and the revenue accounts with the tax rules and rates ReceiptGuidance "
                "allows for revenue."
            ),
            responses=_responses({200: (SetupOptions, "The options")}, 404, 502),
        )
        def setup_options(connection_id: ConnectionIdPath) -> Response[SetupOptions]:
            stored = self._connection(connection_id)
            credentials = self._credentials(stored)
            with interactive_clients(runtime, connection_id, credentials) as (billbee, sevdesk):
                # Five independent calls: in parallel, so the answer comes within API Gateway's 29 s even when
                # every one of them needs its retry.
                with ThreadPoolExecutor(max_workers=5) as pool:
                    calls: dict[str, Future[Any]] = {
                        "shops": pool.submit(billbee.list_shops),
                        "states": pool.submit(billbee.order_states),
                        "types": pool.submit(billbee.payment_types),
                        "accounts": pool.submit(sevdesk.check_accounts),
                        "guidance": pool.submit(sevdesk.revenue_guidance),
                    }
                    try:
                        results = {name: future.result() for name, future in calls.items()}
                    except ApiError as exc:
                        raise ApiProblem(502, f"setup options unavailable: {exc}") from exc
            answer = SetupOptions(
                billbee=BillbeeOptions(
                    shops=[Named(id=s.id, name=s.name) for s in results["shops"]],
                    order_states=[Named(id=e.id, name=e.name) for e in results["states"]],
                    payment_types=[Named(id=e.id, name=e.name) for e in results["types"]],
                ),
                sevdesk=SevdeskOptions(
                    payment_accounts=[
                        SevdeskAccount(id=a.id, name=a.name, type=a.type) for a in results["accounts"]
                        if a.is_offline and a.is_active
                    ],
                    revenue_accounts=[o for o in map(_revenue_option, results["guidance"]) if o is not None],
                ),
            )
            return Response(200, content_type=JSON, body=answer)

        @app.post(
            "/connections/<connectionId>/payment-accounts",
            operation_id="createPaymentAccount",
            summary="Create an offline account for a payment method",
            description=(
                "Creates an offline (clearing) account in sevDesk, e.g. 'PayPal BB', and maps the payment method to "
                "it in the connection's settings. An offline account of the same name is reused, so repeating the "
                "request creates nothing twice. A method that is mapped already answers 409: change a mapping with "
                "PUT."
            ),
            responses=_responses({201: (CreatedPaymentAccount, "Created (or reused) and mapped")}, 404, 409, 413, 502),
        )
        def create_payment_account(
            connection_id: ConnectionIdPath, body: PaymentAccountBody
        ) -> Response[CreatedPaymentAccount]:
            stored = self._connection(connection_id)
            settings = stored.settings
            mapped = settings.accounts.check_account_for(body.payment_method)
            if mapped is not None:
                raise ApiProblem(409, f"payment method {body.payment_method} is mapped to account {mapped} already; "
                                      "change the mapping with PUT")
            credentials = self._credentials(stored)
            with interactive_clients(runtime, connection_id, credentials) as (_, sevdesk):
                try:
                    existing = next(
                        (a for a in sevdesk.check_accounts()
                         if a.is_offline and a.is_active and a.name.strip() == body.name), None
                    )
                    account = existing or sevdesk.create_clearing_account(body.name, body.accounting_number)
                except ApiError as exc:
                    raise ApiProblem(502, f"sevDesk did not create the account: {exc}") from exc
            accounts = settings.accounts.model_copy(update={"payment_accounts": [
                *settings.accounts.payment_accounts,
                PaymentAccount(payment_method=body.payment_method, check_account_id=account.id),
            ]})
            changed = ConnectionSettings.model_validate(
                {**settings.public_dict(), "accounts": accounts.model_dump(mode="json", by_alias=True)}
            )
            runtime.store.put_connection(changed, stored.secret_id)
            answer = CreatedPaymentAccount(
                payment_method=body.payment_method,
                check_account=SevdeskAccount(id=account.id, name=account.name, type=account.type),
                created=existing is None,
                connection=PublicSettings.model_validate(changed.public_dict()),
            )
            return Response(201, content_type=JSON, body=answer)

        @app.post(
            "/connections/<connectionId>/exports",
            operation_id="exportOrders",
            summary="Export chosen orders now",
            description=(
                "Manual export, independent of the hourly run: the connection's start date, shop and state filters "
                "do not apply (the user chose the orders); `onlyUntagged` skips orders that carry the export tag; "
                "`setTag: false` exports without tagging. Orders this connector exported before are never exported "
                f"again. At most {MAX_ORDERS_PER_REQUEST} ids. Billbee allows 2 requests/s, so the request checks "
                f"orders for up to {DEFAULT_TIME_BUDGET_SECONDS:g} s and answers `notChecked` for the rest, listed "
                "in `resend`: send those again. `queued` orders are exported by the export worker; follow them with "
                "GET .../orders/{orderId}."
            ),
            responses=_responses({202: (ExportAnswer, "An outcome per order")}, 404, 409, 413, 502),
        )
        def export_orders(connection_id: ConnectionIdPath, body: ExportBody) -> Response[ExportAnswer]:
            stored = self._connection(connection_id)
            if stored.status.state == "ERROR":
                raise ApiProblem(409, f"the connection is in error ({stored.status.reason}); fix it with PUT first")
            try:
                result = request_manual_export(
                    runtime, stored, body.order_ids, set_tag=body.set_tag, only_untagged=body.only_untagged,
                    time_budget=self.export_time_budget, started=self._started, clock=self.clock,
                )
            except CredentialsUnavailable as exc:
                raise ApiProblem(502, f"the connection's credentials are unavailable ({exc}); PUT them again") from exc
            answer = ExportAnswer(
                connection_id=connection_id,
                orders=[OrderOutcomeView.model_validate(o.as_dict()) for o in result.outcomes],
                counts=result.counts(),
                resend=result.ids(ManualOutcome.NOT_CHECKED),
            )
            return Response(202, content_type=JSON, body=answer)

        @app.get(
            "/connections/<connectionId>/orders/<orderId>",
            operation_id="getOrder",
            summary="One order's export record",
            responses=_responses({200: (OrderStatus, "The export record")}, 404),
        )
        def get_order(connection_id: ConnectionIdPath, order_id: OrderIdPath) -> Response[OrderStatus]:
            return Response(200, content_type=JSON, body=OrderStatus.of(self._record(connection_id, order_id)))

        @app.get(
            "/connections/<connectionId>/orders",
            operation_id="listOrders",
            summary="Export records in one state",
            description="Newest changes last; paged with `next` (a query on the state index, never a table scan).",
            responses=_responses({200: (OrderPage, "A page of records")}, 404),
        )
        def list_orders(
            connection_id: ConnectionIdPath,
            state: Annotated[ExportState, Query(description="the export state to list")],
            limit: Annotated[int, Query(ge=1, le=200, description="records per page")] = 50,
            next_page: Annotated[str | None, Query(alias="next", max_length=2000,
                                                   description="the previous page's `next`")] = None,
        ) -> Response[OrderPage]:
            self._connection(connection_id)
            start_key = _decode_page_token(next_page, connection_id, state) if next_page else None
            records, next_key = runtime.store.list_by_state(connection_id, state, limit=limit, start_key=start_key)
            page = OrderPage(orders=[OrderStatus.of(r) for r in records], next=_encode_page_token(next_key))
            return Response(200, content_type=JSON, body=page)

        @app.get(
            "/connections/<connectionId>/dead-letters",
            operation_id="listDeadLetters",
            summary="Export messages that reached the dead-letter queue",
            description="A poison message lands here after the queue's maximum receives; it stays in the queue "
            "(this only looks) until it is redriven or expires.",
            responses=_responses({200: (DeadLetterList, "The dead letters of this connection")}, 404),
        )
        def dead_letters(connection_id: ConnectionIdPath) -> Response[DeadLetterList]:
            self._connection(connection_id)
            queue_url = runtime.config.export_dlq_url
            approximate, letters = (0, []) if not queue_url else peek_dead_letters(runtime.sqs, queue_url)
            views = [
                DeadLetterView.model_validate(letter.__dict__)
                for letter in letters
                if letter.connection_id in (connection_id, None)
            ]
            answer = DeadLetterList(connection_id=connection_id, approximate_count=approximate, messages=views)
            return Response(200, content_type=JSON, body=answer)

        @app.post(
            "/connections/<connectionId>/orders/<orderId>/retry",
            operation_id="retryOrder",
            summary="Retry a FAILED or NEEDS_ATTENTION order",
            description="Resets the attempts and queues the order again; it resumes at the step it had reached.",
            responses=_responses({202: (RetryAnswer, "Queued")}, 404, 409),
        )
        def retry_order(connection_id: ConnectionIdPath, order_id: OrderIdPath) -> Response[RetryAnswer]:
            record = self._record(connection_id, order_id)
            if record.state not in (ExportState.FAILED, ExportState.NEEDS_ATTENTION):
                raise ApiProblem(409, f"order {order_id} is {record.state.value}; only FAILED or NEEDS_ATTENTION "
                                      "orders can be retried")
            record.state, record.attempts, record.reason = ExportState.PENDING, 0, None
            try:
                runtime.store.save(record)
            except ConflictError as exc:
                raise ApiProblem(409, f"order {order_id} changed while it was being retried; try again") from exc
            Poller(runtime).enqueue(connection_id, [record.order_id], reason="retry")
            return Response(202, content_type=JSON, body=RetryAnswer(order_id=record.order_id, outcome="queued"))

        @app.not_found
        def not_found(exc: Exception) -> Response[str]:
            event = app.current_event
            body = ErrorBody(error=f"no route {event.http_method} {event.path}")
            return Response(404, content_type=JSON, body=body.model_dump_json(exclude_none=True))

        # powertools' exception_handler is untyped; the handlers themselves are typed.
        @app.exception_handler(ApiProblem)  # type: ignore[untyped-decorator]
        def api_problem(exc: ApiProblem) -> Response[str]:
            return Response(exc.status, content_type=JSON,
                            body=exc.body.model_dump_json(by_alias=True, exclude_none=True))

        @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
        def invalid(exc: RequestValidationError) -> Response[str]:
            headline, problems = _problems(list(exc.errors()))
            body = ErrorBody(error=headline, problems=problems)
            return Response(400, content_type=JSON, body=body.model_dump_json(by_alias=True, exclude_none=True))


def _revenue_option(entry: dict[str, Any]) -> RevenueAccountOption | None:
    """One ``ReceiptGuidance/forRevenue`` entry, its rate names (``NINETEEN``) as the percents the settings use."""
    try:
        account_id = int(str(entry.get("accountDatevId")))
    except ValueError:
        return None
    rules = []
    for rule in entry.get("allowedTaxRules") or []:
        try:
            rule_id = int(str(rule.get("id")))
        except ValueError:
            continue
        rates = [_RATE_PERCENT.get(str(name), str(name)) for name in rule.get("taxRates") or []]
        rules.append(AllowedTaxRule(tax_rule=rule_id, name=rule.get("name"), tax_rates=rates))
    return RevenueAccountOption(
        account_datev_id=account_id,
        account_number=None if entry.get("accountNumber") is None else str(entry.get("accountNumber")),
        account_name=entry.get("accountName"),
        allowed_tax_rules=rules,
    )


__all__ = ["ApiApp", "ApiProblem"]
