"""The pipeline's decisions as tables (issue 10): what the hourly poll does with each order, what a failed attempt
leaves, and which orders the connection's filters take: in milliseconds, no stack."""

from __future__ import annotations

from typing import Any

import pytest
from support import connection_settings

from connector.billbee.models import Order
from connector.pipeline.decisions import LEFT_FILTERS, NO_INVOICE, Act, failed_attempt, listed_order, unlisted_order
from connector.pipeline.filters import filter_mismatch, why_left_out
from connector.settings.model import ConnectionSettings
from connector.store.records import ExportState as S

# listed_order(state, has_invoice, changed, lease_expired, enqueue_due, attempts) -> (act, write)
LISTED = [
    # a new order
    (None, True, True, False, True, 0, Act.QUEUE, True),
    (None, False, True, False, True, 0, Act.SKIP, True),
    # booked: by this connector or by hand - never again, whatever Billbee shows
    (S.EXPORTED, True, True, False, True, 0, Act.UNCHANGED, False),
    (S.HANDLED, True, True, False, True, 0, Act.UNCHANGED, False),
    # a worker holds it, or died holding it
    (S.EXPORTING, True, False, False, True, 1, Act.UNCHANGED, False),
    (S.EXPORTING, True, False, True, True, 1, Act.QUEUE, False),
    # needs a person: unchanged data would fail the same way; changed data is tried again
    (S.NEEDS_ATTENTION, True, False, False, True, 1, Act.UNCHANGED, False),
    (S.NEEDS_ATTENTION, True, True, False, True, 1, Act.QUEUE, True),
    # waiting for an invoice: unchanged, it costs no write; changed or newly without one, it is written
    (S.SKIPPED, False, False, False, True, 0, Act.UNCHANGED, False),
    (S.SKIPPED, False, True, False, True, 0, Act.SKIP, True),
    (S.SKIPPED, True, True, False, True, 0, Act.QUEUE, True),
    (S.PENDING, False, True, False, True, 0, Act.SKIP, True),
    # queued a moment ago (its message is on the way: written only if its data changed) or long ago (lost)
    (S.PENDING, True, False, False, False, 0, Act.UNCHANGED, False),
    (S.PENDING, True, True, False, False, 0, Act.UNCHANGED, True),
    (S.PENDING, True, False, False, True, 0, Act.QUEUE, True),
    # failed: again while it has attempts, else a person looks (unless the data changed)
    (S.FAILED, True, False, False, True, 3, Act.QUEUE, True),
    (S.FAILED, True, False, False, True, 8, Act.GIVE_UP, True),
    (S.FAILED, True, True, False, True, 8, Act.QUEUE, True),
]


@pytest.mark.parametrize(("state", "invoice", "changed", "expired", "due", "attempts", "act", "write"), LISTED)
def test_what_the_poll_does_with_a_listed_order(
    state: S | None, invoice: bool, changed: bool, expired: bool, due: bool, attempts: int, act: Act, write: bool
) -> None:
    # A SKIPPED record waiting for its invoice says so already (its reason).
    step = listed_order(state, has_invoice=invoice, changed=changed, lease_expired=expired, enqueue_due=due,
                        attempts=attempts, max_attempts=8, last_error="boom",
                        reason=NO_INVOICE if state is S.SKIPPED else None)
    assert (step.act, step.write) == (act, write)
    if act is Act.SKIP:
        assert step.reason == NO_INVOICE
    if act is Act.GIVE_UP:
        assert step.reason == "gave up after 8 attempts; last error: boom"


@pytest.mark.parametrize(
    ("origin", "attempts", "voucher", "act"),
    [("poll", 1, None, Act.SKIP), ("poll", 1, "156000001", Act.SKIP), ("manual", 1, None, Act.QUEUE),
     ("retry", 7, None, Act.QUEUE), ("manual", 8, None, Act.UNCHANGED)],
)
def test_an_open_order_no_longer_listed(origin: str, attempts: int, voucher: str | None, act: Act) -> None:
    step = unlisted_order(origin, attempts=attempts, max_attempts=8, voucher_id=voucher)
    assert step.act is act
    if voucher:
        assert step.reason is not None and voucher in step.reason


