"""Exactly once under faults (issue 5): every fault the issue lists, on the local stack, then the books are checked.

Each test starts from a blank merchant (``chaos.reset``) on one module-wide stack: six sample orders that take every
export path - a repeat customer (one contact for three orders), a company, a manual order booked on the default
account, a split payment (two bookings), an unpaid order (no booking). After the faults, the system is left to
settle the way it would on AWS (redeliveries after the queue's visibility timeout, the next hourly polls) and
``chaos.check_books`` checks the exactly-once invariants from the outside: sevDesk, Billbee, the records, the DLQ.

Clocks move instead of sleeping (``TimeMachine``); back-off waits are recorded instead of slept (``BackoffRecorder``).
The table in docs/faults.md maps each fault to what the system does and to the test here that proves it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chaos import (
    HOUR,
    BackoffRecorder,
    Books,
    Killed,
    Killer,
    LambdaPoller,
    TimeMachine,
    aws_client,
    check_books,
    dead_letter_bodies,
    derive_order,
    derive_orders,
    faulted,
    installed,
    request_counts,
    reset,
)

from local import lambda_sqs
from local.faults import FaultRule
from local.lambda_sqs import FakeContext
from local.sample_shop import sample_orders
from local.stack import LocalStack, load_handler

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CID = CONNECTION["connectionId"]
SAMPLE = sample_orders()
# Orders 1041 (PayPal, repeat customer), 1043 (company, invoice), 1046 (manual order, unmapped bank transfer ->
# default account), 1047 and 1052 (the repeat customer again; 1052 paid in two payments), 1061 (unpaid).
FEW = [SAMPLE[i] for i in (0, 2, 5, 6, 11, 20)]
PAYMENTS_OF_FEW = 6  # bookings the six orders need: 1 + 1 + 1 + 1 + 2 + 0
SEVDESK_WRITES = (
    "upload_temp_file", "save_voucher", "book_amount",
    "create_contact", "create_contact_address", "create_communication_way",
)
INF = float("inf")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # A short client timeout: a "timeout" fault then costs half a second, not two.
    with LocalStack(orders=FEW, billbee_rate_limits=False, extra_env={"HTTP_TIMEOUT_SECONDS": "0.5"}) as local:
        local.save_connection(CONNECTION)
        yield local


@dataclass
class World:
    """One test's merchant on the shared stack, with its clock, its Lambda poller and its recorded back-offs."""

    stack: LocalStack
    clock: TimeMachine
    lambdas: LambdaPoller
    backoff: BackoffRecorder
    orders: list[dict[str, Any]]

    def load(self, orders: list[dict[str, Any]]) -> None:
        reset(self.stack, orders, CONNECTION)
        self.orders = orders
        self.lambdas.forget()

    def fault(self, api: str, operation: str, kind: str, *, times: float = 1, after: int = 0,
              retry_after: int = 1) -> FaultRule:
        return self.stack.faults.add(FaultRule(api, operation, kind, times=times, after=after,
                                               retry_after=retry_after))

    def poll(self) -> dict[str, Any]:
        result = self.stack.poll()
        return dict(result["connections"][0])

    def deliver(self, **kwargs: Any) -> Any:
        return self.lambdas.deliver(**kwargs)

    def settle(self, rounds: int = 3) -> None:
        """The next hourly runs (poll, then the queue until it is empty) until no order is open any more."""
        for _ in range(rounds):
            if not self.open_orders():
                return
            self.hourly()

    def hourly(self, runs: int = 1) -> None:
        """The next hourly runs, whether or not anything is open."""
        for _ in range(runs):
            self.clock.advance(HOUR)
            self.poll()
            self.deliver()

    def open_orders(self) -> list[Any]:
        return [r for r in self.stack.records(CID) if r.state.value in ("PENDING", "EXPORTING", "FAILED")]

    def books(self, *, settled: bool = True) -> Books:
        return check_books(self.stack, CID, originals=self.orders, settled=settled)

    def states(self) -> dict[int, str]:
        return {r.order_id: r.state.value for r in self.stack.records(CID)}

    def record(self, order_id: int) -> Any:
        return self.stack.record(CID, order_id)

    def requests(self, api: str, operation: str) -> int:
        return request_counts(self.stack)[(api, operation)]


@pytest.fixture(scope="module")
def lambdas(stack: LocalStack) -> LambdaPoller:
    """Two export function containers (building one costs three boto3 clients, so they outlive a test)."""
    return LambdaPoller(stack, TimeMachine())


@pytest.fixture
def world(stack: LocalStack, lambdas: LambdaPoller) -> Iterator[World]:
    clock = TimeMachine().install(stack)
    backoff = BackoffRecorder().install()
    lambdas.use_clock(clock)
    lambdas.forget()
    reset(stack, FEW, CONNECTION)
    try:
        yield World(stack, clock, lambdas, backoff, FEW)
    finally:
        stack.faults.clear()
        backoff.uninstall()
        clock.uninstall()


