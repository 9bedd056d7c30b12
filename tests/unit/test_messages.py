"""The export message and the back-off of a failed one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from connector.pipeline.messages import ExportMessage, delay_message, retry_delay


def test_back_off_doubles_per_delivery_up_to_the_cap() -> None:
    assert [retry_delay(n, 30, 900) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert retry_delay(1, 0.5, 4) == 1  # SQS counts whole seconds; never 0 (that would be a hot loop)


@pytest.mark.parametrize(
    "body",
    ['{"connectionId": "demo", "orderId": -1}', '{"connectionId": "Demo Shop", "orderId": 1}',
     '{"connectionId": "demo", "orderId": 1, "extra": 1}', "not json", '{"orderId": 1}'],
)
def test_malformed_messages_are_rejected(body: str) -> None:
    with pytest.raises(ValidationError):
        ExportMessage.model_validate_json(body)


class FakeSqs:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def change_message_visibility(self, **kwargs: Any) -> None:
        if self.fail:
            raise RuntimeError("throttled")
        self.calls.append(kwargs)


def runtime(sqs: FakeSqs) -> Any:
    config = SimpleNamespace(retry_base_seconds=30.0, retry_max_seconds=900.0, export_queue_url="q")
    return SimpleNamespace(config=config, sqs=sqs)


def record(receives: str) -> Any:
    return SimpleNamespace(attributes=SimpleNamespace(approximate_receive_count=receives), receipt_handle="rh")


def test_a_failed_message_is_delayed_by_its_back_off_or_by_what_the_failure_asked() -> None:
    sqs = FakeSqs()
    delay_message(runtime(sqs), record("3"), None)
    delay_message(runtime(sqs), record("1"), 61.2)
    delay_message(runtime(sqs), record("1"), 5000)
    assert [c["VisibilityTimeout"] for c in sqs.calls] == [120, 62, 900]
    assert all(c["ReceiptHandle"] == "rh" and c["QueueUrl"] == "q" for c in sqs.calls)


def test_a_failing_visibility_change_does_not_lose_the_message() -> None:
    delay_message(runtime(FakeSqs(fail=True)), record("1"), None)  # no exception: the queue's own timeout holds
