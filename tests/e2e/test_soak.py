"""Soak (issue 5): a seeded random schedule of faults over 500 orders, then the exactly-once invariants.

Several hourly rounds run with a random mix of everything the fault suite tests one at a time: sevDesk and Billbee
errors, timeouts, dropped connections, 429 storms and "saved, but the answer was lost" on random operations; export
functions killed between random steps; duplicate SQS deliveries; overlapping polls, a poll killed half-way, a poll
failing on its second page; two concurrent Lambda containers. After the faulty rounds the books must already be safe
(never two vouchers, no tag without a voucher, no booking too many); then the faults stop and the next hourly runs
must settle every order: EXPORTED exactly once, or NEEDS_ATTENTION with the reason it gave up. The sample shop's
credit notes come along: Storno orders linked to their copied originals (by parent id or "-GS" number), states
outside the connection's filter included, each exported once and linked to its original.

The schedule comes from one seed, printed when the test fails (thread interleavings still vary between runs).
Re-run a schedule with ``SOAK_SEED=<seed> make test PYTEST_ARGS='tests/e2e/test_soak.py'``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chaos import (
    HOUR,
    INVOICE_NUMBER_BASE,
    BackoffRecorder,
    Books,
    Killed,
    Killer,
    LambdaPoller,
    TimeMachine,
    check_books,
    derive_orders,
    faulted,
    installed,
)

from local.faults import FaultPlan, FaultRule
from local.lambda_sqs import FakeContext
from local.stack import LocalStack, load_handler

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONNECTION: dict[str, Any] = json.loads((REPO / "local" / "sample_connection.json").read_text())
CID = CONNECTION["connectionId"]
POLL_EVENT = json.loads((REPO / "events" / "poll_schedule.json").read_text())

ORDERS = 500
FIRST_TRANCHE = 260  # more than one Billbee page of 250
LATER_TRANCHE = 120
LATE_INVOICE_DATE = "2026-11-20T09:30:00"
FAULT_ROUNDS = 3
SETTLE_ROUNDS = 4
TARGETS_PER_ROUND = 7
DEATH_PROBABILITY = 0.003  # per world-changing step of an export: about 20 deaths a run
DUPLICATE_RATE = 0.04  # share of received batches whose first message SQS delivers a second time
# A fixed default keeps `make test` repeatable; SOAK_SEED=random (or a number) explores other schedules.
_SEED_TEXT = os.environ.get("SOAK_SEED") or "1234"
SEED = random.SystemRandom().randrange(1_000_000) if _SEED_TEXT == "random" else int(_SEED_TEXT)

SEVDESK_WRITES = ("upload_temp_file", "save_voucher", "book_amount", "create_contact", "create_contact_address",
                  "create_communication_way")
SEVDESK_READS = ("list_vouchers", "get_voucher", "list_contacts", "guidance_revenue", "bookkeeping_version")
BILLBEE_OPERATIONS = ("get_order", "create_invoice", "add_tags", "list_invoices", "list_orders")
WRITE_KINDS = ("500", "502", "503", "429", "429bare", "drop", "saved500", "saveddrop", "timeout", "savedtimeout",
               "latecommit")
READ_KINDS = ("500", "503", "429", "429bare", "drop", "timeout")
SLOW_KINDS = frozenset({"timeout", "savedtimeout", "latecommit"})  # each costs the client's timeout: kept rare
LOST_ANSWER_KINDS = ("saved500", "saveddrop", "savedtimeout", "latecommit")


def fault_schedule(rng: random.Random) -> list[FaultRule]:
    """One round's faults: random operations, each with a random kind that fires on a random share of requests.
    The two writes whose lost answers matter most always get an applied-but-lost kind, and every round has writes
    that commit late: seconds to 14 minutes after the client gave up (issue 8, item 9)."""
    rules = [
        FaultRule("sevdesk", "save_voucher", rng.choice(LOST_ANSWER_KINDS), times=float("inf"), probability=0.05),
        FaultRule("sevdesk", "book_amount", rng.choice(LOST_ANSWER_KINDS), times=float("inf"), probability=0.05),
    ]
    for operation in ("save_voucher", "book_amount", "create_contact"):
        rules.append(FaultRule("sevdesk", operation, "latecommit", times=float("inf"), probability=0.02))
    for rule in rules:
        if rule.kind == "latecommit":
            rule.delay = rng.uniform(1.0, 850.0)
    targets = [("sevdesk", op) for op in SEVDESK_WRITES + SEVDESK_READS] + [("billbee", op) for op in
                                                                          BILLBEE_OPERATIONS]
    for api, operation in rng.sample(targets, TARGETS_PER_ROUND):
        writes = api == "sevdesk" and operation in SEVDESK_WRITES
        kind = rng.choice(WRITE_KINDS if writes else READ_KINDS)
        probability = rng.uniform(0.005, 0.02) if kind in SLOW_KINDS else rng.uniform(0.02, 0.1)
        if operation == "list_orders":
            probability = min(probability, 0.05)
        rules.append(FaultRule(api, operation, kind, times=float("inf"), probability=probability,
                               retry_after=rng.choice((1, 2, 30)), delay=rng.uniform(1.0, 850.0)))
    return rules


def describe(rules: list[FaultRule]) -> str:
    return ", ".join(f"{r.api}.{r.operation}={r.kind}@{r.probability:.3f}" for r in rules)


class Soak:
    def __init__(self, stack: LocalStack, rng: random.Random, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.rng = rng
        self.monkeypatch = monkeypatch
        self.clock = TimeMachine().install(stack)
        self.lambdas = LambdaPoller(stack, self.clock)
        self.second_poll = load_handler("poll")  # a second PollFunction container, for overlapping polls
        self.clock.attach(self.second_poll.runtime.store)
        self.log: list[str] = [f"seed {SEED}"]

    def berlin_now(self) -> str:
        """The functions' shifted time as Billbee stamps it (naive Berlin wall time)."""
        moment = datetime.fromtimestamp(self.clock.epoch(), ZoneInfo("Europe/Berlin"))
        return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")

    def poll(self, mode: str) -> None:
        """One hourly poll, disturbed as ``mode`` says."""
        from connector.pipeline.poll import Poller

        if mode == "overlapping":
            errors: list[BaseException] = []

            def second() -> None:
                try:
                    self.second_poll.handler(POLL_EVENT, FakeContext("PollFunction"))
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            thread = threading.Thread(target=second, name="second-poll")
            thread.start()
            self.stack.poll()
            thread.join(300)
            assert not errors, errors
        elif mode == "killed":
            untagged = sum("sevdesk" not in [t.lower() for t in o.get("Tags") or []]
                           for o in self.stack.billbee.dump_orders())
            cut = self.rng.randrange(1, untagged + 1)
            calls: list[int] = []
            original: Callable[..., Any] = Poller._upsert

            def upsert(poller: Poller, *args: Any) -> str:
                calls.append(1)
                if len(calls) == cut:
                    raise Killed(f"poll killed at its record {cut}")
                return str(original(poller, *args))

            with self.monkeypatch.context() as patch:
                patch.setattr(Poller, "_upsert", upsert)
                try:
                    self.stack.poll()
                except Killed:
                    self.log.append(f"  poll killed at record {cut}")
            self.stack.poll()  # Lambda retries a failed asynchronous invocation
        elif mode == "second-page-fails":
            rule = self.stack.faults.add(FaultRule("billbee", "list_orders", "503", times=4, after=1))
            self.stack.poll()
            self.stack.faults.rules.remove(rule)
        else:
            self.stack.poll()

    def open_orders(self) -> int:
        return sum(r.state.value in ("PENDING", "EXPORTING", "FAILED") for r in self.stack.records(CID))

    def books(self, orders: list[dict[str, Any]], *, settled: bool) -> Books:
        return check_books(self.stack, CID, originals=orders, settled=settled)


