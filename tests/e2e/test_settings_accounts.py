"""Billbee's "Accounts" tab and the bookkeeping promises around it, end to end on the local stack (issue 3).

Payment method -> offline account, revenue accounts checked against sevDesk's receipt guidance, tax rules from
Billbee's VatMode, gross per rate to the cent, the invoice PDF on every voucher, orders without an invoice, and the
validation of the settings themselves (through the real HTTP API handler: nothing is ever saved half).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from settings_support import ORDERS, REPO, calls, connection, local_stack, orders, run_once, vouchers

from local.lambda_sqs import FakeContext
from local.sandbox.invoices import invoice_for, printed_invoice_number
from local.stack import LocalStack, load_handler

pytestmark = pytest.mark.slow  # each test runs the whole local stack

# One sample order per mapped payment method (local/sample_shop.py) and the account sample_connection.json maps it to.
ORDER_BY_METHOD = {
    3: (300000181401940, 5101),  # PayPal -> "PayPal BB"
    59: (300000181404769, 5102),  # Vorkasse -> "Vorkasse BB"
    26: (300000181403826, 5103),  # Rechnung -> "Rechnung BB"
    98: (300000181409484, 5104),  # Klarna -> "Klarna BB"
    63: (300000181411370, 5105),  # Stripe -> "Stripe BB"
    62: (300000181402883, 5106),  # Amazon Pay -> "Amazon Pay BB"
}
NORMAL = 300000181401940  # VatMode 0: 19 % + 7 % items and shipping
INTRA_EU = 300000181408541  # VatMode 2: Naturschön Handels GmbH, Vienna
EXPORT = 300000181419911  # VatMode 3: export to a third country
LINE_DISCOUNT = 300000181406655  # manual order, a 10 % line discount, shipping 6.90
COUPON = 300000181415142  # a coupon line and shipping
COUPON_MIXED = 300000181424626  # two 19 % lines, a coupon and shipping
MIXED_THREE = 300000181432170  # 19 %, 19 % and 7 % lines and shipping
SPLIT_PAYMENT = 300000181412313  # 19 % + 7 % + 7 %, gift card and PayPal
NOT_INVOICED = 300000181444483  # paid, but Billbee has not issued its invoice yet
ONLINE_ACCOUNT, MISSING_ACCOUNT = 5001, 987654


# -- helpers of this file (the shared ones are in settings_support.py) -----------------------------------------------


def variant(order_id: int, new_id: int, invoice_number: int, **changes: Any) -> dict[str, Any]:
    """A copy of a sample order under a new id and invoice number, with some fields changed."""
    order = copy.deepcopy(ORDERS[order_id])
    order.update(BillBeeOrderId=new_id, Id=str(new_id), OrderNumber=f"V-{new_id}", InvoiceNumber=invoice_number)
    order.update(changes)
    return order


def voucher_of(stack: LocalStack, order: int | dict[str, Any]) -> dict[str, Any]:
    raw = ORDERS[order] if isinstance(order, int) else order
    return vouchers(stack)[printed_invoice_number(raw)]


def failed_checks(error: Exception) -> dict[str, str]:
    return {c.name: c.detail for c in error.report.checks if not c.ok}  # type: ignore[attr-defined]


def nothing_saved(stack: LocalStack, connection_id: str = "demo-shop") -> bool:
    secrets = stack.client("secretsmanager").list_secrets()["SecretList"]
    return stack.runtime.store.get_connection(connection_id) is None and not any(
        s["Name"].endswith(f"/{connection_id}") for s in secrets
    )


# -- payment method -> offline account ------------------------------------------------------------------------------
def test_each_payment_is_booked_on_the_offline_account_mapped_to_its_payment_method() -> None:
    with local_stack(orders(*(order_id for order_id, _ in ORDER_BY_METHOD.values()))) as stack:
        stack.save_connection(connection())
        run_once(stack)

        for method, (order_id, account) in ORDER_BY_METHOD.items():
            voucher = voucher_of(stack, order_id)
            assert [int(b["checkAccount"]["id"]) for b in voucher["bookings"]] == [account], method
            assert voucher["status"] == "1000"
        booked_accounts = {int(e.request_body["checkAccount"]["id"]) for e in calls(stack, "book_amount")}
        types = {int(a["id"]): a["type"] for a in stack.sevdesk.dump()["checkAccounts"]}
        assert {types[a] for a in booked_accounts} == {"offline"}


def test_a_changed_mapping_books_the_next_orders_on_the_new_account() -> None:
    with local_stack(orders(300000181401940, 300000181407598)) as stack:  # two PayPal orders
        stack.save_connection(connection(general={"startDate": "2026-10-06"}))
        run_once(stack)
        mapping = [{"paymentMethod": 3, "checkAccountId": 5199}]
        stack.save_connection(connection(general={"startDate": "2026-10-01"}, accounts={"paymentAccounts": mapping}))
        run_once(stack)

        assert [b["checkAccount"]["id"] for b in voucher_of(stack, 300000181407598)["bookings"]] == ["5101"]
        assert [b["checkAccount"]["id"] for b in voucher_of(stack, 300000181401940)["bookings"]] == ["5199"]


def test_a_mapping_to_an_online_bank_account_is_refused_at_setup() -> None:
    from connector.pipeline.setup import SetupError

    as_payment_account = connection()
    as_payment_account["accounts"]["paymentAccounts"][0] = {"paymentMethod": 3, "checkAccountId": ONLINE_ACCOUNT}
    as_default_account = connection(sevdesk={"defaultCheckAccountId": ONLINE_ACCOUNT})
    cases = [
        (as_payment_account, "paymentAccount[paymentMethod 3]"),
        (as_default_account, "paymentAccount[defaultCheckAccountId]"),
    ]
    with local_stack(orders(NORMAL)) as stack:
        for body, label in cases:
            with pytest.raises(SetupError) as refused:
                stack.save_connection(body)

            failed = failed_checks(refused.value)
            assert list(failed) == [label]
            assert "5001" in failed[label] and "bank" in failed[label] and "offline" in failed[label]
            assert nothing_saved(stack)


def test_a_mapping_to_an_archived_offline_account_is_refused_at_setup_like_a_bank_account() -> None:
    """An archived account (status 0) takes no bookings: refused at setup, not found out at the first booking
    (issue 8, item 12)."""
    from connector.pipeline.setup import SetupError

    with local_stack(orders(NORMAL)) as stack:
        stack.sevdesk.archive_check_account(5101)
        with pytest.raises(SetupError) as refused:
            stack.save_connection(connection())
        failed = failed_checks(refused.value)
        assert list(failed) == ["paymentAccount[paymentMethod 3]"]
        assert "5101" in failed["paymentAccount[paymentMethod 3]"] and "archived" in failed[
            "paymentAccount[paymentMethod 3]"]
        assert nothing_saved(stack)


def test_setup_lists_the_offline_accounts_and_creates_one_per_payment_method() -> None:
    bank_transfer = 300000181429341  # paid by bank transfer (method 1), which the sample connection does not map
    with local_stack(orders(bank_transfer)) as stack:
        api = Api(stack)
        body = connection(sevdesk={"bookUnassignedPaymentsAsDefault": False})
        body["credentials"] = dict(stack.credentials)
        assert api.call("PUT", "/connections/demo-shop", body)[0] == 201

        status, options = api.call("GET", "/connections/demo-shop/setup-options")
        assert status == 200, options
        listed = {a["id"]: a["type"] for a in options["sevdesk"]["paymentAccounts"]}
        assert ONLINE_ACCOUNT not in listed  # the bank account cannot be booked by the connector
        assert {5101, 5102, 5103, 5104, 5105, 5106, 5199} <= set(listed)
        assert set(listed.values()) <= {"offline", "register"}

        status, created = api.call(
            "POST", "/connections/demo-shop/payment-accounts", {"paymentMethod": 1, "name": "Überweisung BB"}
        )
        assert status == 201, created
        account_id = created["checkAccount"]["id"]
        in_sevdesk = {int(a["id"]): a for a in stack.sevdesk.dump()["checkAccounts"]}
        assert in_sevdesk[account_id]["name"] == "Überweisung BB" and in_sevdesk[account_id]["type"] == "offline"
        settings = stack.runtime.store.get_connection("demo-shop").settings
        assert settings.accounts.check_account_for(1) == account_id
        assert api.call("POST", "/connections/demo-shop/payment-accounts",
                        {"paymentMethod": 1, "name": "Überweisung BB"})[0] == 409  # mapped already: nothing twice

        run_once(stack)
        assert [int(b["checkAccount"]["id"]) for b in voucher_of(stack, bank_transfer)["bookings"]] == [account_id]


# -- revenue accounts -----------------------------------------------------------------------------------------------
REVENUE_MISTAKES = [
    # (the mapping, the setup check that refuses it, what it says)
    ({"taxRule": 1, "taxRate": "19", "accountDatevId": 3632}, "revenueAccount[rule 1 19 %]",
     "does not allow 19 % under tax rule 1"),  # 19 % on the 7 % account
    ({"taxRule": 3, "taxRate": "0", "accountDatevId": 3631}, "revenueAccount[rule 3 0 %]",
     "does not allow tax rule 3"),  # intra-EU supplies on a domestic account
    ({"taxRule": 1, "taxRate": "19", "accountDatevId": MISSING_ACCOUNT}, "revenueAccount[rule 1 19 %]",
     "is not a revenue account"),  # an id this sevDesk account does not have
    ({"taxRule": 1, "taxRate": "19", "accountDatevId": 4285}, "revenueAccount[rule 1 19 %]",
     "is not a revenue account"),  # an expense account: forRevenue does not list it
]


def test_revenue_accounts_are_checked_against_sevdesks_receipt_guidance_at_setup() -> None:
    from connector.pipeline.setup import SetupError

    with local_stack(orders(NORMAL)) as stack:
        for mapping, label, words in REVENUE_MISTAKES:
            body = connection()
            body["accounts"]["revenueAccounts"] = [
                m for m in body["accounts"]["revenueAccounts"]
                if (m["taxRule"], m["taxRate"]) != (mapping["taxRule"], mapping["taxRate"])
            ] + [mapping]
            with pytest.raises(SetupError) as refused:
                stack.save_connection(body)

            failed = failed_checks(refused.value)
            assert list(failed) == [label], mapping
            assert words in failed[label], mapping
            assert nothing_saved(stack)
        assert stack.sevdesk.dump()["vouchers"] == []


def test_an_order_whose_tax_rule_and_rate_has_no_revenue_account_needs_attention_before_anything_is_written() -> None:
    body = connection()
    body["accounts"]["revenueAccounts"] = [m for m in body["accounts"]["revenueAccounts"] if m["taxRule"] != 3]
    with local_stack(orders(INTRA_EU, NORMAL)) as stack:
        stack.save_connection(body)
        run_once(stack)

        record = stack.record("demo-shop", INTRA_EU)
        assert record.state.value == "NEEDS_ATTENTION"
        assert "no revenue account is mapped for tax rule 3 at 0 %" in (record.reason or "")
        assert list(vouchers(stack)) == [printed_invoice_number(ORDERS[NORMAL])]
        assert len(calls(stack, "upload_temp_file")) == 1 and len(calls(stack, "save_voucher")) == 1
        assert stack.billbee.order(INTRA_EU).get("Tags") in ([], None)


def test_a_revenue_account_sevdesk_stops_allowing_after_setup_is_caught_before_the_voucher_is_sent() -> None:
    with local_stack(orders(NORMAL)) as stack:
        stack.save_connection(connection())
        # The bookkeeper restricts account 8400 in sevDesk: it no longer takes 19 % revenue.
        entry = next(g for g in stack.sevdesk.guidance if g["accountDatevId"] == 3631)
        entry["allowedTaxRules"][0]["taxRates"] = ["ZERO"]
        run_once(stack)

        record = stack.record("demo-shop", NORMAL)
        assert record.state.value == "NEEDS_ATTENTION"
        assert "does not allow 19 % under tax rule 1" in (record.reason or "")
        assert calls(stack, "save_voucher") == []  # caught here, not by a 422 from sevDesk
        assert not any(e.status == 422 for e in stack.sevdesk.exchanges)


# -- tax rules from VatMode -----------------------------------------------------------------------------------------
def test_vat_modes_0_1_2_3_become_tax_rules_1_11_3_2_and_the_margin_scheme_needs_attention() -> None:
    small_business = variant(300000181405712, 900000000000001, 9001, VatMode=1)  # Kleinunternehmer §19
    margin_scheme = variant(300000181405712, 900000000000002, 9002, VatMode=4)  # §25a
    with local_stack([*orders(NORMAL, INTRA_EU, EXPORT), small_business, margin_scheme]) as stack:
        stack.save_connection(connection())
        run_once(stack)

        expected = {NORMAL: "1", small_business["BillBeeOrderId"]: "11", INTRA_EU: "3", EXPORT: "2"}
        raw = {**ORDERS, small_business["BillBeeOrderId"]: small_business}
        for order_id, rule in expected.items():
            voucher = voucher_of(stack, raw[order_id])
            assert voucher["taxRule"]["id"] == rule, order_id
            if rule != "1":  # the VAT-free rules carry 0 % on their own revenue account
                assert {p["taxRate"] for p in voucher["positions"]} == {"0"}
        accounts = {p["accountDatev"]["id"] for p in voucher_of(stack, small_business)["positions"]}
        assert accounts == {"3660"}

        record = stack.record("demo-shop", margin_scheme["BillBeeOrderId"])
        assert record.state.value == "NEEDS_ATTENTION"
        assert "VatMode 4" in (record.reason or "") and "margin scheme" in (record.reason or "")
        assert printed_invoice_number(margin_scheme) not in vouchers(stack)
        assert not stack.billbee.order(margin_scheme["BillBeeOrderId"]).get("Tags")


# -- gross per rate to the cent -------------------------------------------------------------------------------------
def test_mixed_rates_shipping_line_discounts_and_coupons_give_the_invoices_gross_per_rate_to_the_cent() -> None:
    cases = [NORMAL, LINE_DISCOUNT, COUPON, COUPON_MIXED, MIXED_THREE, SPLIT_PAYMENT]
    with local_stack(orders(*cases)) as stack:
        stack.save_connection(connection())
        run_once(stack)

        for order_id in cases:
            # What the invoice shows per rate: the fees in cents as charged (the invoice list's default reading lists
            # them with three decimals, ERRATA Billbee 6; the voucher books what the customer paid).
            invoice = invoice_for(ORDERS[order_id], totals="with_fees")
            expected: dict[Decimal, Decimal] = defaultdict(Decimal)
            for line in invoice["Positions"]:
                expected[Decimal(str(line["VatRate"]))] += Decimal(str(line["TotalGrossValue"]))
            for fee in invoice["AdditionalFees"]:
                expected[Decimal(str(fee["VatRate"]))] += Decimal(str(fee["Gross"]))
            expected = {rate: gross for rate, gross in expected.items() if gross}

            voucher = voucher_of(stack, order_id)
            actual: dict[Decimal, Decimal] = defaultdict(Decimal)
            for position in voucher["positions"]:
                assert position["net"] == "0"  # gross positions: the total cannot drift by a cent
                actual[Decimal(position["taxRate"])] += Decimal(position["sumGross"])
            assert dict(actual) == expected, order_id
            assert Decimal(voucher["sumGross"]) == Decimal(str(ORDERS[order_id]["TotalCost"])), order_id
        # Shipping rides on the rate the invoice applied (19 % here), never on a stray position of its own rate.
        comments = {p["taxRate"]: p["comment"] for p in voucher_of(stack, NORMAL)["positions"]}
        assert "Versand" in comments["19"] and "Versand" not in comments["7"]


# -- the invoice PDF and orders without an invoice ------------------------------------------------------------------
def test_every_voucher_carries_the_invoice_pdf_billbee_issued() -> None:
    cases = [NORMAL, INTRA_EU, COUPON, LINE_DISCOUNT]
    with local_stack(orders(*cases)) as stack:
        stack.save_connection(connection())
        run_once(stack)

        for order_id in cases:
            voucher = voucher_of(stack, order_id)
            assert voucher["file"] is not None and voucher["file"]["mimeType"] == "application/pdf", order_id
            pdf = stack.sevdesk.file_bytes(voucher["file"]["filename"])
            billbee_pdf = stack.billbee.pdf_renderer(stack.billbee.order(order_id))
            assert pdf.startswith(b"%PDF")
            assert hashlib.sha256(pdf).hexdigest() == hashlib.sha256(billbee_pdf).hexdigest(), order_id


def test_an_order_without_an_invoice_is_skipped_with_the_reason_exported_once_invoiced_and_never_invoiced_by_us() -> (
    None
):
    with local_stack(orders(NOT_INVOICED, NORMAL)) as stack:
        stack.save_connection(connection())
        run_once(stack)

        record = stack.record("demo-shop", NOT_INVOICED)
        assert record.state.value == "SKIPPED"
        assert "no invoice" in (record.reason or "")
        assert not stack.billbee.order(NOT_INVOICED).get("Tags")
        assert not any(str(NOT_INVOICED) in e.path for e in stack.billbee.exchanges)  # no CreateInvoice for it
        run_once(stack)  # still no invoice: still skipped, still untouched
        assert stack.record("demo-shop", NOT_INVOICED).state.value == "SKIPPED"

        stack.billbee.set_invoice(NOT_INVOICED, 1084, "2026-11-21T09:30:00")  # the merchant invoices it in Billbee
        run_once(stack)

        invoiced = stack.billbee.order(NOT_INVOICED)
        assert stack.record("demo-shop", NOT_INVOICED).state.value == "EXPORTED"
        voucher = vouchers(stack)[printed_invoice_number(invoiced)]
        assert voucher["voucherDate"][:10] == "2026-11-21"
        assert voucher["file"] is not None
        assert "Sevdesk" in invoiced["Tags"]
        assert stack.billbee.invoices_created == []  # the connector never made Billbee issue an invoice
        assert invoiced["InvoiceNumber"] == 1084


# -- settings validation through the HTTP API ------------------------------------------------------------------------
class Api:
    """The real ApiFunction handler with real-shaped HTTP API v2 events."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.app = load_handler("api")
        secrets = stack.client("secretsmanager")
        self.token = secrets.get_secret_value(SecretId=stack.env["API_TOKEN_SECRET_ID"])["SecretString"]
        self.template = json.loads((REPO / "events" / "api_get_order.json").read_text())

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        event = copy.deepcopy(self.template)
        event.update(rawPath=path, body=None if body is None else json.dumps(body),
                     pathParameters={"proxy": path.removeprefix("/connections/")})
        event["requestContext"]["http"].update(method=method, path=path)
        event["headers"]["authorization"] = f"Bearer {self.token}"
        answer = self.app.handler(event, FakeContext("ApiFunction"))
        return answer["statusCode"], json.loads(answer["body"])


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return body


