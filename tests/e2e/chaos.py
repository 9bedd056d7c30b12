"""Chaos helpers for the fault-injection suite and the soak (issue 5): make things go wrong, then check the books.

The sandboxes' ``FaultPlan`` breaks single HTTP exchanges (local/faults.py). What it cannot do lives here:

- ``Killed`` / ``Killer``: the Lambda runtime killing a function between two steps (timeout, out of memory). The
  killer wraps every step that changes the outside world (a record write, a sevDesk or Billbee write) and raises
  ``Killed`` - a ``BaseException``, so no ``except Exception`` in the connector or in powertools catches it, just as
  nothing catches a SIGKILL - right *after* the step, so its effect is done but nothing later happened.
- ``TimeMachine``: moves the functions' clocks (leases, the 15-minute re-queue rule, the hourly schedule, the secret
  cache) forward without sleeping.
- ``LambdaPoller``: Lambda's SQS event source, faithful where faults matter: one module per concurrent worker (a
  Lambda container each, so the module-level ``BatchProcessor`` is not shared) with the deployed timings (lease
  150 s, back-off from 30 s), a failed message or a died batch returns only after its back-off or the queue's
  visibility timeout (the clock moves on, nothing sleeps), at-least-once delivery (optional duplicate messages), and
  the queue's maxReceiveCount moving a message to the dead-letter queue.
- ``check_books``: the exactly-once invariants over the sevDesk sandbox, the Billbee sandbox, the records and the
  dead-letter queue; returns the list of problems (empty = the books are right).
- ``derive_orders`` (many distinct orders from the sample shop), ``reset`` (a running stack back to a blank account,
  cheaper than a new one), ``BackoffRecorder`` (the retry waits, recorded instead of slept).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import threading
import time as _time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from local.lambda_sqs import invoke_batch
from local.stack import LocalStack, load_handler

EXPORT_VISIBILITY_SECONDS = 720  # template.yaml ExportQueue VisibilityTimeout: a died batch comes back after this
MAX_BACKOFF_SECONDS = 900  # connector/config.py retry_max_seconds: the longest a failed message stays away
# The timings of the deployed functions (connector/config.py defaults), which the poller's containers use: a lease
# outlives an invocation, and a failed message's back-off (30 s doubling, at most 900 s) is set by the handler.
AWS_TIMINGS = {
    "LEASE_SECONDS": "150", "RETRY_BASE_SECONDS": "30", "RETRY_MAX_SECONDS": "900",
    "UNKNOWN_RECHECK_SECONDS": "60", "UNKNOWN_SETTLE_SECONDS": "900",
}
WAVE_SECONDS = max(EXPORT_VISIBILITY_SECONDS, MAX_BACKOFF_SECONDS)  # between two waves, every parked one is due
HOUR = 3600
HIDE_SECONDS = 3600  # real seconds a received message stays hidden; the poller makes it visible again itself


def aws_client(stack: LocalStack, service: str) -> Any:
    """One boto3 client per running stack and service (creating one costs about a tenth of a second)."""
    assert stack.aws is not None
    cache: dict[tuple[str, str], Any] = stack.__dict__.setdefault("_chaos_clients", {})
    key = (stack.aws.endpoint_url, service)  # a stopped and restarted stack gets a new moto server
    if key not in cache:
        cache[key] = stack.aws.client(service)
    return cache[key]


class Killed(BaseException):  # noqa: N818 - named for what happened, like SystemExit
    """The runtime killed the function (timeout, out of memory): nothing in the function can catch or clean up."""


# -- time ------------------------------------------------------------------------------------------------------------
class _ShiftedTime:
    """Stands in for the ``time`` module inside connector modules that cache by ``time.monotonic()``."""

    def __init__(self, machine: TimeMachine) -> None:
        self._machine = machine

    def monotonic(self) -> float:
        return _time.monotonic() + self._machine.offset

    def time(self) -> float:
        return _time.time() + self._machine.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


class TimeMachine:
    """The functions' clocks, moved forward on demand: lease expiry, REQUEUE_AFTER, the secret and guidance caches.

    Attach every ``Store`` (one per function container); ``install`` also shifts the caches' monotonic clocks.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self._stores: list[Any] = []
        self._sandboxes: list[Any] = []
        self._saved_modules: list[tuple[ModuleType, Any]] = []

    def epoch(self) -> float:
        return _time.time() + self.offset

    def clock(self) -> str:
        moment = datetime.now(UTC) + timedelta(seconds=self.offset)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def attach(self, store: Any) -> None:
        store.epoch = self.epoch
        store.clock = self.clock
        self._stores.append(store)

    def install(self, stack: LocalStack) -> TimeMachine:
        import connector.pipeline.runtime as runtime_module
        import connector.secrets as secrets_module

        self.attach(stack.runtime.store)
        self.attach(stack.export_runtime.store)
        # The sandboxes' late commits happen on the same clock as the functions' waits for them.
        for sandbox in (stack.billbee, stack.sevdesk):
            sandbox.late_clock = self.epoch
            self._sandboxes.append(sandbox)
        for module in (secrets_module, runtime_module):
            self._saved_modules.append((module, module.__dict__["time"]))
            setattr(module, "time", _ShiftedTime(self))  # noqa: B010 - the module's global, by name
        return self

    def uninstall(self) -> None:
        from connector.store.dynamo import utc_now

        for store in self._stores:
            store.epoch = _time.time
            store.clock = utc_now
        self._stores.clear()
        for sandbox in self._sandboxes:
            sandbox.late_clock = _time.time
        self._sandboxes.clear()
        for module, original in self._saved_modules:
            setattr(module, "time", original)  # noqa: B010
        self._saved_modules.clear()
        self.offset = 0.0