def test_a_seeded_random_fault_schedule_over_500_orders_keeps_every_order_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(SEED)  # noqa: S311 - a test schedule
    orders = derive_orders(ORDERS)
    # New orders arrive every hour, as in a shop: the first tranche fills two Billbee pages, then two more follow.
    tranches = [orders[:FIRST_TRANCHE], orders[FIRST_TRANCHE:FIRST_TRANCHE + LATER_TRANCHE],
                orders[FIRST_TRANCHE + LATER_TRANCHE:]]
    faults = FaultPlan(seed=SEED)
    with LocalStack(orders=tranches[0], faults=faults, billbee_rate_limits=False,
                    extra_env={"HTTP_TIMEOUT_SECONDS": "0.5"}) as stack:
        stack.save_connection(CONNECTION)
        soak = Soak(stack, rng, monkeypatch)
        killer = Killer.random(random.Random(rng.random()), DEATH_PROBABILITY)  # noqa: S311
        backoff = BackoffRecorder()
        log = soak.log
        started = time.monotonic()
        try:
            with installed(killer, backoff):
                # Only the first round lists more than one page of untagged orders.
                modes = [rng.choice(("plain", "overlapping", "killed", "second-page-fails"))] + [
                    rng.choice(("plain", "overlapping", "killed")) for _ in range(FAULT_ROUNDS - 1)
                ]
                for number, mode in enumerate(modes):
                    if number > 0:
                        for order in tranches[number]:
                            if order["TotalCost"] < 0:  # a Stornorechnung is dated the day it is created
                                order["InvoiceDate"] = soak.berlin_now()
                            stack.billbee.add_order(order)
                        # The merchant invoices the orders that had no invoice an hour ago.
                        for order in tranches[number - 1]:
                            if not order.get("InvoiceNumber"):
                                late_number = INVOICE_NUMBER_BASE + 100_000 + order["BillBeeOrderId"] % 10_000
                                stack.billbee.set_invoice(order["BillBeeOrderId"], late_number, LATE_INVOICE_DATE)
                    rules = fault_schedule(rng)
                    for rule in rules:
                        faults.add(rule)
                    log.append(f"round {number}: {len(stack.billbee.dump_orders())} orders in Billbee, poll {mode}; "
                               f"faults {describe(rules)}")
                    soak.poll(mode)
                    delivery = soak.lambdas.deliver(killer=killer, duplicate_rate=DUPLICATE_RATE, rng=rng)
                    log.append(f"  {delivery.invocations} invocations, {delivery.deaths} deaths, "
                               f"{delivery.item_failures} failed items, {delivery.duplicates_sent} duplicates, "
                               f"{delivery.waves} waves")
                    log.append(f"  {time.monotonic() - started:.0f} s")
                    faults.clear()
                    soak.clock.advance(HOUR)
            # Before anything settles: duplicates and tags without vouchers would show now (they never go away).
            books = soak.books(orders, settled=False)
            log.append(f"after the faults: {books.summary()}")
            assert books.problems == [], "\n".join([*log, *books.problems[:20]])
            log.append(f"faults fired: {sum(faulted(stack).values())}, exports killed: {len(killer.deaths)}")

            for _ in range(SETTLE_ROUNDS):  # no more faults: the next hourly runs
                soak.poll("plain")
                soak.lambdas.deliver()
                if soak.open_orders() == 0:
                    break
                soak.clock.advance(HOUR)
            books = soak.books(orders, settled=True)
            log.append(f"settled: {books.summary()} after {time.monotonic() - started:.0f} s")
            assert stack.sevdesk.late_commits_pending == 0, "a late write is still to land after settling"
            assert books.problems == [], "\n".join([*log, *books.problems[:20]])

            records = {r.order_id: r for r in stack.records(CID)}
            assert set(records) == {o["BillBeeOrderId"] for o in orders}, "\n".join(log)
            invoiced = {o["BillBeeOrderId"] for o in stack.billbee.dump_orders() if o.get("InvoiceNumber")}
            given_up = [r for r in records.values() if r.state.value == "NEEDS_ATTENTION"]
            assert all(r.reason.startswith("gave up after") for r in given_up), "\n".join(
                [*log, *(f"{r.order_id}: {r.reason}" for r in given_up)]
            )
            exported = [i for i in invoiced if records[i].state.value == "EXPORTED"]
            assert len(exported) >= 0.95 * len(invoiced), "\n".join(log)
            assert all(r.state.value == "SKIPPED" for i, r in records.items() if i not in invoiced)
            credit_notes = [o["BillBeeOrderId"] for o in orders if o["TotalCost"] < 0]
            booked = [i for i in credit_notes if records[i].state.value == "EXPORTED"]
            linked = [i for i in booked if records[i].credit_note_of]
            log.append(f"credit notes: {len(credit_notes)}, exported {len(booked)}, linked to an original "
                       f"{len(linked)}")
            assert credit_notes and len(booked) >= 0.95 * len(credit_notes), "\n".join(log)
            assert len(linked) >= 0.7 * len(booked), "\n".join(log)  # 3 of the sample's 4 have an original
            assert sum(faulted(stack).values()) > 100 and len(killer.deaths) > 5, "\n".join(log)
            late = sum(n for (_, _, kind), n in faulted(stack).items() if kind == "latecommit")
            assert late > 0 and stack.sevdesk.late_commits_applied, "\n".join(log)
            print("\n".join(log))  # shown with -rA / -s: what this run went through
        finally:
            backoff.uninstall()
            soak.clock.uninstall()
