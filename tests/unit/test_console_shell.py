"""The console's pure parts: which files the shell consists of and the headers they carry, and "why was this order
not exported?" from a record or from Billbee's order and the connection's filters."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from support import connection_settings

from connector.api.app import ApiApp
from connector.billbee.models import Order
from connector.console import CONTENT_SECURITY_POLICY, console_asset, console_response, is_console_path
from connector.pipeline.explain import Verdict, explain_record, explain_unrecorded
from connector.store.records import ExportState, OrderRecord
from local.sample_shop import sample_orders

SETTINGS = connection_settings()  # states 3, 4, 7; shops 1001, 1002; manual orders in; start 2026-10-01


# -- the shell ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,content_type", [
    ("/console", "text/html"), ("/console/", "text/html"), ("/console/console.js", "text/javascript"),
    ("/console/i18n.js", "text/javascript"), ("/console/console.css", "text/css"),
])
def test_each_file_of_the_shell_is_served_with_its_type(path: str, content_type: str) -> None:
    asset = console_asset("GET", path)
    assert asset.status == 200 and asset.content_type.startswith(content_type) and asset.body


@pytest.mark.parametrize("path", ["/console/../app.py", "/console/static/index.html", "/console/__init__.py",
                                  "/console/index.html.bak", "/console/x"])
def test_nothing_but_the_shell_files_is_served(path: str) -> None:
    assert console_asset("GET", path).status == 404


def test_a_write_to_the_console_is_refused() -> None:
    answer = console_response("POST", "/console")
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "GET, HEAD"


def test_the_shell_forbids_inline_script_framing_and_foreign_sources() -> None:
    headers = console_response("GET", "/console")["headers"]
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_html_loads_no_inline_script_and_nothing_from_elsewhere() -> None:
    html = console_asset("GET", "/console").body
    assert "<script>" not in html and "onclick" not in html and "style=" not in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.parametrize("path,expected", [("/console", True), ("/console/a.js", True), ("/consoles", False),
                                           ("/connections", False), ("/", False)])
def test_only_console_paths_bypass_the_token(path: str, expected: bool) -> None:
    assert is_console_path(path) is expected


def test_the_api_answers_a_console_path_before_asking_for_the_token() -> None:
    class NoRuntime:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("the console must not touch the runtime (no token, no data)")

    api = ApiApp.__new__(ApiApp)
    api.runtime = NoRuntime()  # type: ignore[assignment]
    api.context = type("Ctx", (), {"clock": staticmethod(lambda: 0.0), "started": 0.0})()
    event = {"requestContext": {"http": {"method": "GET", "path": "/console"}}, "headers": {}}
    assert api.handle(event, None)["statusCode"] == 200
    api_event: dict[str, Any] = {"requestContext": {"http": {"method": "GET", "path": "/connections"}}, "headers": {}}
    assert api.handle(api_event, None)["statusCode"] == 401
    api._token = None
    api_event["headers"] = {"Authorization": "Bearer guess"}
    assert api.handle(api_event, None)["statusCode"] == 500  # it went for the token: the runtime was asked


# -- why not exported: records -----------------------------------------------------------------------------------
def record(state: ExportState, **changes: Any) -> OrderRecord:
    made = OrderRecord(connection_id="demo-shop", order_id=1, state=state, order={})
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def test_an_exported_order_names_its_voucher() -> None:
    done = record(ExportState.EXPORTED)
    done.steps.voucher_id = "777"
    explained = explain_record(done, max_attempts=8)
    assert explained.verdict is Verdict.EXPORTED and "voucher 777" in explained.reason


def test_a_failed_order_gives_its_last_error_and_attempts_and_says_it_is_tried_again() -> None:
    explained = explain_record(record(ExportState.FAILED, attempts=3, last_error="sevdesk: 503"), max_attempts=8)
    assert explained.verdict is Verdict.NOT_EXPORTED
    assert "3 of 8 attempts" in explained.reason and "sevdesk: 503" in explained.reason
    assert explained.what_to_do is not None and "Retry" in explained.what_to_do


def test_an_order_needing_attention_gives_the_bookkeepers_reason() -> None:
    explained = explain_record(record(ExportState.NEEDS_ATTENTION, reason="no revenue account for 7 %"),
                               max_attempts=8)
    assert explained.reason == "no revenue account for 7 %" and explained.what_to_do


def test_a_skipped_order_without_invoice_says_to_create_the_invoice() -> None:
    explained = explain_record(record(ExportState.SKIPPED, reason="no invoice yet"), max_attempts=8)
    assert explained.what_to_do is not None and "invoice in Billbee" in explained.what_to_do


@pytest.mark.parametrize("state", [ExportState.PENDING, ExportState.EXPORTING])
def test_a_queued_order_is_in_progress(state: ExportState) -> None:
    assert explain_record(record(state), max_attempts=8).verdict is Verdict.IN_PROGRESS


def test_an_order_booked_by_hand_says_by_whom() -> None:
    explained = explain_record(record(ExportState.HANDLED, handled={"by": "Steuerbüro", "note": "von Hand"}),
                               max_attempts=8)
    assert explained.verdict is Verdict.EXPORTED and "Steuerbüro" in explained.reason


# -- why not exported: orders without a record -------------------------------------------------------------------
def order(**changes: Any) -> Order:
    raw = copy.deepcopy(sample_orders()[0])  # state 7, shop 1001, invoiced, created 2026-10-02
    raw.update(changes)
    return Order.model_validate(raw)


@pytest.mark.parametrize("changes,words", [
    ({"State": 1}, "not one of the connection's states"),
    ({"CreatedAt": "2026-09-01T10:00:00"}, "start date"),
    ({"Seller": {"BillbeeShopId": 9999, "BillbeeShopName": "Elsewhere"}}, "shop 9999"),
    ({"Tags": ["sevdesk"]}, "export tag"),
    ({"InvoiceNumber": None}, "no invoice yet"),
])
def test_an_order_the_poll_leaves_out_names_the_filter(changes: dict[str, Any], words: str) -> None:
    explained = explain_unrecorded(order(**changes), SETTINGS)
    assert explained.verdict is Verdict.NOT_EXPORTED and words in explained.reason
    assert explained.what_to_do


def test_a_matching_order_is_exported_by_the_next_run_unless_the_connection_is_disabled() -> None:
    assert explain_unrecorded(order(), SETTINGS).verdict is Verdict.IN_PROGRESS
    disabled = connection_settings(enabled=False)
    assert "disabled" in explain_unrecorded(order(), disabled).reason


def test_an_order_billbee_does_not_have_or_cannot_be_read_says_so() -> None:
    assert "no order with this id" in explain_unrecorded(None, SETTINGS).reason
    unreadable = explain_unrecorded(None, SETTINGS, unreadable="CreatedAt: 'yesterday' is no date")
    assert "cannot be read" in unreadable.reason and "yesterday" in unreadable.reason


def test_the_sample_settings_start_where_the_tests_assume() -> None:
    assert SETTINGS.general.start_date == date(2026, 10, 1) and SETTINGS.general.order_state_ids == [3, 4, 7]


def test_the_page_script_never_parses_data_as_html() -> None:
    """The console writes every value as text (console.js ``el()``); these are the ways a value could become markup."""
    for name in ("console.js", "i18n.js"):
        script = console_asset("GET", f"/console/{name}").body
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in script, f"{name} uses {sink}"


# -- credentials typed into the console ---------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["billbeeApiKey", "sevdeskApiToken"])
def test_a_key_or_token_that_cannot_travel_in_a_header_is_refused_with_its_field_and_never_its_value(
    field: str,
) -> None:
    from pydantic import ValidationError

    from connector.settings.model import Credentials

    values = {"billbeeApiKey": "k" * 32, "billbeeUsername": "shop@example.com", "billbeeApiPassword": "pässwort",
              "sevdeskApiToken": "t" * 32, field: "schlüssel-ö"}
    with pytest.raises(ValidationError) as raised:
        Credentials.model_validate(values)
    assert "ASCII" in str(raised.value) and "schlüssel" not in str(raised.value)
    # a user name and password go base64-encoded: any character is fine there
    Credentials.model_validate({**values, field: "a" * 32})


def test_every_text_is_there_in_german_and_in_english() -> None:
    """i18n.js: the same keys in both languages, so the English switch never falls back to German (or to a key)."""
    import re

    texts = console_asset("GET", "/console/i18n.js").body
    german, english = texts.split("\n  en: {", 1)
    keys = [set(re.findall(r"^    (\w+): ", part, flags=re.MULTILINE)) for part in (german, english)]
    assert keys[0] == keys[1] and len(keys[0]) > 200
    for key in ("tabReconciliation", "recVerdict_doesNotReconcile", "progressNoRate", "durHours"):
        assert key in keys[0]
