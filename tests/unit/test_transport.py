"""One request with the retry rules (issue 8, item 3): a 429 without Retry-After waits the resource's documented
window, never a short back-off; a throttled request was not applied, so the error says "429" and costs no attempt."""

from __future__ import annotations

import httpx
import pytest

from connector.errors import TransientError
from connector.transport import RetryPolicy, send

POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=15.0)


def client_answering(*responses: httpx.Response) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handler), base_url="https://api.test/"), seen


def call(client: httpx.Client, *, window: float | None, sleeps: list[float], idempotent: bool = True) -> httpx.Response:
    return send(
        client, client.build_request("GET", "orders/1"), api="billbee", operation="get_order", idempotent=idempotent,
        policy=POLICY, sleep=sleeps.append, throttle_window=window,
    )


def test_a_429_with_retry_after_waits_what_the_header_says() -> None:
    client, _ = client_answering(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={}))
    sleeps: list[float] = []
    assert call(client, window=10.0, sleeps=sleeps).status_code == 200
    assert sleeps == [3.0]


def test_a_429_without_retry_after_waits_the_documented_window() -> None:
    client, _ = client_answering(httpx.Response(429), httpx.Response(200, json={}))
    sleeps: list[float] = []
    assert call(client, window=10.0, sleeps=sleeps).status_code == 200
    assert sleeps == [10.0]  # GET /orders/{id}: 6 per order per minute


def test_a_window_longer_than_a_function_should_wait_goes_back_to_the_queue_marked_as_throttling() -> None:
    client, seen = client_answering(httpx.Response(429))
    sleeps: list[float] = []
    with pytest.raises(TransientError) as raised:
        call(client, window=300.0, sleeps=sleeps, idempotent=False)  # CreateInvoice: 1 per 5 minutes
    assert raised.value.status == 429 and raised.value.retry_after == 300.0
    assert sleeps == [] and len(seen) == 1


def test_throttled_on_every_attempt_still_says_429() -> None:
    client, seen = client_answering(*[httpx.Response(429) for _ in range(3)])
    sleeps: list[float] = []
    with pytest.raises(TransientError) as raised:
        call(client, window=1.0, sleeps=sleeps)
    assert raised.value.status == 429 and len(seen) == 3
    assert sleeps == [1.0, 1.0]  # no pointless wait after the last attempt