# -- deaths ----------------------------------------------------------------------------------------------------------
def _kill_points() -> list[tuple[type, str]]:
    """Every step of an export that changes the outside world; a death right after one is a death between two."""
    from connector.billbee.client import BillbeeClient
    from connector.sevdesk.client import SevdeskClient
    from connector.store.dynamo import Store

    return [
        (Store, "save"),
        (Store, "claim_contact"),
        (Store, "save_contact"),
        (SevdeskClient, "upload_temp_file"),
        (SevdeskClient, "save_voucher"),
        (SevdeskClient, "book_amount"),
        (SevdeskClient, "create_contact"),
        (SevdeskClient, "add_contact_address"),
        (SevdeskClient, "add_contact_email"),
        (BillbeeClient, "invoice_document"),
        (BillbeeClient, "add_tags"),
    ]


Decide = Callable[[str, int, tuple[int, ...]], bool]


@dataclass(frozen=True)
class Death:
    orders: tuple[int, ...]  # the batch the invocation held
    step: int  # the n-th world-changing step of that invocation
    after: str  # e.g. "SevdeskClient.save_voucher"


class Killer:
    """Kills export invocations right after a chosen step. Only threads between ``begin`` and ``end`` are affected
    (the poll and the test's own inspection never die). ``decide(step_name, step_number, batch_order_ids)``."""

    def __init__(self, decide: Decide) -> None:
        self.decide = decide
        self.deaths: list[Death] = []
        self.invocations: list[tuple[tuple[int, ...], list[str]]] = []  # each invocation's batch and its steps
        self._local = threading.local()
        self._lock = threading.Lock()
        self._originals: list[tuple[type, str, Any]] = []

    @classmethod
    def at_step(cls, step_of_order: dict[int, int]) -> Killer:
        """Kill the export of order X once, right after its ``step_of_order[X]``-th step."""
        done: set[int] = set()

        def decide(name: str, number: int, orders: tuple[int, ...]) -> bool:
            for order_id in orders:
                if order_id not in done and step_of_order.get(order_id) == number:
                    done.add(order_id)
                    return True
            return False

        return cls(decide)

    @classmethod
    def random(cls, rng: random.Random, probability: float) -> Killer:
        lock = threading.Lock()

        def decide(name: str, number: int, orders: tuple[int, ...]) -> bool:
            with lock:
                return rng.random() < probability

        return cls(decide)

    def begin(self, orders: tuple[int, ...]) -> None:
        self._local.orders = orders
        self._local.count = 0
        self._local.names = []

    def end(self) -> list[str]:
        names: list[str] = getattr(self._local, "names", [])
        orders = getattr(self._local, "orders", None)
        if orders is not None:
            with self._lock:
                self.invocations.append((orders, list(names)))
        self._local.orders = None
        return names

    def _after(self, name: str) -> None:
        orders = getattr(self._local, "orders", None)
        if orders is None:
            return
        self._local.count += 1
        self._local.names.append(name)
        if self.decide(name, self._local.count, orders):
            with self._lock:
                self.deaths.append(Death(orders, self._local.count, name))
            raise Killed(f"killed after step {self._local.count} ({name}) of the export of {orders}")

    def install(self) -> Killer:
        for owner, name in _kill_points():
            original = owner.__dict__[name]
            self._originals.append((owner, name, original))
            setattr(owner, name, self._wrap(owner, name, original))
        return self

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals.clear()

    def _wrap(self, owner: type, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        label = f"{owner.__name__}.{name}"
        killer = self

        @functools.wraps(original)
        def step(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            killer._after(label)
            return result

        return step


# -- Lambda's SQS poller ---------------------------------------------------------------------------------------------
@dataclass
class Delivery:
    invocations: int = 0
    deaths: int = 0
    item_failures: int = 0
    duplicates_sent: int = 0
    waves: int = 0
    receives: Counter[str] = field(default_factory=Counter)  # message body -> times it was handed to a function


def _order_of(body: str) -> int:
    try:
        return int(json.loads(body).get("orderId"))
    except (ValueError, TypeError, AttributeError):
        return 0


class LambdaPoller:
    """Lambda's SQS event source for the export function, with one function container per concurrent worker.

    Per wave, ``workers`` threads receive batches and invoke their own container's handler; succeeded messages are
    deleted. A batch item failure (the handler sets its back-off, 30 s and more) and every message of an invocation
    that died (720 s) come back at the end of the wave: the clock moves on by ``WAVE_SECONDS`` (nothing sleeps) and
    the messages are made visible again. maxReceiveCount moves a message to the dead-letter queue, as SQS does.
    """

    def __init__(self, stack: LocalStack, clock: TimeMachine, *, workers: int = 2, batch_size: int = 5) -> None:
        self.stack = stack
        self.clock = clock
        self.batch_size = batch_size
        saved = {name: os.environ.get(name) for name in AWS_TIMINGS}
        os.environ.update(AWS_TIMINGS)  # read once, when a container's Runtime is built
        try:
            self.containers = [load_handler("export") for _ in range(workers)]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.use_clock(clock)
        self.sqs = aws_client(stack, "sqs")
        self.queue_url = stack.queue_url
        self.stale_handles = 0
        self._lock = threading.Lock()

    def use_clock(self, clock: TimeMachine) -> None:
        """Run the containers on this clock (a poller outlives a test; each test brings its own clock)."""
        self.clock = clock
        for container in self.containers:
            clock.attach(container.runtime.store)

    def forget(self) -> None:
        """Drop what the containers cached (credentials), as after a cold start."""
        for container in self.containers:
            container.runtime.secrets._cache.clear()

    def deliver(
        self,
        *,
        killer: Killer | None = None,
        duplicate_rate: float = 0.0,
        rng: random.Random | None = None,
        max_waves: int = 25,
    ) -> Delivery:
        stats = Delivery()
        lock = threading.Lock()
        rng = rng or random.Random(0)  # noqa: S311 - test schedule, not security
        for _ in range(max_waves):
            stats.waves += 1
            parked: list[str] = []
            errors: list[BaseException] = []

            def work(container: ModuleType, parked: list[str] = parked, errors: list[BaseException] = errors) -> None:
                try:
                    self._work(container, stats, parked, lock, killer, duplicate_rate, rng)
                except BaseException as exc:  # a harness bug must fail the test, not vanish with the thread
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=(c,), name=f"lambda-{i}") for i, c in
                       enumerate(self.containers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            if parked:
                self.clock.advance(WAVE_SECONDS)
                for handle in parked:
                    self._settle_message(self.sqs.change_message_visibility, handle, VisibilityTimeout=0)
                continue
            if self.visible_messages() == 0:
                return stats
        raise AssertionError(f"the export queue still holds messages after {max_waves} waves")

    def _work(
        self,
        container: ModuleType,
        stats: Delivery,
        parked: list[str],
        lock: threading.Lock,
        killer: Killer | None,
        duplicate_rate: float,
        rng: random.Random,
    ) -> None:
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=0,
                VisibilityTimeout=HIDE_SECONDS,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return
            if duplicate_rate:
                with lock:
                    duplicate = rng.random() < duplicate_rate
                if duplicate:  # SQS is at-least-once: the same body may come again, even while this one runs
                    self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=messages[0]["Body"])
                    with lock:
                        stats.duplicates_sent += 1
            with lock:
                stats.receives.update(m["Body"] for m in messages)
            if killer is not None:
                killer.begin(tuple(_order_of(m["Body"]) for m in messages))
            with lock:
                stats.invocations += 1
                self.stack.invocations["export"] += 1
            try:
                result = invoke_batch(container.handler, messages, self.queue_url)
            except Killed:
                with lock:
                    stats.deaths += 1
                    parked.extend(m["ReceiptHandle"] for m in messages)
                continue
            finally:
                if killer is not None:
                    killer.end()
            for message in messages:
                if result.died or message["MessageId"] in result.failed:
                    with lock:
                        stats.item_failures += 0 if result.died else 1
                        parked.append(message["ReceiptHandle"])
                else:
                    self._settle_message(self.sqs.delete_message, message["ReceiptHandle"])

    def _settle_message(self, call: Callable[..., Any], handle: str, **kwargs: Any) -> None:
        """Delete a message or make it visible again. SQS (and moto, whose concurrent receives can hand one message
        to two workers) may have dropped the handle already: the message went to another receiver, which settled
        it; that is at-least-once delivery, not an error of the function."""
        try:
            call(QueueUrl=self.queue_url, ReceiptHandle=handle, **kwargs)
        except self.sqs.exceptions.ReceiptHandleIsInvalid:
            with self._lock:
                self.stale_handles += 1

    def visible_messages(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


def dead_letter_bodies(stack: LocalStack) -> list[Any]:
    """Every message in the dead-letter queue, read the way the status API reads it."""
    return stack.dead_letters()


# -- retry waits -----------------------------------------------------------------------------------------------------
class BackoffRecorder:
    """Replaces the transport's ``sleep``: every back-off and Retry-After wait is recorded, none is slept.

    The sandboxes' faults count requests, not seconds, so skipping the waits changes no outcome, only the run time.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._lock = threading.Lock()
        self._saved: Any = None

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)

    def install(self) -> BackoffRecorder:
        from connector.transport import send

        defaults = send.__kwdefaults__
        assert defaults is not None and "sleep" in defaults
        self._saved = defaults["sleep"]
        defaults["sleep"] = self
        return self

    def uninstall(self) -> None:
        from connector.transport import send

        if self._saved is not None and send.__kwdefaults__ is not None:
            send.__kwdefaults__["sleep"] = self._saved
            self._saved = None


@contextmanager
def installed(*helpers: Any) -> Iterator[None]:
    """``with installed(killer, recorder): ...`` - each helper's install/uninstall around the block."""
    done: list[Any] = []
    try:
        for helper in helpers:
            helper.install()
            done.append(helper)
        yield
    finally:
        for helper in reversed(done):
            helper.uninstall()


# -- orders ----------------------------------------------------------------------------------------------------------
ORDER_ID_BASE = 310_000_000_000_000
INVOICE_NUMBER_BASE = 200_000
CUSTOMER_ID_BASE = 320_000_000_000_000


def derive_order(template: dict[str, Any], serial: int, *, new_customer: bool) -> dict[str, Any]:
    """A distinct order made from a sample order: new BillBeeOrderId, order number and invoice number (if it has one),
    and optionally a new customer (so a new sevDesk contact); amounts, items and payments are the template's."""
    order = copy.deepcopy(template)
    order["BillBeeOrderId"] = ORDER_ID_BASE + serial
    order["Id"] = f"CH-{serial}"
    order["OrderNumber"] = f"CH-{serial}"
    if order.get("InvoiceNumber"):
        order["InvoiceNumber"] = INVOICE_NUMBER_BASE + serial
    for index, payment in enumerate(order.get("Payments") or []):
        payment["BillbeeId"] = (ORDER_ID_BASE + serial) * 10 + index
    if new_customer and order.get("Customer"):
        customer_id = CUSTOMER_ID_BASE + serial
        order["Customer"]["Id"] = customer_id
        order["Customer"]["Number"] = serial
        order["CustomerNumber"] = str(serial)
    return order


def derive_orders(count: int, *, templates: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """``count`` distinct orders cycling through the sample shop; every other round of copies brings new customers,
    so some customers have many orders (contact reuse under concurrency) and many have one (contact creation)."""
    from local.sample_shop import sample_orders

    base = templates if templates is not None else sample_orders()
    orders = [
        derive_order(base[serial % len(base)], serial, new_customer=(serial // len(base)) % 2 == 1)
        for serial in range(count)
    ]
    # A Storno order keeps its link to the copy of its original in the same round: the parent id and the "-GS" number.
    index_of = {o["BillBeeOrderId"]: i for i, o in enumerate(base)}
    for serial, order in enumerate(orders):
        template = base[serial % len(base)]
        parent = template.get("BillBeeParentOrderId")
        number = template.get("OrderNumber") or ""
        original_index = index_of.get(parent) if parent else None
        if original_index is None and number.endswith("-GS"):
            original_index = next((i for i, o in enumerate(base) if o.get("OrderNumber") == number[:-3]), None)
        if original_index is None:
            continue
        original_serial = serial - serial % len(base) + original_index
        order["BillBeeParentOrderId"] = ORDER_ID_BASE + original_serial if parent else None
        order["OrderNumber"] = f"CH-{original_serial}-GS"
    return orders


_STRICT_PURGE = "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"


# -- a blank account -------------------------------------------------------------------------------------------------
def reset(stack: LocalStack, orders: list[dict[str, Any]], connection: dict[str, Any]) -> None:
    """A running stack back to a blank merchant: these Billbee orders, an empty sevDesk account, an empty table and
    queues, no faults, no cached credentials; then the connection saved again. Much cheaper than a new stack."""
    stack.faults.clear()
    billbee = stack.billbee
    with billbee.lock:
        billbee.api_key = stack.credentials["billbeeApiKey"]
        billbee.username = stack.credentials["billbeeUsername"]
        billbee.password = stack.credentials["billbeeApiPassword"]
        billbee._orders.clear()
        for order in orders:
            billbee._store(order)
        billbee.invoices_created.clear()
        billbee.handled.clear()
    stack.sevdesk.api_token = stack.credentials["sevdeskApiToken"]
    stack.sevdesk.bookkeeping_version = "2.0"
    stack.sevdesk.reset()
    for sandbox in (stack.billbee, stack.sevdesk):
        sandbox.discard_late_commits()  # a late write of the previous merchant must not land in this one
    dynamodb = aws_client(stack, "dynamodb")
    table = stack.env["TABLE_NAME"]
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "PK, SK"}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    sqs = aws_client(stack, "sqs")
    # SQS allows one purge a minute; the moto server runs in this process and reads this switch per call.
    previous = os.environ.get(_STRICT_PURGE)
    os.environ[_STRICT_PURGE] = "false"
    try:
        for url in (stack.queue_url, stack.env["EXPORT_DLQ_URL"]):
            sqs.purge_queue(QueueUrl=url)
    finally:
        if previous is None:
            os.environ.pop(_STRICT_PURGE, None)
        else:
            os.environ[_STRICT_PURGE] = previous
    for runtime in (stack.runtime, stack.export_runtime):
        runtime.secrets._cache.clear()  # the clients themselves follow the credentials (Runtime.clients_for)
    stack.save_connection(connection)
    with billbee.lock:
        billbee.exchanges.clear()
    with stack.sevdesk.lock:
        stack.sevdesk.exchanges.clear()
    stack.invocations = {"poll": 0, "export": 0}


# -- the invariants --------------------------------------------------------------------------------------------------
@dataclass
class Books:
    """What ``check_books`` saw, for the tests' own assertions and for messages."""

    problems: list[str] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    vouchers: int = 0
    bookings: int = 0
    contacts: int = 0
    dead_letters: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"states {dict(sorted(self.states.items()))}, {self.vouchers} vouchers, {self.bookings} bookings, "
            f"{self.contacts} contacts, {len(self.dead_letters)} dead letters"
        )


def _cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def check_books(  # noqa: C901 - one list of invariants reads best in one place
    stack: LocalStack,
    connection_id: str,
    *,
    originals: list[dict[str, Any]] | None = None,
    settled: bool = True,
) -> Books:
    """Exactly once, checked from the outside: the sevDesk account, the Billbee orders, the records, the DLQ.

    - never two vouchers for one invoice number, never two contacts for one customer number;
    - no voucher without a record of its order; no voucher with more bookings than its order has payments;
    - an order carrying the export tag has exactly one voucher and an EXPORTED record (a tag without a voucher
      would hide the order from every later poll: lost silently); before settling, EXPORTING too (under way);
    - every invoiced order that matches the connection has a record once settled (never missing from both sevDesk
      and the report); before that, only an order with a voucher must have one;
    - EXPORTED: its voucher exists with its invoice number, the invoice's gross to the cent and the PDF, one booking
      per planned payment on the planned account, its contact (one per customer), the tag set, the merchant's own
      tags kept;
    - FAILED has its last error, NEEDS_ATTENTION and SKIPPED a reason; when ``settled``, nothing is left PENDING
      or EXPORTING;
    - Billbee never created an invoice and never had its tags replaced.
    """
    from connector.billbee.models import InvoiceDetails, Order
    from connector.bookkeeping.voucher import BookkeepingProblem, plan_voucher
    from connector.pipeline.filters import matches_filters
    from connector.store.records import ExportState
    from local.sandbox.invoices import printed_invoice_number

    books = Books()
    problems = books.problems
    stored = stack.runtime.store.get_connection(connection_id)
    assert stored is not None, f"connection {connection_id} is not stored"
    settings = stored.settings
    tag = settings.export_tag.lower()
    records = {r.order_id: r for r in stack.records(connection_id)}
    sevdesk = stack.sevdesk.dump()
    books.dead_letters = dead_letter_bodies(stack)
    books.states = Counter(r.state.value for r in records.values())
    books.vouchers = len(sevdesk["vouchers"])
    books.contacts = len(sevdesk["contacts"])
    books.bookings = sum(len(v["bookings"]) for v in sevdesk["vouchers"])

    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for voucher in sevdesk["vouchers"]:
        by_number[voucher["description"]].append(voucher)
        if voucher["creditDebit"] != "D":
            problems.append(f"voucher {voucher['id']} ({voucher['description']}) is not a revenue voucher")
    for description, vouchers in by_number.items():
        if len(vouchers) > 1:
            problems.append(f"{len(vouchers)} vouchers numbered {description}: ids {[v['id'] for v in vouchers]}")
    contacts = Counter(c.get("customerNumber") for c in sevdesk["contacts"])
    for customer_number, count in contacts.items():
        if count > 1:
            problems.append(f"{count} sevDesk contacts with customer number {customer_number}")

    originals_by_id = {o["BillBeeOrderId"]: o for o in originals or []}
    numbers: dict[str, int] = {}
    for raw in stack.billbee.dump_orders():
        order_id = raw["BillBeeOrderId"]
        order = Order.model_validate(raw)
        # The number as Billbee prints it (its own string): the voucher's duplicate key.
        number = printed_invoice_number(raw) if order.has_invoice else None
        if number:
            numbers[number] = order_id
        record = records.get(order_id)
        tags = [t.lower() for t in raw.get("Tags") or []]
        if tag in tags:
            if number is None or len(by_number.get(number, [])) != 1:
                problems.append(f"order {order_id} carries the tag but sevDesk holds "
                                f"{len(by_number.get(number or '', []))} vouchers for it")
            # Before settling, EXPORTING is an export still under way (its worker killed, or outrun by its lease
            # under load): its lease runs out and the next poll queues it again, so nothing is lost yet.
            in_flight = not settled and record is not None and record.state is ExportState.EXPORTING
            if (record is None or record.state is not ExportState.EXPORTED) and not in_flight:
                problems.append(f"order {order_id} carries the tag but its record is "
                                f"{'missing' if record is None else record.state.value}")
        original = originals_by_id.get(order_id)
        if original is not None and not {t.lower() for t in original.get("Tags") or []} <= set(tags):
            problems.append(f"order {order_id} lost merchant tags: {original.get('Tags')} -> {raw.get('Tags')}")
        untagged = Order.model_validate({**raw, "Tags": [t for t in raw.get("Tags") or [] if t.lower() != tag]})
        # Before settling, an untagged order without a record is only not polled yet (the next poll lists it).
        if (settled or number in by_number) and order.has_invoice and matches_filters(untagged, settings) \
                and record is None:
            problems.append(f"order {order_id} ({number}) matches the connection but has no record: "
                            f"{'exported without a report' if number in by_number else 'lost'}")
    for number in by_number:
        if number not in numbers or numbers[number] not in records:
            problems.append(f"voucher {number} belongs to no recorded order")
    _check_credit_notes(stack, settings, records, problems, settled=settled)

    for order_id, record in records.items():
        state = record.state
        vouchers = by_number.get(record.invoice_number or "", [])
        plan = None
        if record.order.get("InvoiceNumber"):
            try:
                invoice = InvoiceDetails.model_validate(record.invoice) if record.invoice else None
                plan = plan_voucher(Order.model_validate(record.order), invoice, settings,
                                    invoice_number=record.invoice_number)
            except BookkeepingProblem:
                plan = None
        for voucher in vouchers:
            planned = len(plan.payments) if plan is not None else 0
            if len(voucher["bookings"]) > planned:
                problems.append(f"order {order_id}: voucher {voucher['id']} has {len(voucher['bookings'])} bookings "
                                f"for {planned} payments")
        if state is ExportState.EXPORTED:
            voucher_id = record.steps.voucher_id
            voucher = next((v for v in sevdesk["vouchers"] if str(v["id"]) == str(voucher_id)), None)
            if voucher is None:
                problems.append(f"order {order_id} is EXPORTED but its voucher {voucher_id} is not in sevDesk")
                continue
            if voucher["description"] != record.invoice_number:
                problems.append(f"order {order_id}: voucher {voucher_id} is numbered {voucher['description']}, "
                                f"the invoice {record.invoice_number}")
            if voucher.get("file") is None:
                problems.append(f"order {order_id}: voucher {voucher_id} has no invoice PDF")
            if plan is None:
                problems.append(f"order {order_id} is EXPORTED but cannot be planned")
                continue
            gross = sum((Decimal(str(p["sumGross"])) for p in voucher["positions"]), Decimal(0))
            if _cents(gross) != _cents(plan.total_gross):
                problems.append(f"order {order_id}: voucher gross {gross} != invoice {plan.total_gross}")
            booked = sorted((_cents(b["amount"]), int(b["checkAccount"]["id"])) for b in voucher["bookings"])
            wanted = sorted((_cents(p.amount), p.check_account_id) for p in plan.payments)
            if booked != wanted:
                problems.append(f"order {order_id}: bookings {booked} != payments {wanted}")
            if len(record.steps.bookings) != len(plan.payments):
                problems.append(f"order {order_id}: record lists {len(record.steps.bookings)} bookings for "
                                f"{len(plan.payments)} payments")
            if settings.sevdesk.create_contacts and plan.contact is not None:
                supplier = (voucher.get("supplier") or {}).get("id")
                if supplier is None or str(supplier) != str(record.steps.contact_id):
                    problems.append(f"order {order_id}: voucher supplier {supplier} != contact "
                                    f"{record.steps.contact_id}")
                if contacts.get(plan.contact.customer_number) != 1:
                    problems.append(f"order {order_id}: {contacts.get(plan.contact.customer_number, 0)} contacts "
                                    f"numbered {plan.contact.customer_number}")
            if record.set_tag:
                raw = stack.billbee.order(order_id)
                if tag not in [t.lower() for t in raw.get("Tags") or []]:
                    problems.append(f"order {order_id} is EXPORTED but not tagged in Billbee")
        elif state is ExportState.FAILED:
            if not record.last_error:
                problems.append(f"order {order_id} is FAILED without an error")
        elif state in (ExportState.NEEDS_ATTENTION, ExportState.SKIPPED):
            if not record.reason:
                problems.append(f"order {order_id} is {state.value} without a reason")
        elif settled:
            problems.append(f"order {order_id} is still {state.value} (last error: {record.last_error})")

    if stack.billbee.invoices_created:
        problems.append(f"Billbee invoices were created as a side effect: {stack.billbee.invoices_created}")
    replaced = [e for e in stack.billbee.exchanges if e.operation == "replace_tags"]
    if replaced:
        problems.append(f"{len(replaced)} PUT .../tags calls replaced merchants' tags")
    return books


def _check_credit_notes(
    stack: LocalStack, settings: Any, records: dict[int, Any], problems: list[str], *, settled: bool
) -> None:
    """Credit notes: each one the connection takes (start date, shops; any order state) has a record once settled,
    and an exported Storno order names the original Billbee links it to (parent id, else the "-GS" number)."""
    from connector.billbee.models import Order
    from connector.bookkeeping.voucher import is_credit_note
    from connector.pipeline.filters import filter_mismatch
    from connector.store.records import ExportState

    orders = stack.billbee.dump_orders()
    by_number = {o.get("OrderNumber"): o["BillBeeOrderId"] for o in orders if o.get("OrderNumber")}
    ids = {o["BillBeeOrderId"] for o in orders}
    tag = settings.export_tag.lower()
    for raw in orders:
        order = Order.model_validate(raw)
        if not order.has_invoice or not is_credit_note(order, None):
            continue
        record = records.get(order.bill_bee_order_id)
        untagged = Order.model_validate({**raw, "Tags": [t for t in raw.get("Tags") or [] if t.lower() != tag]})
        if settled and record is None and filter_mismatch(untagged, settings, credit_note=True) is None:
            problems.append(f"credit note {order.bill_bee_order_id} ({order.printed_invoice_number}) has no record")
        if record is None or record.state is not ExportState.EXPORTED:
            continue
        parent = order.bill_bee_parent_order_id if order.bill_bee_parent_order_id in ids else None
        number = order.order_number or ""
        expected = parent or (by_number.get(number[:-3]) if number.endswith("-GS") else None)
        linked = (record.credit_note_of or {}).get("orderId")
        if expected != linked:
            problems.append(f"credit note {order.bill_bee_order_id} is linked to {linked}, Billbee to {expected}")


def request_counts(stack: LocalStack) -> Counter[tuple[str, str]]:
    """Requests per (api, operation) as the sandboxes saw them (faulted ones included)."""
    with stack.billbee.lock, stack.sevdesk.lock:
        return Counter((e.api, e.operation) for e in [*stack.billbee.exchanges, *stack.sevdesk.exchanges])


def faulted(stack: LocalStack) -> Counter[tuple[str, str, str]]:
    """Faulted requests per (api, operation, kind)."""
    with stack.billbee.lock, stack.sevdesk.lock:
        return Counter(
            (e.api, e.operation, e.fault)
            for e in [*stack.billbee.exchanges, *stack.sevdesk.exchanges]
            if e.fault is not None
        )