INVALID_SETTINGS = [
    # (field, bad value, what the error says)
    ("general.orderStateIds", [], "at least 1 item"),
    ("general.orderStateIds", [3, 99], "unknown Billbee order state id(s) [99]"),
    ("accounts.paymentAccounts.0.paymentMethod", 5, "unknown Billbee payment method id 5"),
    ("general.startDate", "2099-01-01", "start date 2099-01-01 is in the future"),
    ("sevdesk.voucherDate", "delivery", "'invoice', 'payment' or 'order'"),
    # default payments on (as in the sample) but no default account: the sevDesk tab as a whole is wrong
    ("sevdesk.defaultCheckAccountId", None, "defaultCheckAccountId is required"),
]
MISSING_ACCOUNTS = [
    # (field, the setup check that names it)
    ("accounts.paymentAccounts.0.checkAccountId", "paymentAccount[paymentMethod 3]"),
    ("sevdesk.defaultCheckAccountId", "paymentAccount[defaultCheckAccountId]"),
    ("accounts.revenueAccounts.0.accountDatevId", "revenueAccount[rule 1 19 %]"),
]


def test_invalid_settings_get_a_clear_error_naming_the_field_and_nothing_is_saved() -> None:
    with local_stack(orders(NORMAL)) as stack:
        api = Api(stack)
        for field, value, words in INVALID_SETTINGS:
            body = _with(connection(), field, value)
            body["credentials"] = dict(stack.credentials)
            status, answer = api.call("PUT", "/connections/demo-shop", body)

            assert status == 400, (field, answer)
            # The field as the body spells it (the API may prefix the location, e.g. "body.general.orderStateIds").
            problems = {p["field"].removeprefix("body."): p["problem"] for p in answer["problems"]}
            named = field if field != "sevdesk.defaultCheckAccountId" else "sevdesk"
            assert named in problems, (field, problems)
            assert words in problems[named], (field, problems)
            assert api.call("GET", "/connections/demo-shop")[0] == 404
            assert nothing_saved(stack)