def ids(orders: list[dict[str, Any]]) -> set[int]:
    return {o["BillBeeOrderId"] for o in orders}


def assert_all_exported(world: World, books: Books) -> None:
    assert books.problems == [], books.summary()
    assert set(world.states().values()) == {"EXPORTED"}, world.states()
    assert set(world.states()) == ids(world.orders)


def sqs_event(stack: LocalStack, bodies: list[dict[str, Any]], message_ids: list[str]) -> dict[str, Any]:
    return lambda_sqs.sqs_event([json.dumps(b) for b in bodies], queue_url=stack.queue_url, message_ids=message_ids)


def message(order_id: int) -> dict[str, Any]:
    return {"connectionId": CID, "orderId": order_id, "reason": "poll"}


# -- sevDesk 5xx and timeouts on every write -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["500", "timeout", "drop"])
def test_sevdesk_errors_and_timeouts_on_every_write_are_retried_without_a_duplicate(world: World, kind: str) -> None:
    for operation in SEVDESK_WRITES:
        world.fault("sevdesk", operation, kind, times=2)
    world.poll()
    world.deliver()
    world.settle()
    assert_all_exported(world, world.books())
    fired = faulted(world.stack)
    for operation in ("upload_temp_file", "save_voucher", "book_amount", "create_contact"):
        assert fired[("sevdesk", operation, kind)] == 2, fired
    assert world.books().vouchers == len(FEW)
    assert world.books().bookings == PAYMENTS_OF_FEW


# -- saved, but the answer was lost ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["saved500", "saveddrop", "savedtimeout"])
def test_a_voucher_or_booking_saved_but_answered_badly_is_adopted_and_never_sent_twice(
    world: World, kind: str
) -> None:
    world.fault("sevdesk", "save_voucher", kind, times=3)
    world.fault("sevdesk", "book_amount", kind, times=3)
    world.poll()
    world.deliver()
    world.settle()
    assert_all_exported(world, world.books())
    # Each lost answer was settled by looking: a voucher found by its number, a booking read off the voucher.
    assert world.requests("sevdesk", "save_voucher") == len(FEW)
    assert world.requests("sevdesk", "book_amount") == PAYMENTS_OF_FEW
    assert faulted(world.stack)[("sevdesk", "save_voucher", kind)] == 3


def test_sevdesk_answering_500_after_every_saved_voucher_still_ends_with_one_voucher_per_invoice(world: World) -> None:
    world.fault("sevdesk", "save_voucher", "saved500", times=INF)
    world.poll()
    world.deliver()
    world.settle()
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == len(FEW)


# -- late commits: saved seconds after the client gave up (issue 8, item 9) ------------------------------------------
@pytest.mark.parametrize("delay", [3.0, 300.0, 850.0])
def test_a_write_that_commits_after_its_answer_was_lost_is_found_and_never_written_again(
    world: World, delay: float
) -> None:
    """The server finishes saving after the client gave up: 3 s, 5 min or 14 min later. The export never writes
    again in the invocation that lost the answer, searches after a minute, and writes again only when searches
    spread over 15 minutes found nothing: so the late voucher, contact and booking are found, not duplicated."""
    for operation in ("save_voucher", "create_contact", "book_amount"):
        rule = world.fault("sevdesk", operation, "latecommit", times=2)
        rule.delay = delay
    world.poll()
    world.deliver()
    world.settle()
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == len(FEW)
    assert world.requests("sevdesk", "book_amount") == PAYMENTS_OF_FEW
    assert len(world.stack.sevdesk.late_commits_applied) == 6
    # Waiting for a lost answer is no failed attempt.
    assert max(r.attempts for r in world.stack.records(CID)) == 1


def test_a_write_lost_without_a_trace_is_written_again_only_after_searching_for_fifteen_minutes(world: World) -> None:
    """Not saved at all (the request timed out before it was applied): the voucher is written again, but only after
    three searches spread over the window found nothing; one voucher in the end."""
    world.fault("sevdesk", "save_voucher", "timeout", times=1)
    world.poll()
    world.deliver()
    world.settle()
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == len(FEW) + 1
    searches = [e for e in world.stack.sevdesk.exchanges if e.operation == "list_vouchers"]
    assert len(searches) == len(FEW) + 3  # one before each first write, three for the lost one


def test_a_late_commit_in_the_soak_kinds_is_known_to_the_fault_plan() -> None:
    from local.faults import KINDS, parse_fault_spec

    assert "latecommit" in KINDS and "429bare" in KINDS
    assert [r.kind for r in parse_fault_spec("sevdesk.save_voucher=latecommit*2,billbee.get_order=429bare")] == [
        "latecommit", "429bare"
    ]


