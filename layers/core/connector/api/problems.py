"""How the HTTP API answers a problem: a JSON body ``{"error", "problems": [{"field", "problem"}]}`` with the status
that tells the caller what to do (400 fix the request, 404 no such thing, 409 the state forbids it, 413 too large,
422 the setup checks refused the settings, 502 Billbee or sevDesk could not be asked: retry later)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from connector.api.models import ErrorBody, Problem, SetupResult
from connector.pipeline.manual import MAX_ORDERS_PER_REQUEST

JSON = "application/json"
MAX_BODY_BYTES = 256 * 1024  # a connection is ~2 KB and 500 order ids ~10 KB; anything near this is not ours


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


def responses(success: dict[int, tuple[type[BaseModel], str]], *errors: int) -> dict[int, Any]:
    documented: dict[int, Any] = {
        code: {"description": text, "content": {JSON: {"model": model}}} for code, (model, text) in success.items()
    }
    for code in (400, 401, *errors):
        documented[code] = {"description": ERROR_TEXT[code], "content": {JSON: {"model": ErrorBody}}}
    return documented


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A finished API Gateway answer, for the checks that run before routing."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, "Cache-Control": "no-store", **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def validation_problems(errors: list[dict[str, Any]]) -> tuple[str, list[Problem]]:
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


def clean_openapi(document: dict[str, Any]) -> dict[str, Any]:
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


