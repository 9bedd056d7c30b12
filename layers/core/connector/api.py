"""The HTTP API (API Gateway HTTP API -> ApiFunction): connection setup, manual export, status.

Every route needs ``Authorization: Bearer <token>``, the token kept in Secrets Manager (``API_TOKEN_SECRET_ID``).
Bad input gets a 4xx JSON error naming the problem; nothing is half-written.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    NotFoundError,
    UnauthorizedError,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.errors import ApiError
from connector.observability import logger
from connector.pipeline.manual import MAX_ORDERS_PER_REQUEST, request_manual_export
from connector.pipeline.poll import Poller
from connector.pipeline.runtime import Runtime
from connector.pipeline.setup import SetupError, save_connection
from connector.secrets import CredentialsUnavailable
from connector.settings.model import ConnectionSettings
from connector.store.records import ExportState

MAX_BODY_BYTES = 256 * 1024
TOKEN_CACHE_SECONDS = 300
MASK = "********"


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orderIds: list[int] = Field(min_length=1)  # noqa: N815 - the wire format
    setTag: bool = True  # noqa: N815
    onlyUntagged: bool = False  # noqa: N815


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body, default=str))


def _error(status: int, message: str, **extra: Any) -> Response:
    return _json(status, {"error": message, **extra})


def _validation_message(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


class ApiApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.app = APIGatewayHttpResolver()
        self._token: tuple[float, str] | None = None
        self._register()

    def api_token(self) -> str:
        now = time.monotonic()
        if self._token is None or now - self._token[0] > TOKEN_CACHE_SECONDS:
            secret_id = self.runtime.config.api_token_secret_id
            if not secret_id:
                raise RuntimeError("API_TOKEN_SECRET_ID is not configured")
            value = self.runtime.secrets_client.get_secret_value(SecretId=secret_id)["SecretString"]
            self._token = (now, value)
        return self._token[1]

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        supplied = headers.get("authorization", "")
        expected = f"Bearer {self.api_token()}"
        if not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
            return {
                "statusCode": 401,
                "headers": {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                "body": json.dumps({"error": "missing or wrong bearer token"}),
            }
        body = event.get("body") or ""
        if len(body.encode()) > MAX_BODY_BYTES:
            return {
                "statusCode": 413,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": f"request body larger than {MAX_BODY_BYTES} bytes"}),
            }
        try:
            return dict(self.app.resolve(event, context))
        except Exception:  # never a stack trace to the caller
            logger.exception("unhandled API error")
            return {
                "statusCode": 500,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"error": "internal error; see the function's logs"}),
            }

    def _body(self) -> Any:
        raw = self.app.current_event.body
        if raw is None or raw == "":
            raise BadRequestError("a JSON body is required")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadRequestError(f"the body is not valid JSON: {exc}") from exc

    def _connection(self, connection_id: str) -> Any:
        stored = self.runtime.store.get_connection(connection_id)
        if stored is None:
            raise NotFoundError(f"no connection {connection_id!r}")
        return stored

    def _register(self) -> None:  # noqa: C901 - the route table reads best in one place
        app = self.app

        @app.put("/connections/<connection_id>")
        def put_connection(connection_id: str) -> Response:
            body = self._body()
            if not isinstance(body, dict):
                raise BadRequestError("the body must be a JSON object")
            body.setdefault("connectionId", connection_id)
            if body["connectionId"] != connection_id:
                raise BadRequestError("connectionId in the body differs from the path")
            try:
                settings = ConnectionSettings.model_validate(body)
            except ValidationError as exc:
                return _error(400, "invalid connection settings", problems=_validation_message(exc))
            existed = self.runtime.store.get_connection(connection_id) is not None
            try:
                report = save_connection(self.runtime, settings)
            except SetupError as exc:
                return _error(422, str(exc), setup=exc.report.as_dict())
            except ValueError as exc:
                return _error(400, str(exc))
            return _json(200 if existed else 201, {"connection": settings.public_dict(), "setup": report.as_dict()})

        @app.get("/connections/<connection_id>")
        def get_connection(connection_id: str) -> Response:
            stored = self._connection(connection_id)
            return _json(
                200,
                {
                    "connection": stored.settings.public_dict(),
                    "credentials": {k: MASK for k in ("billbeeApiKey", "billbeeUsername", "billbeeApiPassword",
                                                      "sevdeskApiToken")},
                    "status": {"state": stored.status.state, "reason": stored.status.reason,
                               "since": stored.status.since},
                    "lastPoll": self.runtime.store.get_cursor(connection_id),
                },
            )

        @app.delete("/connections/<connection_id>")
        def delete_connection(connection_id: str) -> Response:
            stored = self._connection(connection_id)
            self.runtime.store.delete_connection(connection_id)
            self.runtime.secrets.delete(stored.secret_id)
            self.runtime.forget_clients(connection_id)
            return _json(200, {"deleted": connection_id})

        @app.post("/connections/<connection_id>/exports")
        def export_orders(connection_id: str) -> Response:
            stored = self._connection(connection_id)
            try:
                request = ExportBody.model_validate(self._body())
            except ValidationError as exc:
                return _error(400, "invalid export request", problems=_validation_message(exc))
            if len(request.orderIds) > MAX_ORDERS_PER_REQUEST:
                return _error(400, f"at most {MAX_ORDERS_PER_REQUEST} order ids per request")
            try:
                outcomes = request_manual_export(
                    self.runtime, stored.settings, stored.secret_id, request.orderIds,
                    set_tag=request.setTag, only_untagged=request.onlyUntagged,
                )
            except (ApiError, CredentialsUnavailable) as exc:
                return _error(502, f"manual export failed: {exc}")
            return _json(202, {"orders": outcomes})

        @app.get("/connections/<connection_id>/orders/<order_id>")
        def get_order(connection_id: str, order_id: str) -> Response:
            self._connection(connection_id)
            if not order_id.isdigit():
                raise BadRequestError("orderId must be a number")
            record = self.runtime.store.get_order(connection_id, int(order_id))
            if record is None:
                raise NotFoundError(f"connection {connection_id!r} has no record of order {order_id}")
            return _json(200, record.public_dict())

        @app.get("/connections/<connection_id>/orders")
        def list_orders(connection_id: str) -> Response:
            self._connection(connection_id)
            state_name = (self.app.current_event.get_query_string_value("state") or "").upper()
            try:
                state = ExportState(state_name)
            except ValueError as exc:
                raise BadRequestError(f"state must be one of {', '.join(s.value for s in ExportState)}") from exc
            limit_text = self.app.current_event.get_query_string_value("limit") or "50"
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= 200:
                raise BadRequestError("limit must be a number from 1 to 200")
            start = self.app.current_event.get_query_string_value("next")
            try:
                start_key = json.loads(start) if start else None
            except ValueError as exc:
                raise BadRequestError("next is not a paging token from this API") from exc
            records, next_key = self.runtime.store.list_by_state(
                connection_id, state, limit=int(limit_text), start_key=start_key
            )
            return _json(
                200,
                {"orders": [r.public_dict() for r in records], "next": json.dumps(next_key) if next_key else None},
            )

        @app.post("/connections/<connection_id>/orders/<order_id>/retry")
        def retry_order(connection_id: str, order_id: str) -> Response:
            self._connection(connection_id)
            if not order_id.isdigit():
                raise BadRequestError("orderId must be a number")
            record = self.runtime.store.get_order(connection_id, int(order_id))
            if record is None:
                raise NotFoundError(f"connection {connection_id!r} has no record of order {order_id}")
            if record.state not in (ExportState.FAILED, ExportState.NEEDS_ATTENTION):
                return _error(409, f"order {order_id} is {record.state.value}; only FAILED or NEEDS_ATTENTION "
                                   "orders can be retried")
            record.state, record.attempts, record.reason = ExportState.PENDING, 0, None
            self.runtime.store.save(record)
            Poller(self.runtime).enqueue(connection_id, [record.order_id], reason="retry")
            return _json(202, {"orderId": record.order_id, "outcome": "queued"})

        @app.not_found
        def not_found(exc: Exception) -> Response:
            return _error(404, "no such route")

        @app.exception_handler(UnauthorizedError)
        def unauthorized(exc: UnauthorizedError) -> Response:
            return _error(401, str(exc.msg))
