"""How answers become errors, and errors become what the pipeline and the caller do (issue 10): the two clients'
envelopes, the API's 400 problems and the setup checks' 422-or-502, as tables on plain values."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.api.problems import validation_problems
from connector.billbee.client import BillbeeClient
from connector.errors import ApiError, AuthError, NotFoundError, RejectedError, TransientError, UnknownOutcome
from connector.pipeline.setup import SetupError, SetupReport
from connector.sevdesk.client import SevdeskClient


def response(status: int, body: Any = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


ENVELOPE = {"ErrorMessage": None, "ErrorCode": 0, "ErrorDescription": "NoError"}
BILLBEE = [
    (response(200, {**ENVELOPE, "Data": []}), None),
    (response(200, [{"Id": 1, "Name": "Bestellt"}]), None),  # the enum endpoints answer a bare array
    (response(401, {"Message": "Authorization has been denied for this request."}), AuthError),
    (response(200, {**ENVELOPE, "ErrorCode": 1, "ErrorMessage": "API not activated"}), AuthError),
    (response(404, text=""), NotFoundError),
    (response(200, {**ENVELOPE, "ErrorCode": 2}), NotFoundError),
    (response(400, {"Message": "Die Anforderung ist ungültig.", "ModelState": {"id": ["x"]}}), RejectedError),
    (response(200, {**ENVELOPE, "ErrorCode": 7, "ErrorMessage": "not paid"}), RejectedError),
    (response(200, {**ENVELOPE, "ErrorCode": 8}), TransientError),  # InternalError: worth another try
    (response(200, text="<html>maintenance</html>"), TransientError),
]


@pytest.mark.parametrize(("answer", "error"), BILLBEE)
def test_billbee_answers_become_the_right_error(answer: httpx.Response, error: type[ApiError] | None) -> None:
    if error is None:
        BillbeeClient._envelope(answer, "op")
        return
    with pytest.raises(error):
        BillbeeClient._envelope(answer, "op")


def sevdesk_error(status: int, message: str = "x", code: int | None = None) -> httpx.Response:
    return response(status, {"objects": None, "error": {"message": message, "code": code, "responseCode": status}})


SEVDESK = [
    (response(200, {"objects": []}), None),
    (response(401, {"error": {"message": "Authentication required"}}), AuthError),
    (sevdesk_error(404, "not found", 151), NotFoundError),
    (sevdesk_error(400, "Model_Voucher not found", 151), NotFoundError),  # code 151 whatever the status
    (sevdesk_error(422, "taxRate not allowed"), RejectedError),
    (sevdesk_error(200, "locked", 42), RejectedError),  # an error inside HTTP 200 (sevdesk-pitfalls #18)
    (sevdesk_error(422, "voucher already paid", 751), RejectedError),
    (response(200, {"unexpected": True}), TransientError),
]


@pytest.mark.parametrize(("answer", "error"), SEVDESK)
def test_sevdesk_answers_become_the_right_error(answer: httpx.Response, error: type[ApiError] | None) -> None:
    if error is None:
        assert SevdeskClient._objects(answer, "op") == []
        return
    with pytest.raises(error):
        SevdeskClient._objects(answer, "op")


def test_a_lost_answer_is_transient_but_says_the_write_may_have_landed() -> None:
    lost = UnknownOutcome("sevdesk", "save_voucher: no answer")
    assert isinstance(lost, TransientError) and lost.retryable
    assert not RejectedError("sevdesk", "x").retryable


@pytest.mark.parametrize(
    ("errors", "headline", "fields"),
    [
        ([{"type": "json_invalid", "loc": ("body",), "ctx": {"error": "Expecting value"}}],
         "the body is not valid JSON", ["body"]),
        ([{"type": "missing", "loc": ("body",), "msg": "Field required"}], "a JSON body is required", ["body"]),
        ([{"type": "too_long", "loc": ("body", "orderIds"), "msg": "List should have at most 500 items"}],
         "at most 500 order ids per request; split the request", ["body.orderIds"]),
        ([{"type": "int_parsing", "loc": ("path", "orderId"), "msg": "Input should be a valid integer"},
          {"type": "missing", "loc": ("query", "state"), "msg": "Field required"}],
         "invalid request", ["path.orderId", "query.state"]),
    ],
)
def test_request_problems_name_each_field(errors: list[dict[str, Any]], headline: str, fields: list[str]) -> None:
    got_headline, problems = validation_problems(errors)
    assert got_headline == headline
    assert [p.field for p in problems] == fields


def test_setup_refusals_are_422_and_unreachable_apis_502() -> None:
    refused = SetupReport()
    refused.add("sevdeskToken", False, "sevDesk rejected the API token")
    assert not SetupError(refused).unreachable
    unreachable = SetupReport()
    unreachable.could_not_ask("billbeeCredentials", "Billbee", TransientError("billbee", "503"))
    assert SetupError(unreachable).unreachable
    both = SetupReport()
    both.could_not_ask("billbeeCredentials", "Billbee", TransientError("billbee", "503"))
    both.add("paymentAccount[3]", False, "an online account")
    assert not SetupError(both).unreachable  # something is refused: fix the settings first