# -- 429 without Retry-After (issue 8, item 3) -----------------------------------------------------------------------
def test_a_429_without_retry_after_waits_billbees_documented_window_and_costs_no_attempt(world: World) -> None:
    world.fault("billbee", "get_order", "429bare", times=2)  # 6 per order per minute: waits 10 s, inside the call
    world.fault("billbee", "create_invoice", "429bare", times=2)  # 1 per 5 minutes: back to the queue for 300 s
    world.poll()
    world.deliver()
    world.settle()
    assert_all_exported(world, world.books())
    assert world.backoff.waits.count(10.0) == 2  # never a short back-off that would hit the same limit again
    assert max(r.attempts for r in world.stack.records(CID)) == 1
    assert world.requests("billbee", "create_invoice") == len(FEW) + 2


# -- 429 storms ------------------------------------------------------------------------------------------------------
def test_429_storms_on_both_apis_are_waited_out_for_retry_after_and_nothing_is_written_twice(world: World) -> None:
    for api, operation in (
        ("billbee", "list_orders"), ("billbee", "create_invoice"), ("billbee", "add_tags"),
        ("sevdesk", "list_vouchers"), ("sevdesk", "upload_temp_file"), ("sevdesk", "save_voucher"),
        ("sevdesk", "book_amount"), ("sevdesk", "create_contact"),
    ):
        world.fault(api, operation, "429", times=3, retry_after=7)
    world.poll()
    world.deliver()
    assert_all_exported(world, world.books())
    throttled = sum(faulted(world.stack).values())
    assert throttled == 8 * 3
    # Every 429 was honoured with its Retry-After before the request was sent again, inside the same call.
    assert world.backoff.waits.count(7) == throttled
    assert world.requests("sevdesk", "save_voucher") == len(FEW) + 3
    answered = [e for e in world.stack.sevdesk.exchanges if e.operation == "save_voucher" and e.status in (200, 201)]
    assert len(answered) == len(FEW)


