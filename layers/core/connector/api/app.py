"""The HTTP API (API Gateway HTTP API -> ApiFunction): connection setup, manual export, status.

Routes, grouped by subject in ``routes/`` (powertools routers joined here; the OpenAPI document generated from them
is served at ``GET /openapi.json``):

    routes/connections.py
    GET    /connections                                   the connections and their status
    PUT    /connections/{connectionId}                    create or change (runs the setup checks first)
    GET    /connections/{connectionId}                    settings (credentials masked), status, last poll, counts
    DELETE /connections/{connectionId}                    remove settings and credentials (order records stay)
    routes/setup.py
    GET    /connections/{connectionId}/setup-options      Billbee shops, order states, payment types; sevDesk
                                                          offline accounts and revenue accounts
    POST   /connections/{connectionId}/setup-options      the same, asked with credentials in the body (a new
                                                          connection's pickers before its first PUT)
    POST   /connections/{connectionId}/payment-accounts   create an offline (clearing) account for a payment method
                                                          and map the method to it
    routes/orders.py
    POST   /connections/{connectionId}/exports            manual export of chosen orders
    GET    /connections/{connectionId}/orders?state=      export records in one state, paged (GSI, no scan)
    GET    /connections/{connectionId}/orders/{orderId}   one export record
    GET    /connections/{connectionId}/orders/{orderId}/explanation   why an order was (not) exported, any id
    POST   /connections/{connectionId}/orders/{orderId}/retry     re-queue a FAILED or NEEDS_ATTENTION order
    POST   /connections/{connectionId}/orders/{orderId}/handled   mark an order as booked by hand
    GET    /connections/{connectionId}/dead-letters       the export messages in the dead-letter queue
    routes/reconciliation.py
    GET    /connections/{connectionId}/reconciliation?from=&to=   Billbee's invoices and credit notes of a period
                                                          against sevDesk's revenue vouchers (JSON or CSV)

    connector.console (before authentication)
    GET    /console, /console/<asset>                     the web console's static shell: no data, no token

This module is what comes before routing: every route, ``/openapi.json`` included, needs ``Authorization: Bearer
<token>`` with the token kept in Secrets Manager (``API_TOKEN_SECRET_ID``); anything else gets 401 and no data. The
body is checked once (size, UTF-8, JSON) before a route sees it. Bad input gets a 4xx JSON error naming the problem
(``problems.py``); an unexpected failure a 500 with a generic message and the details only in the function's log.
Request bodies are JSON whatever their ``Content-Type`` says (curl's ``-d`` sends form-urlencoded).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from connector.api.context import ApiContext
from connector.api.models import ErrorBody
from connector.api.problems import JSON, MAX_BODY_BYTES, ApiProblem, clean_openapi, json_response, validation_problems
from connector.api.routes.connections import connections_router
from connector.api.routes.orders import orders_router
from connector.api.routes.reconciliation import reconciliation_router
from connector.api.routes.setup import setup_router
from connector.console import console_response, is_console_path
from connector.observability import logger, redact_secret
from connector.pipeline.manual import DEFAULT_TIME_BUDGET_SECONDS
from connector.pipeline.runtime import Runtime

API_VERSION = "1.0.0"
TOKEN_CACHE_SECONDS = 300


class ApiApp:
    def __init__(self, runtime: Runtime, *, export_time_budget: float = DEFAULT_TIME_BUDGET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.context = ApiContext(runtime, export_time_budget, clock)
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
            self._openapi = json.dumps(clean_openapi(document), ensure_ascii=False, indent=2)
        return self._openapi

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, supplied = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            return False
        # Constant-time: the comparison must not tell how much of a guessed token was right.
        return hmac.compare_digest(supplied.strip().encode(), self.api_token().encode())

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda entry: authenticate, check the body, route; never a stack trace to the caller."""
        self.context.started = self.context.clock()
        try:
            http = (event.get("requestContext") or {}).get("http") or {}
            path = str(http.get("path") or event.get("rawPath") or "")
            if is_console_path(path):
                # The console's shell holds no data; it loads before the user has typed the token.
                return console_response(str(http.get("method") or "GET").upper(), path)
            headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
            if not self._authorised(headers):
                return json_response(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
            prepared = self._prepare(event, headers)
            if "statusCode" in prepared:
                return prepared
            answer = dict(self.app.resolve(prepared, context))
            answer.setdefault("headers", {})["Cache-Control"] = "no-store"
            return answer
        except Exception:
            logger.exception("unhandled API error")
            return json_response(500, {"error": "internal error; see the function's logs"})

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
                return json_response(400, {"error": "the body is not valid base64"})
        else:
            data = str(raw).encode()
        return self._checked_body(event, data)

    def _checked_body(self, event: dict[str, Any], data: bytes) -> dict[str, Any]:
        if len(data) > MAX_BODY_BYTES:
            return json_response(413, {"error": f"request body larger than {MAX_BODY_BYTES} bytes"})
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return json_response(400, {"error": "the body is not UTF-8 text"})
        try:
            json.loads(text)
        except RecursionError:
            return json_response(400, {"error": "the body is not valid JSON: nested too deeply"})
        except ValueError as exc:
            return json_response(400, {"error": f"the body is not valid JSON: {exc}"})
        event["body"] = text
        # This API reads JSON only, whatever the client declared (curl -d says form-urlencoded).
        event["headers"]["content-type"] = JSON
        return event

    # -- routes --------------------------------------------------------------------------------------------------
    def _register(self) -> None:
        app = self.app

        @app.get("/openapi.json", include_in_schema=False)
        def openapi() -> Response[Any]:
            return Response(200, content_type=JSON, body=self.openapi_document())

        for router in (connections_router(self.context), setup_router(self.context), orders_router(self.context),
                       reconciliation_router(self.context)):
            app.include_router(router)

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
            headline, problems = validation_problems(list(exc.errors()))
            body = ErrorBody(error=headline, problems=problems)
            return Response(400, content_type=JSON, body=body.model_dump_json(by_alias=True, exclude_none=True))