def test_a_mapping_to_a_missing_account_gets_a_clear_error_naming_it_and_nothing_is_saved() -> None:
    with local_stack(orders(NORMAL)) as stack:
        api = Api(stack)
        for field, check in MISSING_ACCOUNTS:
            body = _with(connection(), field, MISSING_ACCOUNT)
            body["credentials"] = dict(stack.credentials)
            status, answer = api.call("PUT", "/connections/demo-shop", body)

            assert status == 422, (field, answer)
            failed = {c["check"]: c["detail"] for c in answer["setup"]["checks"] if not c["ok"]}
            assert list(failed) == [check], field
            assert str(MISSING_ACCOUNT) in failed[check]
            assert check in answer["error"]
            assert nothing_saved(stack)


def test_a_refused_change_to_a_saved_connection_leaves_the_old_settings_and_credentials_in_place() -> None:
    with local_stack(orders(NORMAL)) as stack:
        api = Api(stack)
        good = connection()
        good["credentials"] = dict(stack.credentials)
        assert api.call("PUT", "/connections/demo-shop", good)[0] == 201
        secret_id = stack.runtime.store.get_connection("demo-shop").secret_id

        # New tag and a new (wrong) sevDesk token in one request: refused as a whole.
        change = _with(good, "exportTag", "Neu")
        change["credentials"]["sevdeskApiToken"] = "e" * 32
        status, answer = api.call("PUT", "/connections/demo-shop", change)

        assert status == 422 and "sevdeskToken" in answer["error"]
        assert "e" * 32 not in json.dumps(answer)
        assert stack.runtime.store.get_connection("demo-shop").settings.export_tag == "Sevdesk"
        stored = json.loads(
            stack.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
        )
        assert stored["sevdeskApiToken"] == stack.credentials["sevdeskApiToken"]
        run_once(stack)  # and the connection still works as before
        assert "Sevdesk" in stack.billbee.order(NORMAL)["Tags"]