def test_a_skipped_order_listed_with_another_reason_is_written_with_the_new_one() -> None:
    step = listed_order(S.SKIPPED, has_invoice=False, changed=False, lease_expired=False, enqueue_due=True,
                        attempts=0, max_attempts=8, reason=LEFT_FILTERS)
    assert (step.act, step.write, step.reason) == (Act.SKIP, True, NO_INVOICE)


@pytest.mark.parametrize("origin", ["poll", "manual", "retry"])
def test_an_order_our_own_tag_hides_is_finished_never_skipped(origin: str) -> None:
    step = unlisted_order(origin, attempts=8, max_attempts=8, voucher_id="156000001", tagged=True)
    assert (step.act, step.write) == (Act.QUEUE, False)


@pytest.mark.parametrize(("lease_expired", "act"), [(True, Act.QUEUE), (False, Act.UNCHANGED)])
def test_an_unlisted_export_whose_worker_died_is_queued_again_once_its_lease_ran_out(
    lease_expired: bool, act: Act
) -> None:
    step = unlisted_order("poll", attempts=1, max_attempts=8, voucher_id="156000001", tagged=True, exporting=True,
                          lease_expired=lease_expired)
    assert (step.act, step.write) == (act, False)


@pytest.mark.parametrize(
    ("attempts", "counts", "state", "after"),
    [(1, True, S.FAILED, 1), (7, True, S.FAILED, 7), (8, True, S.NEEDS_ATTENTION, 8), (9, True, S.NEEDS_ATTENTION, 9),
     (8, False, S.FAILED, 7), (1, False, S.FAILED, 0), (0, False, S.FAILED, 0)],
)
def test_what_a_failed_attempt_leaves(attempts: int, counts: bool, state: S, after: int) -> None:
    end = failed_attempt("sevdesk: 503", attempts=attempts, max_attempts=8, counts=counts)
    assert (end.state, end.attempts) == (state, after)
    assert (end.reason is not None) is (state is S.NEEDS_ATTENTION)


# -- the connection's filters (tab 1 of Billbee's help text) ---------------------------------------------------------
def settings(**general: Any) -> ConnectionSettings:
    return connection_settings(general={"shopIds": [1001], "includeManualOrders": True, **general})


def order(**fields: Any) -> Order:
    base: dict[str, Any] = {"BillBeeOrderId": 1, "State": 4, "CreatedAt": "2026-10-02T10:00:00",
                            "Seller": {"BillbeeShopId": 1001}, "Tags": [], "InvoiceNumber": 1,
                            "InvoiceDate": "2026-10-02T11:00:00"}
    return Order.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "general", "words"),
    [
        ({}, {}, None),
        ({"State": 1}, {}, "state is now 1"),  # the state *at the time of the transfer* counts
        ({"State": 7}, {}, None),
        ({"CreatedAt": "2026-09-30T23:59:00"}, {}, "before the connection's start date"),
        ({"Seller": {"BillbeeShopId": 1002}}, {}, "shop 1002"),
        ({"Seller": {"BillbeeShopId": 1002}}, {"shopIds": []}, None),  # no shops chosen: every shop
        ({"Seller": None}, {}, None),  # a manual order, manual orders included
        ({"Seller": None}, {"includeManualOrders": False}, "manual order"),
        ({"Tags": ["sevdesk"]}, {}, "export tag"),  # tags compare case-insensitively, as in Billbee
        ({"Tags": ["VIP"]}, {}, None),
    ],
)
def test_an_order_is_exported_when_the_connections_filters_take_it(
    fields: dict[str, Any], general: dict[str, Any], words: str | None
) -> None:
    mismatch = filter_mismatch(order(**fields), settings(**general))
    assert (mismatch is None) if words is None else (mismatch is not None and words in mismatch)


def test_why_an_order_was_left_out_names_the_filter_the_invoice_or_the_unreadable_field() -> None:
    s = settings()
    assert "state is now 1" in why_left_out({**order(State=1).model_dump(by_alias=True, mode="json")}, s)
    assert "no invoice" in why_left_out(order(InvoiceNumber=None).model_dump(by_alias=True, mode="json"), s)
    assert "TotalCost is 'viel'" in why_left_out({"BillBeeOrderId": 1, "TotalCost": "viel"}, s)