def test_a_retry_after_longer_than_a_function_should_wait_goes_back_to_the_queue_and_recovers(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # One container: with two, the repeat customer's orders may meet at the contact claim and one of them waits,
    # which is a third (correct, but here unwanted) item failure.
    monkeypatch.setattr(world.lambdas, "containers", world.lambdas.containers[:1])
    world.fault("sevdesk", "save_voucher", "429", times=2, retry_after=600)
    world.poll()
    delivery = world.deliver()
    assert_all_exported(world, world.books())
    assert 600 not in world.backoff.waits  # no function sat ten minutes in a sleep
    assert delivery.item_failures == 2  # the two throttled orders came back after the visibility timeout
    # Throttling is no failed attempt: nothing was applied, so it never uses up the order's attempts (issue 8, 3).
    assert sorted(r.attempts for r in world.stack.records(CID)) == [1] * len(FEW)


# -- Billbee 5xx on the PDF and on the tag call ----------------------------------------------------------------------
def test_billbee_server_errors_on_the_invoice_pdf_and_the_tag_call_are_retried(world: World) -> None:
    world.fault("billbee", "create_invoice", "500", times=3)
    world.fault("billbee", "add_tags", "503", times=3)
    world.poll()
    world.deliver()
    assert_all_exported(world, world.books())
    assert world.stack.billbee.invoices_created == []


def test_an_order_whose_tag_call_keeps_failing_waits_with_its_voucher_and_is_tagged_once_billbee_recovers(
    world: World,
) -> None:
    world.fault("billbee", "add_tags", "503", times=INF)
    world.poll()
    world.deliver()
    books = world.books(settled=False)
    assert books.problems == [], books.summary()
    assert set(world.states().values()) == {"FAILED"}
    for record in world.stack.records(CID):
        assert record.steps.voucher_id and not record.steps.tagged
        assert "add_tags" in (record.last_error or "")
    # Five receives, then SQS moved each message to the dead-letter queue; the records say why.
    assert sorted(m["orderId"] for m in dead_letter_bodies(world.stack)) == sorted(ids(FEW))
    vouchers_sent = world.requests("sevdesk", "save_voucher")
    world.stack.faults.clear()
    world.settle()
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == vouchers_sent == len(FEW)
    assert world.requests("sevdesk", "book_amount") == PAYMENTS_OF_FEW


# -- the export function dying between any two steps -----------------------------------------------------------------
def test_an_export_killed_between_any_two_steps_resumes_where_it_stopped_without_a_duplicate(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = SAMPLE[11]  # paid in two payments by a customer: contact, PDF, voucher, two bookings, tag
    probe = derive_order(template, 0, new_customer=True)
    world.load([probe])
    watcher = Killer(lambda name, number, orders: False)
    world.poll()
    with installed(watcher):
        world.deliver(killer=watcher)
    steps = watcher.invocations[0][1]
    assert len(steps) >= 20, steps  # claim, contact (5), PDF, upload, voucher, 2 x booking, tag, done

    # One order per step; the export of order k dies right after its k-th step, then SQS redelivers it.
    orders = [derive_order(template, k, new_customer=True) for k in range(1, len(steps) + 1)]
    world.load(orders)
    killer = Killer.at_step({o["BillBeeOrderId"]: k for k, o in enumerate(orders, start=1)})
    monkeypatch.setattr(world.lambdas, "containers", world.lambdas.containers[:1])  # one at a time, one order each
    monkeypatch.setattr(world.lambdas, "batch_size", 1)
    world.poll()
    with installed(killer):
        world.deliver(killer=killer)
    assert [d.after for d in sorted(killer.deaths, key=lambda d: d.step)] == steps
    books = world.books()
    assert_all_exported(world, books)
    assert books.vouchers == len(orders) and books.contacts == len(orders) and books.bookings == 2 * len(orders)


# -- the same message twice, and to two workers at once --------------------------------------------------------------
def test_the_same_message_delivered_twice_exports_once_and_the_second_delivery_sends_nothing(world: World) -> None:
    world.poll()
    world.deliver()
    before = request_counts(world.stack)
    sqs = aws_client(world.stack, "sqs")
    for order in FEW:
        sqs.send_message(QueueUrl=world.stack.queue_url, MessageBody=json.dumps(message(order["BillBeeOrderId"])))
    delivery = world.deliver()
    assert delivery.item_failures == 0
    assert request_counts(world.stack) == before
    assert_all_exported(world, world.books())


def test_one_message_handed_to_two_workers_at_once_is_exported_by_one_while_the_other_backs_off(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.sevdesk.client import SevdeskClient

    world.poll()
    order_id = FEW[4]["BillBeeOrderId"]
    inside, other_done = threading.Event(), threading.Event()
    original = SevdeskClient.upload_temp_file

    def slow_upload(self: SevdeskClient, filename: str, content: bytes) -> str:
        if threading.current_thread().name == "worker-a":
            inside.set()
            assert other_done.wait(10)
        return original(self, filename, content)

    monkeypatch.setattr(SevdeskClient, "upload_temp_file", slow_upload)
    first, second = world.lambdas.containers
    results: dict[str, Any] = {}
    event_a = sqs_event(world.stack, [message(order_id)], ["copy-a"])
    event_b = sqs_event(world.stack, [message(order_id)], ["copy-b"])
    worker = threading.Thread(
        target=lambda: results.setdefault("a", first.handler(event_a, FakeContext("ExportFunction"))),
        name="worker-a",
    )
    worker.start()
    assert inside.wait(10)
    results["b"] = second.handler(event_b, FakeContext("ExportFunction"))
    other_done.set()
    worker.join(10)
    assert results["b"]["batchItemFailures"] == [{"itemIdentifier": "copy-b"}]  # lease held: comes back later
    assert results["a"]["batchItemFailures"] == []
    assert world.record(order_id).state.value == "EXPORTED"
    again = second.handler(event_b, FakeContext("ExportFunction"))  # the redelivery finds it done
    assert again["batchItemFailures"] == []
    assert len(world.stack.sevdesk.vouchers_with_description(world.record(order_id).invoice_number)) == 1


def test_a_whole_batch_delivered_to_two_workers_at_the_same_moment_is_exported_once(world: World) -> None:
    world.poll()
    bodies = [message(o["BillBeeOrderId"]) for o in FEW]
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def invoke(container: Any, tag: str) -> None:
        event = sqs_event(world.stack, bodies, [f"{tag}-{i}" for i in range(len(bodies))])
        barrier.wait(10)
        results.append(container.handler(event, FakeContext("ExportFunction")))

    threads = [threading.Thread(target=invoke, args=(c, t)) for c, t in zip(world.lambdas.containers, "ab",
                                                                             strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    world.deliver()  # the poll's own messages
    world.settle()
    assert_all_exported(world, world.books())
    assert world.books().vouchers == len(FEW)


# -- overlapping and dying polls -------------------------------------------------------------------------------------
def test_a_poll_overlapping_another_poll_and_its_exports_queues_nothing_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.pipeline.poll import Poller

    second_poll = load_handler("poll")
    world.clock.attach(second_poll.runtime.store)
    listed, resume = threading.Event(), threading.Event()
    original = Poller._invoice_details

    def paused(self: Poller, *args: Any) -> Any:
        if threading.current_thread().name == "slow-poll":
            listed.set()
            assert resume.wait(30)
        return original(self, *args)

    monkeypatch.setattr(Poller, "_invoice_details", paused)
    result: dict[str, Any] = {}
    slow = threading.Thread(
        target=lambda: result.update(second_poll.handler(json.loads((REPO / "events" / "poll_schedule.json")
                                                                    .read_text()), FakeContext("PollFunction"))),
        name="slow-poll",
    )
    slow.start()
    assert listed.wait(30)  # the slow poll has listed every order and stops before storing them
    assert world.poll()["queued"] == len(FEW)
    world.deliver()  # ... while the fast poll's orders are exported and tagged
    resume.set()
    slow.join(30)
    assert result["connections"][0]["queued"] == 0  # it found them exported and queued nothing
    world.deliver()
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == len(FEW)


def test_a_poll_that_fails_half_way_through_its_pages_keeps_its_place_and_the_next_poll_continues_there(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.stack.runtime
    monkeypatch.setattr(runtime, "config", dataclasses.replace(runtime.config, billbee_page_size=2))  # three pages
    world.fault("billbee", "list_orders", "503", times=4, after=1)  # page 2 fails on every retry
    summary = world.poll()
    assert summary["status"] == "FAILED" and "list_orders" in summary["error"]
    first = {r.order_id for r in world.stack.records(CID)}
    assert first == {o["BillBeeOrderId"] for o in FEW[:2]}  # page 1 was stored and queued before page 2 failed
    listing = runtime.store.get_listing(CID)
    assert listing is not None and listing["pages"] == 1 and listing["min_id"] == max(first) + 1
    world.stack.billbee.exchanges.clear()
    world.hourly()
    assert_all_exported(world, world.books())
    asked = [dict(e.query) for e in world.stack.billbee.exchanges if e.operation == "list_orders"]
    assert asked[0].get("minimumBillBeeOrderId") == str(max(first) + 1)  # from where it stopped, not the start


@pytest.mark.parametrize("where", ["listing", "storing", "queueing"])
def test_a_poll_killed_half_way_leaves_every_order_to_the_next_poll(
    world: World, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from connector.billbee.client import BillbeeClient
    from connector.pipeline.poll import Poller

    assert BillbeeClient.list_orders.__kwdefaults__ is not None
    monkeypatch.setitem(BillbeeClient.list_orders.__kwdefaults__, "page_size", 2)
    calls: list[int] = []

    def dies_on(nth: int, original: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            result = original(*args, **kwargs)
            if len(calls) == nth:
                raise Killed(f"poll killed after {where} step {nth}")
            return result

        return step

    if where == "listing":  # after the second page
        monkeypatch.setattr(BillbeeClient, "list_orders", dies_on(2, BillbeeClient.list_orders))
    elif where == "storing":  # after three of six records
        monkeypatch.setattr(Poller, "_upsert", dies_on(3, Poller._upsert))
    else:  # the messages are sent, the records not yet marked as queued
        sqs = world.stack.runtime.sqs
        monkeypatch.setattr(sqs, "send_message_batch", dies_on(1, sqs.send_message_batch))
    with pytest.raises(Killed):
        world.poll()
    monkeypatch.undo()
    world.deliver()
    world.hourly()  # the next hourly poll picks up what the killed one left
    world.settle()
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == len(FEW)


# -- DynamoDB conditional-check conflicts ----------------------------------------------------------------------------
def test_an_export_whose_claim_loses_a_conditional_write_to_the_polls_bookkeeping_is_retried_not_dropped(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On AWS the export can pick a message up within milliseconds, while the poll is still marking the batch's
    records as queued; the claim's conditional write then loses. The order must come back, not be acknowledged."""
    from connector.store.dynamo import Store

    poll_store = world.stack.runtime.store
    original = Store.claim
    raced: set[int] = set()

    def claim_while_the_poll_writes(self: Store, connection_id: str, order_id: int, owner: str,
                                    lease_seconds: int) -> Any:
        if self is poll_store or order_id in raced:
            return original(self, connection_id, order_id, owner, lease_seconds)
        raced.add(order_id)
        real_save = self.save

        def save_after_the_poll(record: Any, *, owner: str | None = None) -> None:
            marked = poll_store.get_order(connection_id, order_id)
            marked.enqueued_at = poll_store.clock()
            poll_store.save(marked)  # the poll's write lands between the claim's read and its write
            real_save(record, owner=owner)

        self.save = save_after_the_poll  # type: ignore[method-assign]
        try:
            return original(self, connection_id, order_id, owner, lease_seconds)
        finally:
            del self.save

    monkeypatch.setattr(Store, "claim", claim_while_the_poll_writes)
    world.poll()
    world.deliver()
    assert raced == ids(FEW)
    assert world.states() == dict.fromkeys(ids(FEW), "EXPORTED")  # within this delivery, not an hour later
    assert_all_exported(world, world.books())


@pytest.mark.parametrize("paused_after", ["upload_temp_file", "save_voucher"])
def test_a_worker_that_outlived_its_lease_stops_at_its_next_write_and_the_new_owner_exports_once(
    world: World, monkeypatch: pytest.MonkeyPatch, paused_after: str
) -> None:
    from connector.sevdesk.client import SevdeskClient

    world.poll()
    order_id = FEW[0]["BillBeeOrderId"]
    paused, resume = threading.Event(), threading.Event()
    original = getattr(SevdeskClient, paused_after)

    def pausing(self: SevdeskClient, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if threading.current_thread().name == "stale-worker":
            paused.set()
            assert resume.wait(30)
        return result

    monkeypatch.setattr(SevdeskClient, paused_after, pausing)
    first, second = world.lambdas.containers
    results: dict[str, Any] = {}
    event_a = sqs_event(world.stack, [message(order_id)], ["stale"])
    stale = threading.Thread(
        target=lambda: results.setdefault("stale", first.handler(event_a, FakeContext("ExportFunction"))),
        name="stale-worker",
    )
    stale.start()
    assert paused.wait(30)
    world.clock.advance(200)  # the lease (150 s) runs out while the first worker hangs
    fresh = second.handler(sqs_event(world.stack, [message(order_id)], ["fresh"]), FakeContext("ExportFunction"))
    assert fresh["batchItemFailures"] == []
    assert world.record(order_id).state.value == "EXPORTED"
    resume.set()
    stale.join(30)
    assert results["stale"]["batchItemFailures"] == [{"itemIdentifier": "stale"}]  # lost the lease: stopped
    record = world.record(order_id)
    assert record.state.value == "EXPORTED" and record.steps.tagged
    assert len(world.stack.sevdesk.vouchers_with_description(record.invoice_number)) == 1
    assert world.requests("sevdesk", "save_voucher") == 1


def test_two_orders_of_one_new_customer_exported_at_once_create_one_contact(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.sevdesk.client import SevdeskClient

    first_order, second_order = FEW[0], FEW[3]  # the same customer
    world.load([first_order, second_order])
    world.poll()
    created, resume = threading.Event(), threading.Event()
    original = SevdeskClient.create_contact

    def slow_create(self: SevdeskClient, plan: Any) -> str:
        contact_id = original(self, plan)
        if threading.current_thread().name == "worker-a":
            created.set()
            assert resume.wait(30)
        return contact_id

    monkeypatch.setattr(SevdeskClient, "create_contact", slow_create)
    first, second = world.lambdas.containers
    results: dict[str, Any] = {}
    event_a = sqs_event(world.stack, [message(first_order["BillBeeOrderId"])], ["a"])
    worker = threading.Thread(
        target=lambda: results.setdefault("a", first.handler(event_a, FakeContext("ExportFunction"))),
        name="worker-a",
    )
    worker.start()
    assert created.wait(30)
    event_b = sqs_event(world.stack, [message(second_order["BillBeeOrderId"])], ["b"])
    results["b"] = second.handler(event_b, FakeContext("ExportFunction"))
    resume.set()
    worker.join(30)
    assert results["b"]["batchItemFailures"] == [{"itemIdentifier": "b"}]  # the contact is being created elsewhere
    world.deliver()  # the poll's own two messages
    assert_all_exported(world, world.books())
    assert world.books().contacts == 1
    assert world.requests("sevdesk", "create_contact") == 1


# -- permanent errors: no retry storm --------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["sevdesk", "billbee"])
def test_a_revoked_credential_stops_the_connection_with_a_clear_reason_and_no_retry_storm(
    world: World, api: str
) -> None:
    world.poll()
    if api == "sevdesk":
        world.stack.sevdesk.api_token = "revoked-by-the-merchant"
    else:
        world.stack.billbee.password = "changed-by-the-merchant"
    world.deliver()
    status = world.stack.runtime.store.get_connection_status(CID)
    assert status.state == "ERROR"
    assert ("sevDesk rejected the API token" if api == "sevdesk" else "Billbee rejected") in (status.reason or "")
    world.hourly(2)  # two more hourly runs while the credential stays wrong
    rejected = [e for e in world.stack.exchanges() if e["status"] == 401]
    assert len(rejected) <= 2 + 2  # each worker's first attempt, then one check per hourly poll: no storm
    books = world.books(settled=False)
    assert books.problems == [] and books.vouchers == 0
    assert "EXPORTED" not in world.states().values()
    failed = [r for r in world.stack.records(CID) if r.state.value == "FAILED"]
    assert failed and all(status.reason == r.last_error for r in failed)

    # The merchant enters the right credential again; the next hourly run exports everything.
    world.stack.sevdesk.api_token = world.stack.credentials["sevdeskApiToken"]
    world.stack.billbee.password = world.stack.credentials["billbeeApiPassword"]
    world.stack.save_connection(CONNECTION)
    world.settle()
    assert_all_exported(world, world.books())


def test_a_token_replaced_right_after_a_401_is_used_by_the_very_next_export(world: World) -> None:
    world.poll()
    world.stack.sevdesk.api_token = "revoked-by-the-merchant"
    world.deliver()
    assert world.stack.runtime.store.get_connection_status(CID).state == "ERROR"
    # A minute later the merchant saves a new token (PUT /connections/{id}) and the waiting orders are queued.
    new_token = "rotated-" + world.stack.credentials["sevdeskApiToken"][:8]
    world.stack.sevdesk.api_token = new_token
    world.stack.save_connection({**CONNECTION, "credentials": {**world.stack.credentials,
                                                                "sevdeskApiToken": new_token}})
    world.clock.advance(60)
    failed = [r.order_id for r in world.stack.records(CID) if r.state.value == "FAILED"]
    assert failed
    from connector.pipeline.queue import enqueue_exports

    enqueue_exports(world.stack.runtime, CID, failed, reason="retry")
    world.deliver()
    assert world.stack.runtime.store.get_connection_status(CID).state == "OK"
    assert all(world.record(order_id).state.value == "EXPORTED" for order_id in failed)


def test_a_booking_sevdesk_rejects_with_422_needs_attention_with_the_reason_and_is_never_retried(
    world: World,
) -> None:
    world.stack.sevdesk.check_accounts[5101]["status"] = "0"  # the PayPal account was archived in sevDesk
    paypal = {o["BillBeeOrderId"] for o in FEW if o["PaymentMethod"] == 3 and o["Payments"]}
    world.poll()
    world.deliver()
    world.settle()
    books = world.books()
    assert books.problems == [], books.summary()
    for order_id, state in world.states().items():
        if order_id in paypal:
            record = world.record(order_id)
            assert state == "NEEDS_ATTENTION"
            assert "archived" in record.reason and "sevdesk" in record.reason
            assert record.steps.voucher_id and not record.steps.tagged
        else:
            assert state == "EXPORTED"
    rejected = [e for e in world.stack.sevdesk.exchanges if e.status == 422]
    assert len(rejected) == len(paypal)  # one try per order, nothing repeated by the later hourly runs
    world.hourly(2)
    assert len([e for e in world.stack.sevdesk.exchanges if e.status == 422]) == len(paypal)


def test_a_voucher_sevdesk_rejects_with_422_needs_attention_and_is_not_retried(world: World) -> None:
    first, later = FEW[0], [FEW[3], FEW[4]]  # one customer: the later orders reuse the first one's contact
    world.load([first])
    world.poll()
    world.deliver()
    contact_id = world.record(first["BillBeeOrderId"]).steps.contact_id
    with world.stack.sevdesk.lock:
        del world.stack.sevdesk.contacts[int(contact_id)]  # a bookkeeper deleted the contact in sevDesk
    for order in later:
        world.stack.billbee.add_order(order)
    world.orders = [first, *later]
    world.hourly()
    for order in later:
        record = world.record(order["BillBeeOrderId"])
        assert record.state.value == "NEEDS_ATTENTION"
        assert "supplier does not exist" in (record.reason or "")
    saved = world.requests("sevdesk", "save_voucher")
    assert saved == 3
    world.hourly(2)
    assert world.requests("sevdesk", "save_voucher") == saved


def test_an_order_failing_on_every_attempt_gives_up_after_the_configured_attempts_and_stops_calling(
    world: World,
) -> None:
    world.load([FEW[0]])
    world.fault("sevdesk", "upload_temp_file", "503", times=INF)
    world.poll()
    world.deliver()
    assert world.record(FEW[0]["BillBeeOrderId"]).attempts == 5  # maxReceiveCount 5, then the dead-letter queue
    assert [m["orderId"] for m in dead_letter_bodies(world.stack)] == [FEW[0]["BillBeeOrderId"]]
    world.settle(rounds=4)
    record = world.record(FEW[0]["BillBeeOrderId"])
    assert record.state.value == "NEEDS_ATTENTION"
    assert record.reason.startswith("gave up after 8 attempts") and "upload_temp_file" in record.reason
    uploads = world.requests("sevdesk", "upload_temp_file")
    assert uploads == 8 * 4  # eight attempts of four tries each
    world.hourly(2)
    assert world.requests("sevdesk", "upload_temp_file") == uploads
    assert world.books().problems == []


def test_a_poison_message_lands_in_the_dead_letter_queue_after_five_receives_and_is_listed(world: World) -> None:
    sqs = aws_client(world.stack, "sqs")
    poison = ["not json at all", json.dumps({"connectionId": CID, "orderId": -5})]
    for body in poison:
        sqs.send_message(QueueUrl=world.stack.queue_url, MessageBody=body)
    world.poll()
    delivery = world.deliver()
    assert [delivery.receives[body] for body in poison] == [5, 5]  # maxReceiveCount, then the DLQ
    listed = world.stack.dead_letters()  # what the local report and the DLQ alarm see
    assert sorted(json.dumps(m) if isinstance(m, dict) else m for m in listed) == sorted(poison)
    # ... and what the API's status shows: GET /connections/{id}/dead-letters through the real API handler
    from local.serve import api_token, http_api_event

    api = load_handler("api")
    event = http_api_event("GET", f"/connections/{CID}/dead-letters",
                           [("authorization", f"Bearer {api_token(world.stack)}")], b"")
    assert event is not None
    answer = api.handler(event, FakeContext("ApiFunction"))
    assert answer["statusCode"] == 200, answer
    status = json.loads(answer["body"])
    assert status["approximateCount"] == 2
    assert sorted(m["body"] for m in status["messages"]) == sorted(poison)
    # one names this connection; the unparseable one names none and is shown to every connection
    assert sorted((m["connectionId"] or "", m["orderId"] or 0) for m in status["messages"]) == [("", 0), (CID, -5)]
    assert_all_exported(world, world.books())


def test_an_export_that_dies_after_tagging_until_its_message_is_dead_lettered_is_finished_by_the_next_poll(
    world: World,
) -> None:
    """Our own tag hides the order from the hourly list, and its message is in the dead-letter queue: the poll must
    still see the EXPORTING record whose lease ran out and queue it, or it would stay half-done for ever."""
    order = FEW[0]
    world.load([order])
    killer = Killer(lambda name, number, orders: name == "BillbeeClient.add_tags")
    world.poll()
    with installed(killer):
        delivery = world.deliver(killer=killer)
    assert delivery.receives[json.dumps(message(order["BillBeeOrderId"]))] == 5  # maxReceiveCount, then the DLQ
    assert len(world.stack.dead_letters()) == 1
    assert world.states() == {order["BillBeeOrderId"]: "EXPORTING"}
    assert "Sevdesk" in world.stack.billbee.order(order["BillBeeOrderId"])["Tags"]

    world.hourly()  # the lease has long run out; the next poll queues it again
    assert_all_exported(world, world.books())
    assert world.requests("sevdesk", "save_voucher") == 1


# -- what the faults revealed in details -----------------------------------------------------------------------------
def test_a_contact_whose_create_answer_was_lost_still_gets_its_address_and_email(world: World) -> None:
    world.fault("sevdesk", "create_contact", "saved500", times=1)
    world.poll()
    world.deliver()
    assert_all_exported(world, world.books())
    for contact in world.stack.sevdesk.dump()["contacts"]:
        assert contact["addresses"], f"contact {contact['customerNumber']} has no address"
        assert contact["communicationWays"], f"contact {contact['customerNumber']} has no e-mail"


def test_the_local_stacks_two_export_workers_keep_their_own_failed_records(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LocalStack.drain`` (used by ``make run`` and the e2e tests) runs two workers, like the template's two Lambda
    containers. A record that failed in one worker's batch must come back even when the other worker starts its
    next invocation meanwhile (each Lambda container has its own batch processor)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor

    from connector.errors import TransientError
    from connector.pipeline.export import Exporter

    world.load(derive_orders(12))  # two full batches of five and a third one
    # As on AWS (30 s), the failed message's back-off outlasts the rest of its batch: it does not come back on its
    # own before its invocation has reported it.
    runtime = world.stack.export_app.runtime
    monkeypatch.setattr(runtime, "config", dataclasses.replace(runtime.config, retry_base_seconds=5.0))
    failed, other_invocation_began = threading.Event(), threading.Event()
    state: dict[str, Any] = {"worker": None, "order": None, "waited": False}
    lock = threading.Lock()
    steps, prepare = Exporter._steps, BatchProcessor._prepare

    def failing_steps(self: Exporter, settings: Any, clients: Any, record: Any, owner: str) -> Any:
        me = threading.current_thread().name
        with lock:
            first = state["worker"] is None
            if first:
                state["worker"], state["order"] = me, record.order_id
            wait = not first and me == state["worker"] and not state["waited"]
            state["waited"] = state["waited"] or wait
        if first:  # the first record of one worker's batch fails ...
            failed.set()
            raise TransientError("sevdesk", "a transient failure")
        if wait:  # ... and its next record runs while the other worker begins a new invocation
            assert other_invocation_began.wait(15)
        return steps(self, settings, clients, record, owner)

    def watched_prepare(self: BatchProcessor) -> None:
        prepare(self)  # type: ignore[no-untyped-call]
        if failed.is_set() and threading.current_thread().name != state["worker"]:
            other_invocation_began.set()

    monkeypatch.setattr(Exporter, "_steps", failing_steps)
    monkeypatch.setattr(BatchProcessor, "_prepare", watched_prepare)
    world.poll()
    world.stack.drain()
    assert state["waited"] and other_invocation_began.is_set()
    record = world.record(state["order"])
    assert record.state.value == "EXPORTED", f"{record.state.value} after {record.attempts} attempt(s): the failed " \
        "record's message was deleted as if it had succeeded"
