"""The HTTP API over real HTTP: local.serve's API Gateway translation in front of the real ApiFunction handler, on the
local stack (moto + Billbee and sevDesk sandboxes); queued exports are carried out by the real ExportFunction."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_operations import OPERATIONS
from support import ApiClient

from connector.store.records import ExportState
from local.sample_shop import sample_orders
from local.serve import ApiGatewayServer, api_token, serve_stack
from local.stack import LocalStack, load_handler

REPO = Path(__file__).resolve().parents[2]
CONNECTION = json.loads((REPO / "local" / "sample_connection.json").read_text())
CONN = CONNECTION["connectionId"]

BASE = sample_orders()
NO_INVOICE = next(o["BillBeeOrderId"] for o in BASE if not o.get("InvoiceNumber"))
# Orders added to the sample shop for the manual-export cases.
TAGGED = 990000000000001  # already carries the export tag
OUTSIDE = 990000000000002  # state "ordered", unknown shop, created before the start date: the poll never lists it
UNTAGGED = 990000000000003  # exported with setTag false
RETRIED = 990000000000004
BUDGET = [990000000000010 + i for i in range(3)]


def derived(order_id: int, invoice_number: int, **changes: Any) -> dict[str, Any]:
    """A copy of a sample order in state 1 ("ordered"), which the connection does not select: only a manual export
    touches it, whichever test polled before."""
    order = copy.deepcopy(BASE[0])
    order.update(BillBeeOrderId=order_id, Id=f"X{order_id}", OrderNumber=f"#X{order_id}", InvoiceNumber=invoice_number,
                 State=1)
    order.update(changes)
    return order


EXTRA = [
    derived(TAGGED, 9001, Tags=["Sevdesk"]),
    derived(OUTSIDE, 9002, CreatedAt="2026-08-01T10:00:00", Seller={"BillbeeShopId": 9999,
                                                                              "BillbeeShopName": "Elsewhere"}),
    derived(UNTAGGED, 9003),
    derived(RETRIED, 9004),
    *[derived(order_id, 9010 + i) for i, order_id in enumerate(BUDGET)],
]


class Api:
    """The running API: an httpx client with the bearer token, plus the stack behind it."""

    def __init__(self, stack: LocalStack, server: ApiGatewayServer) -> None:
        self.stack = stack
        self.url = server.url
        self.token = api_token(stack)
        self.http = ApiClient(self.url, self.token)

    def export(self, order_ids: list[int], **options: Any) -> httpx.Response:
        return self.http.post(f"/connections/{CONN}/exports", json={"orderIds": order_ids, **options})

    def outcomes(self, response: httpx.Response) -> dict[int, str]:
        assert response.status_code == 202, response.text
        return {o["orderId"]: o["outcome"] for o in response.json()["orders"]}

    def secrets_manager(self) -> Any:
        assert self.stack.aws is not None
        return self.stack.aws.client("secretsmanager")

    def order_tags(self, order_id: int) -> list[str]:
        return list(self.stack.billbee.order(order_id).get("Tags") or [])

    def vouchers_numbered(self, invoice_number: str) -> list[dict[str, Any]]:
        return [v for v in self.stack.sevdesk.dump()["vouchers"] if v["description"] == invoice_number]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with LocalStack(orders=BASE + EXTRA, billbee_rate_limits=False) as stack:
        stack.save_connection(CONNECTION)
        with serve_stack(stack) as server:
            client = Api(stack, server)
            yield client
            client.http.close()


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    text = json.dumps(body).lower()
    for word in words:
        assert word.lower() in text, f"{word!r} not in {body}"
    assert "traceback" not in text
    return dict(body)


# -- authentication --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic dXNlcjpwYXNz"},
     {"Authorization": "Bearer"}],
    ids=["no token", "wrong token", "basic auth", "empty bearer"],
)
@pytest.mark.parametrize(
    "method,path",
    [("GET", "/connections"), ("GET", f"/connections/{CONN}"), ("GET", "/openapi.json"),
     ("POST", f"/connections/{CONN}/exports"), ("DELETE", f"/connections/{CONN}"),
     ("GET", f"/connections/{CONN}/orders?state=EXPORTED")],
)
def test_without_the_right_bearer_token_every_route_answers_401_and_no_data(
    api: Api, headers: dict[str, str], method: str, path: str
) -> None:
    response = httpx.request(method, api.url + path, headers=headers, json={"orderIds": [UNTAGGED]})
    body = assert_error(response, 401, "bearer token")
    assert set(body) == {"error"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert api.stack.runtime.store.get_connection(CONN) is not None  # the DELETE did nothing


def test_the_openapi_document_describes_every_route_and_the_bearer_scheme(api: Api) -> None:
    response = api.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    operations = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert operations == set(OPERATIONS)
    assert document["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerToken": []}]
    export_body = document["components"]["schemas"]["ExportBody"]
    assert export_body["properties"]["orderIds"]["maxItems"] == 500
    assert export_body["additionalProperties"] is False
    # Validation problems are answered with 400 and ErrorBody, never with powertools' 422 HTTPValidationError.
    assert "HTTPValidationError" not in json.dumps(document)


def test_the_bearer_scheme_name_is_case_insensitive(api: Api) -> None:
    response = httpx.get(f"{api.url}/connections", headers={"Authorization": f"bearer {api.token}"})
    assert response.status_code == 200


# -- connections -----------------------------------------------------------------------------------------------------
def test_a_connection_is_read_with_its_credentials_masked(api: Api) -> None:
    response = api.http.get(f"/connections/{CONN}")
    assert response.status_code == 200
    body = response.json()
    assert body["connection"]["connectionId"] == CONN
    assert body["connection"]["general"] == CONNECTION["general"]
    mappings = body["connection"]["accounts"]["paymentAccounts"]
    assert all(m in mappings for m in CONNECTION["accounts"]["paymentAccounts"])
    assert "credentials" not in body["connection"]
    assert set(body["credentials"].values()) == {"********"}
    assert body["status"]["state"] == "OK"
    for secret in api.stack.credentials.values():
        assert secret not in response.text
    listed = api.http.get("/connections").json()["connections"]
    assert [c["connectionId"] for c in listed] == [CONN]


def test_put_creates_then_changes_a_connection_and_keeps_the_credentials_in_secrets_manager(api: Api) -> None:
    body = api.stack.connection_body({**CONNECTION, "connectionId": "second-shop", "name": "Second"})
    created = api.http.put("/connections/second-shop", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    assert created.json()["setup"]["ok"] is True
    assert {c["check"] for c in created.json()["setup"]["checks"]} >= {"billbeeCredentials", "sevdeskToken",
                                                                      "bookkeepingVersion"}
    for secret in api.stack.credentials.values():
        assert secret not in created.text
    stored = api.stack.runtime.store.get_connection("second-shop")
    assert stored is not None and stored.settings.credentials is None  # never in DynamoDB
    secret = api.secrets_manager().get_secret_value(SecretId=stored.secret_id)["SecretString"]
    assert json.loads(secret) == api.stack.credentials

    # Without credentials the stored ones are kept (and checked again).
    changed = api.http.put("/connections/second-shop", json={**CONNECTION, "connectionId": "second-shop",
                                                              "name": "Second, renamed"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["created"] is False
    assert api.http.get("/connections/second-shop").json()["connection"]["name"] == "Second, renamed"

    removed = api.http.delete("/connections/second-shop")
    assert removed.status_code == 200
    assert_error(api.http.get("/connections/second-shop"), 404, "second-shop")
    assert_error(api.http.delete("/connections/second-shop"), 404, "second-shop")
    assert api.stack.runtime.store.get_connection("second-shop") is None
    names = [s["Name"] for s in api.secrets_manager().list_secrets()["SecretList"]]
    assert stored.secret_id not in names


def test_put_runs_the_setup_checks_first_and_writes_nothing_when_the_sevdesk_token_is_wrong(api: Api) -> None:
    body = api.stack.connection_body({**CONNECTION, "connectionId": "broken-shop"})
    body["credentials"]["sevdeskApiToken"] = "0" * 32
    response = api.http.put("/connections/broken-shop", json=body)
    error = assert_error(response, 422, "sevdeskToken", "not saved")
    assert error["setup"]["ok"] is False
    assert "0" * 32 not in response.text
    assert api.stack.runtime.store.get_connection("broken-shop") is None
    names = [s["Name"] for s in api.secrets_manager().list_secrets()["SecretList"]]
    assert not any(name.endswith("broken-shop") for name in names)


def test_put_refuses_a_payment_method_mapped_to_a_bank_account(api: Api) -> None:
    body = api.stack.connection_body({**CONNECTION, "connectionId": "bank-shop"})
    body["accounts"]["paymentAccounts"] = [{"paymentMethod": 3, "checkAccountId": 5001}]
    error = assert_error(api.http.put("/connections/bank-shop", json=body), 422, "paymentMethod 3", "offline")
    assert [c["check"] for c in error["setup"]["checks"] if not c["ok"]] == ["paymentAccount[paymentMethod 3]"]
    assert_error(api.http.get("/connections/bank-shop"), 404)


@pytest.mark.parametrize(
    "change,status,words",
    [
        ({"connectionId": "other-id"}, 400, ["connectionId", "path"]),
        ({"colour": "blue"}, 400, ["body.colour", "extra"]),
        ({"general": {"startDate": "2026-10-01", "orderStateIds": "3"}}, 400, ["body.general.orderStateIds"]),
        ({"general": {"startDate": "2999-01-01", "orderStateIds": [3]}}, 400, ["startDate", "future"]),
        ({"general": {"startDate": "2026-10-01", "orderStateIds": [99]}}, 400, ["unknown Billbee order state"]),
        ({"exportTag": "<script>"}, 400, ["body.exportTag"]),
        ({"enabled": "yes"}, 400, ["body.enabled", "boolean"]),
        ({"general": {"startDate": "2026-10-01", "orderStateIds": ["3"]}}, 400, ["body.general.orderStateIds.0"]),
    ],
    ids=["other id", "unknown field", "wrong type", "future start", "unknown state", "bad tag", "string flag",
         "string state"],
)
def test_put_rejects_bad_settings_with_a_400_naming_the_field(
    api: Api, change: dict[str, Any], status: int, words: list[str]
) -> None:
    body = api.stack.connection_body({**CONNECTION, "connectionId": "bad-shop"})
    body.update(change)
    assert_error(api.http.put("/connections/bad-shop", json=body), status, *words)
    assert api.stack.runtime.store.get_connection("bad-shop") is None


def test_a_new_connection_needs_credentials(api: Api) -> None:
    body = {**CONNECTION, "connectionId": "no-secret-shop"}
    assert_error(api.http.put("/connections/no-secret-shop", json=body), 400, "credentials are required")
    assert api.stack.runtime.store.get_connection("no-secret-shop") is None


# -- setup options and payment accounts ------------------------------------------------------------------------------
def test_setup_options_list_what_the_three_tabs_need(api: Api) -> None:
    response = api.http.get(f"/connections/{CONN}/setup-options")
    assert response.status_code == 200, response.text
    options = response.json()
    assert {s["id"] for s in options["billbee"]["shops"]} == {1001, 1002, 9999}  # the sandbox lists the orders' shops
    assert {3, 4, 7} <= {s["id"] for s in options["billbee"]["orderStates"]}
    assert 3 in {p["id"] for p in options["billbee"]["paymentTypes"]}
    accounts = {a["id"]: a for a in options["sevdesk"]["paymentAccounts"]}
    assert {5101, 5102, 5103, 5104, 5105, 5106, 5199} <= set(accounts)
    assert 5001 not in accounts  # a bank account cannot be booked on
    assert {a["type"] for a in accounts.values()} <= {"offline", "register"}
    revenue = {r["accountDatevId"]: r for r in options["sevdesk"]["revenueAccounts"]}
    rule_1 = next(r for r in revenue[3631]["allowedTaxRules"] if r["taxRule"] == 1)
    assert "19" in rule_1["taxRates"]


def test_a_clearing_account_is_created_per_payment_method_and_mapped(api: Api) -> None:
    response = api.http.post(f"/connections/{CONN}/payment-accounts",
                             json={"paymentMethod": 31, "name": "Kreditkarte BB"})
    assert response.status_code == 201, response.text
    created = response.json()
    account_id = created["checkAccount"]["id"]
    assert created["created"] is True and created["checkAccount"]["type"] == "offline"
    sevdesk_accounts = {int(a["id"]): a for a in api.stack.sevdesk.dump()["checkAccounts"]}
    assert sevdesk_accounts[account_id]["name"] == "Kreditkarte BB"
    mapping = api.http.get(f"/connections/{CONN}").json()["connection"]["accounts"]["paymentAccounts"]
    assert {"paymentMethod": 31, "checkAccountId": account_id} in mapping

    # The method is mapped now: a second account for it is refused.
    assert_error(api.http.post(f"/connections/{CONN}/payment-accounts",
                               json={"paymentMethod": 31, "name": "Kreditkarte 2"}), 409, "mapped")
    # An account of the same name is reused, not duplicated.
    reused = api.http.post(f"/connections/{CONN}/payment-accounts",
                           json={"paymentMethod": 32, "name": "Kreditkarte BB"})
    assert reused.status_code == 201
    assert reused.json()["created"] is False and reused.json()["checkAccount"]["id"] == account_id
    names = [a["name"] for a in api.stack.sevdesk.dump()["checkAccounts"]]
    assert names.count("Kreditkarte BB") == 1


@pytest.mark.parametrize(
    "body,words",
    [({"paymentMethod": 5, "name": "X"}, ["unknown Billbee payment method"]),
     ({"paymentMethod": "3", "name": "X"}, ["body.paymentMethod"]),
     ({"paymentMethod": 33, "name": "   "}, ["body.name"])],
    ids=["unknown method", "string method", "blank name"],
)
def test_a_payment_account_request_with_bad_fields_is_refused(api: Api, body: dict[str, Any], words: list[str]) -> None:
    before = len(api.stack.sevdesk.dump()["checkAccounts"])
    assert_error(api.http.post(f"/connections/{CONN}/payment-accounts", json=body), 400, *words)
    assert len(api.stack.sevdesk.dump()["checkAccounts"]) == before


# -- manual export ---------------------------------------------------------------------------------------------------
def test_an_already_tagged_order_is_skipped_when_only_untagged_is_on(api: Api) -> None:
    response = api.export([TAGGED], onlyUntagged=True)
    assert api.outcomes(response) == {TAGGED: "skippedTagged"}
    assert "Sevdesk" in response.json()["orders"][0]["detail"]
    api.stack.drain()
    assert api.stack.record(CONN, TAGGED) is None
    assert api.vouchers_numbered("RE-2026-9001") == []


def test_with_set_tag_false_an_order_is_exported_and_stays_untagged(api: Api) -> None:
    assert api.outcomes(api.export([UNTAGGED], setTag=False)) == {UNTAGGED: "queued"}
    api.stack.drain()
    record = api.http.get(f"/connections/{CONN}/orders/{UNTAGGED}").json()
    assert record["state"] == "EXPORTED", record
    assert record["setTag"] is False and record["tagged"] is False
    assert record["origin"] == "manual"
    assert [v["id"] for v in api.vouchers_numbered("RE-2026-9003")] == [record["voucherId"]]
    assert api.order_tags(UNTAGGED) == []


def test_an_order_outside_the_connections_filters_is_exported_manually(api: Api) -> None:
    api.stack.poll()
    api.stack.drain()
    assert api.stack.record(CONN, OUTSIDE) is None  # the hourly run never picks it
    assert api.outcomes(api.export([OUTSIDE])) == {OUTSIDE: "queued"}
    api.stack.drain()
    record = api.http.get(f"/connections/{CONN}/orders/{OUTSIDE}").json()
    assert record["state"] == "EXPORTED", record
    assert record["tagged"] is True
    assert "Sevdesk" in api.order_tags(OUTSIDE)
    assert len(api.vouchers_numbered("RE-2026-9002")) == 1
    # An order exported once is never exported twice, whatever the request says.
    again = api.export([OUTSIDE], onlyUntagged=False)
    assert api.outcomes(again) == {OUTSIDE: "alreadyExported"}
    assert again.json()["orders"][0]["voucherId"] == record["voucherId"]
    api.stack.drain()
    assert len(api.vouchers_numbered("RE-2026-9002")) == 1


def test_unknown_uninvoiced_and_repeated_orders_each_get_one_outcome(api: Api) -> None:
    response = api.export([123, NO_INVOICE, 123])
    assert [o["orderId"] for o in response.json()["orders"]] == [123, NO_INVOICE]
    assert api.outcomes(response) == {123: "unknownOrder", NO_INVOICE: "skippedNoInvoice"}
    assert response.json()["counts"] == {"unknownOrder": 1, "skippedNoInvoice": 1}
    assert response.json()["resend"] == []
    assert api.stack.billbee.invoices_created == []  # no invoice was created as a side effect


def test_more_than_500_order_ids_are_refused_saying_so(api: Api) -> None:
    error = assert_error(api.export(list(range(1, 502))), 400, "at most 500 order ids")
    assert error["problems"][0]["field"] == "body.orderIds"


def test_a_connection_in_error_accepts_no_manual_export(api: Api) -> None:
    store = api.stack.runtime.store
    store.set_connection_status(CONN, "ERROR", "sevDesk rejected the API token")
    try:
        assert_error(api.export([UNTAGGED]), 409, "in error", "sevDesk rejected the API token")
    finally:
        store.set_connection_status(CONN, "OK", None)


def test_a_request_beyond_its_time_budget_answers_not_checked_and_the_resend_finishes(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANUAL_EXPORT_SECONDS", "0")
    impatient = load_handler("api")  # the real handler, configured with a zero budget
    with ApiGatewayServer(impatient.handler) as server:
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api.token}"}, timeout=60)
        pending = list(BUDGET)
        rounds = 0
        while pending:
            rounds += 1
            response = client.post(f"/connections/{CONN}/exports", json={"orderIds": pending})
            outcomes = api.outcomes(response)
            assert list(outcomes.values()).count("queued") == 1  # at least one order per request: progress
            assert response.json()["resend"] == [i for i, o in outcomes.items() if o == "notChecked"]
            pending = response.json()["resend"]
        client.close()
    assert rounds == len(BUDGET)
    api.stack.drain()
    assert {api.stack.record(CONN, i).state.value for i in BUDGET} == {"EXPORTED"}


# -- records, paging, retry ------------------------------------------------------------------------------------------
def test_records_of_one_state_are_listed_page_by_page(api: Api) -> None:
    api.stack.poll()
    api.stack.drain()
    expected = {r.order_id for r in api.stack.records(CONN) if r.state.value == "EXPORTED"}
    assert len(expected) > 5
    seen: list[int] = []
    params: dict[str, Any] = {"state": "EXPORTED", "limit": 4}
    for _ in range(50):
        page = api.http.get(f"/connections/{CONN}/orders", params=params)
        assert page.status_code == 200, page.text
        assert all(o["state"] == "EXPORTED" for o in page.json()["orders"])
        seen += [o["orderId"] for o in page.json()["orders"]]
        if page.json()["next"] is None:
            break
        params["next"] = page.json()["next"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "query,words",
    [("state=BOGUS", ["query.state"]), ("", ["query.state", "required"]), ("state=FAILED&limit=0", ["query.limit"]),
     ("state=FAILED&limit=x", ["query.limit"]), ("state=FAILED&next=not-a-token", ["next"])],
    ids=["unknown state", "no state", "limit 0", "limit text", "garbage token"],
)
def test_a_bad_list_query_is_a_400_naming_the_parameter(api: Api, query: str, words: list[str]) -> None:
    assert_error(api.http.get(f"/connections/{CONN}/orders?{query}"), 400, *words)


def test_a_paging_token_of_another_list_is_refused(api: Api) -> None:
    key = {"PK": "CONN#other-shop", "SK": "ORDER#1", "GSI1PK": "CONN#other-shop#STATE#EXPORTED", "GSI1SK": "x#1"}
    token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
    assert_error(api.http.get(f"/connections/{CONN}/orders", params={"state": "EXPORTED", "next": token}), 400,
                 "paging token")


def test_a_failed_order_is_retried_and_an_exported_one_is_not(api: Api) -> None:
    api.export([RETRIED])
    store = api.stack.runtime.store
    record = store.get_order(CONN, RETRIED)
    record.state, record.attempts, record.last_error = ExportState.FAILED, 8, "sevdesk: server error"
    store.save(record)
    failed = api.http.get(f"/connections/{CONN}/orders", params={"state": "FAILED"}).json()["orders"]
    assert RETRIED in [o["orderId"] for o in failed]

    response = api.http.post(f"/connections/{CONN}/orders/{RETRIED}/retry")
    assert response.status_code == 202 and response.json() == {"orderId": RETRIED, "outcome": "queued"}
    api.stack.drain()
    assert api.http.get(f"/connections/{CONN}/orders/{RETRIED}").json()["state"] == "EXPORTED"
    assert_error(api.http.post(f"/connections/{CONN}/orders/{RETRIED}/retry"), 409, "EXPORTED")
    assert_error(api.http.post(f"/connections/{CONN}/orders/424242/retry"), 404, "424242")


# -- bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content,words",
    [
        (b'{"orderIds": [1', ["not valid JSON"]),
        (b"", ["JSON body is required"]),
        (b"[1, 2]", ["body"]),
        (b'{"orderIds": ["300000181401940"]}', ["body.orderIds.0", "integer"]),
        (b'{"orderIds": [1.5]}', ["body.orderIds.0"]),
        (b'{"orderIds": []}', ["body.orderIds"]),
        (b'{"orderIds": [-4]}', ["body.orderIds.0"]),
        (b'{"orderIds": [1], "setTag": "no"}', ["body.setTag"]),
        (b'{"orderIds": [1], "tag": true}', ["body.tag", "extra"]),
        (b'{"orderIds": [' + b"9" * 5000 + b"]}", ["not valid JSON"]),
        (b'{"orderIds": [99999999999999999999999]}', ["body.orderIds.0"]),
        (b"[" * 100_000 + b"]" * 100_000, ["not valid JSON"]),
        ("{\"orderIds\": [1]}".encode("utf-16"), ["UTF-8"]),
    ],
    ids=["truncated", "empty", "array", "string id", "float id", "no ids", "negative id", "string flag",
         "unknown field", "5000 digits", "beyond int64", "deep nesting", "utf-16"],
)
def test_a_bad_export_body_is_a_400_naming_the_problem(api: Api, content: bytes, words: list[str]) -> None:
    response = api.http.post(f"/connections/{CONN}/exports", content=content,
                             headers={"Content-Type": "application/json"})
    assert_error(response, 400, *words)


def test_an_oversized_body_is_refused_with_413(api: Api) -> None:
    body = json.dumps({"orderIds": [1], "padding": "x" * 300_000})
    assert_error(api.http.post(f"/connections/{CONN}/exports", content=body), 413, "larger than")


def test_curl_style_form_content_type_is_read_as_json(api: Api) -> None:
    response = api.http.post(f"/connections/{CONN}/exports", content=json.dumps({"orderIds": [123]}),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert api.outcomes(response) == {123: "unknownOrder"}


def test_a_binary_body_is_decoded_the_way_api_gateway_encodes_it(api: Api) -> None:
    response = api.http.post(f"/connections/{CONN}/exports", content=json.dumps({"orderIds": [123]}),
                             headers={"Content-Type": "application/octet-stream"})
    assert api.outcomes(response) == {123: "unknownOrder"}


@pytest.mark.parametrize(
    "method,path,status,words",
    [
        ("GET", "/connections/no-such-shop", 404, ["no-such-shop"]),
        ("GET", "/connections/no-such-shop/setup-options", 404, ["no-such-shop"]),
        ("POST", "/connections/no-such-shop/exports", 404, ["no-such-shop"]),
        ("GET", f"/connections/{CONN}/orders/424242", 404, ["424242"]),
        ("GET", f"/connections/{CONN}/orders/42x", 400, ["path.orderId"]),
        ("GET", f"/connections/{CONN}/orders/0", 400, ["path.orderId"]),
        ("GET", "/connections/Demo_Shop", 400, ["path.connectionId"]),
        ("PATCH", f"/connections/{CONN}", 404, ["no route"]),
        ("GET", f"/connections/{CONN}/nothing-here", 404, ["no route"]),
        ("GET", "/elsewhere", 404, ["not found"]),
    ],
)
def test_unknown_things_and_malformed_paths_are_4xx_json(
    api: Api, method: str, path: str, status: int, words: list[str]
) -> None:
    response = api.http.request(method, path, json={"orderIds": [1]} if method == "POST" else None)
    assert_error(response, status, *words)


def test_the_handler_never_leaks_a_stack_trace_even_when_it_fails(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (here: DynamoDB failing) becomes a 500 with a generic message; the details stay in the log."""
    server_runtime = load_handler("api")
    app = server_runtime.api

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret detail: table on fire")

    monkeypatch.setattr(app.runtime.store, "list_connections", explode)
    with ApiGatewayServer(server_runtime.handler) as server:
        response = httpx.get(f"{server.url}/connections", headers={"Authorization": f"Bearer {api.token}"})
    body = assert_error(response, 500, "internal error")
    assert "table on fire" not in response.text and set(body) == {"error"}

