"""The real Lambda handlers (functions/*/app.py) inside the embedded local stack: what they answer to Lambda.

The export handler's answer decides what SQS does with each record: a record in ``batchItemFailures`` comes back
(and after five receives lands in the dead-letter queue), every other record is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connector.store.records import ExportState
from local.lambda_sqs import FakeContext, sqs_event
from local.sample_shop import sample_orders
from local.stack import REPO_ROOT, LocalStack

CONNECTION = json.loads((REPO_ROOT / "local" / "sample_connection.json").read_text())
ORDERS = sample_orders()
INVOICED = [o["BillBeeOrderId"] for o in ORDERS if o.get("InvoiceNumber")]
UNINVOICED = [o["BillBeeOrderId"] for o in ORDERS if not o.get("InvoiceNumber")]
# The order list brings the orders in the connection's states; the credit notes in other states (a Storno order set
# to "storniert", a Gutschrift still "ordered") come from the invoice list.
IN_STATES = [o["BillBeeOrderId"] for o in ORDERS if o["State"] in (3, 4, 7)]


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    # No timeout faults here: a generous HTTP timeout keeps a busy test machine from turning a slow answer into a
    # lost one (and a valid record into a batch item failure).
    with LocalStack(orders=ORDERS, billbee_rate_limits=False, extra_env={"HTTP_TIMEOUT_SECONDS": "10"}) as local:
        local.save_connection(CONNECTION)
        yield local


def invoke_export(stack: LocalStack, bodies: list[str]) -> tuple[dict[str, Any], list[str]]:
    event = sqs_event(bodies)
    result = stack.export_app.handler(event, FakeContext("ExportFunction"))
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    return result, ["failed" if r["messageId"] in failed else "ok" for r in event["Records"]]


def message(order_id: int, connection_id: str = "demo-shop", **extra: Any) -> str:
    return json.dumps({"connectionId": connection_id, "orderId": order_id, "reason": "poll", **extra})


def queue_depth(stack: LocalStack) -> int:
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


# -- export handler ----------------------------------------------------------------------------------------------


def test_malformed_messages_are_reported_failed_and_the_valid_ones_of_the_batch_exported(stack: LocalStack) -> None:
    stack.poll()
    first, second = INVOICED[0], INVOICED[1]
    bodies = [
        message(first),
        "this is not JSON",
        message(second),
        message(INVOICED[2], priority="high"),  # a field the message format does not have
        message(-5),  # ids are positive
        json.dumps({"connectionId": "demo-shop"}),  # no order id
    ]
    result, outcome = invoke_export(stack, bodies)
    assert outcome == ["ok", "failed", "ok", "failed", "failed", "failed"], result
    assert stack.record("demo-shop", first).state is ExportState.EXPORTED
    assert stack.record("demo-shop", second).state is ExportState.EXPORTED
    # The order named by the message with the unknown field was left alone, not half exported.
    assert stack.record("demo-shop", INVOICED[2]).state is ExportState.PENDING
    assert len(stack.sevdesk.dump()["vouchers"]) == 2  # one voucher per valid message, nothing else


def test_messages_for_an_unknown_connection_or_order_are_acknowledged_not_retried(stack: LocalStack) -> None:
    stack.poll()
    bodies = [message(INVOICED[0], connection_id="no-such-shop"), message(999_999_999), message(INVOICED[0])]
    result, outcome = invoke_export(stack, bodies)
    assert outcome == ["ok", "ok", "ok"], result
    assert stack.record("demo-shop", 999_999_999) is None  # nothing invented for the unknown order
    assert stack.record("demo-shop", INVOICED[0]).state is ExportState.EXPORTED
    assert len(stack.sevdesk.dump()["vouchers"]) == 1  # only the real order's voucher


def test_a_second_message_for_an_exported_order_is_acknowledged_without_writing_again(stack: LocalStack) -> None:
    stack.poll()
    _, outcome = invoke_export(stack, [message(INVOICED[0])])
    assert outcome == ["ok"]
    writes_before = [e for e in stack.sevdesk.exchanges if e.method != "GET"]
    _, outcome = invoke_export(stack, [message(INVOICED[0])])
    assert outcome == ["ok"]
    assert [e for e in stack.sevdesk.exchanges if e.method != "GET"] == writes_before
    assert len(stack.sevdesk.vouchers_with_description(stack.record("demo-shop", INVOICED[0]).invoice_number)) == 1


# -- poll handler ------------------------------------------------------------------------------------------------


def test_the_poll_handler_returns_one_summary_per_connection_and_queues_the_invoiced_orders(
    stack: LocalStack,
) -> None:
    result = stack.poll()
    assert result == {
        "connections": [
            {
                "connectionId": "demo-shop",
                "status": "OK",
                "error": None,
                "listed": len(IN_STATES),
                "queued": len(INVOICED),
                "skipped": len(UNINVOICED),
                "unchanged": 0,
                "unreadable": 0,
                "problems": [],
                "creditNotesPending": 0,
                "complete": True,
                "listing": None,
            }
        ]
    }
    assert queue_depth(stack) == len(INVOICED)
    states = {r.order_id: r.state for r in stack.records("demo-shop")}
    assert {i for i, s in states.items() if s is ExportState.PENDING} == set(INVOICED)
    assert {i for i, s in states.items() if s is ExportState.SKIPPED} == set(UNINVOICED)


def test_a_connection_whose_secret_is_missing_is_reported_as_error_while_another_works(
    stack: LocalStack,
) -> None:
    stack.save_connection({**CONNECTION, "connectionId": "second-shop", "name": "Second shop"})
    broken = stack.runtime.store.get_connection("second-shop")
    assert broken is not None
    assert stack.aws is not None
    stack.aws.client("secretsmanager").delete_secret(SecretId=broken.secret_id, ForceDeleteWithoutRecovery=True)

    result = stack.poll()
    summaries = {s["connectionId"]: s for s in result["connections"]}
    assert summaries["demo-shop"]["status"] == "OK"
    assert summaries["demo-shop"]["queued"] == len(INVOICED)
    assert summaries["second-shop"]["status"] == "ERROR"
    assert broken.secret_id in summaries["second-shop"]["error"]
    assert summaries["second-shop"]["queued"] == 0
    status = stack.runtime.store.get_connection_status("second-shop")
    assert status.state == "ERROR" and broken.secret_id in (status.reason or "")
    assert stack.records("second-shop") == []
    assert queue_depth(stack) == len(INVOICED)  # only the working connection's orders


def test_the_poll_handler_reports_a_rejected_billbee_login_as_connection_error(stack: LocalStack) -> None:
    stack.billbee.password = "changed-by-the-merchant"  # the merchant rotated the API password in Billbee
    result = stack.poll()
    [summary] = result["connections"]
    assert summary["status"] == "ERROR"
    assert "Billbee rejected" in summary["error"]
    assert stack.runtime.store.get_connection_status("demo-shop").state == "ERROR"
    assert queue_depth(stack) == 0
