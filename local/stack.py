"""The embedded local stack as a Python object: moto + both sandboxes + the real handlers.

``local.run`` (the CLI) and the end-to-end tests use it the same way::

    with LocalStack(orders=sample_orders()) as stack:
        stack.save_connection(json.loads(Path("local/sample_connection.json").read_text()))
        stack.poll()          # the real PollFunction handler with events/poll_schedule.json
        stack.drain()         # Lambda's SQS poller feeding the real ExportFunction handler
        stack.report("demo-shop")

Each stack gets its own sandboxes and moto resources; the functions' environment is set in ``os.environ`` (as
Lambda would) while the stack runs. One stack at a time per process.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from local.aws import LocalAws
from local.faults import FaultPlan
from local.lambda_sqs import FakeContext, invoke_batch
from local.sandbox.invoices import printed_invoice_number

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS = REPO_ROOT / "events"
LOCAL_HTTP_TIMEOUT = 2.0  # seconds; a "timeout" fault holds the answer longer than this
LOCAL_HOLD_SECONDS = 3.0
BATCH_SIZE = 5  # template: ExportFunction SQS event BatchSize
WORKERS = 2  # export containers draining the queue: the lowest MaximumConcurrency SQS allows (the suite's default)
EXPORT_CONCURRENCY = 6  # template: Parameters.ExportConcurrency default (make bench drains with this many)
RETRY_VISIBILITY_SECONDS = 1  # a failed record is visible again after this (720 s on AWS; shortened locally)
MAX_DRAIN_SECONDS = 600
POLL_TIMEOUT_MS = 600_000  # template: PollFunction Timeout
_ENV_LOCK = threading.Lock()


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under its own module name (the three files are all called app.py)."""
    path = REPO_ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_function_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_credentials() -> dict[str, str]:
    """The sandboxes' fake credentials, fresh per stack: never real ones, never in the repo."""
    return {
        "billbeeApiKey": secrets.token_hex(16),
        "billbeeUsername": "sandbox-merchant@example.com",
        "billbeeApiPassword": "Sandbox-" + secrets.token_urlsafe(12),
        "sevdeskApiToken": secrets.token_hex(16),
    }


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


class LocalStack:
    def __init__(
        self,
        *,
        orders: list[dict[str, Any]],
        credentials: dict[str, str] | None = None,
        faults: FaultPlan | None = None,
        bookkeeping_version: str = "2.0",
        billbee_rate_limits: bool = True,
        billbee_rate_scale: float = 1.0,
        sevdesk_state: bytes | None = None,
        table_items: list[dict[str, Any]] | None = None,
        extra_env: dict[str, str] | None = None,
        billbee_options: dict[str, Any] | None = None,
        sevdesk_options: dict[str, Any] | None = None,
    ) -> None:
        """``billbee_options`` / ``sevdesk_options``: the sandboxes' switches for the readings of the real APIs the
        evidence leaves open (e.g. ``{"invoice_totals": "with_fees"}``); their defaults follow the evidence.
        ``billbee_rate_scale`` K: the Billbee sandbox's limits and the functions' limiter both K times faster."""
        from local.sample_shop import sample_shops
        from local.sandbox.billbee import BillbeeSandbox
        from local.sandbox.sevdesk import SevdeskSandbox

        self.credentials = credentials or generate_credentials()
        self.faults = faults or FaultPlan()
        self.billbee = BillbeeSandbox(
            api_key=self.credentials["billbeeApiKey"],
            username=self.credentials["billbeeUsername"],
            password=self.credentials["billbeeApiPassword"],
            orders=orders,
            shops=sample_shops(),  # the merchant's shops exist whether or not the loaded orders come from them
            faults=self.faults,
            hold_seconds=LOCAL_HOLD_SECONDS,
            rate_limits=billbee_rate_limits,
            rate_scale=billbee_rate_scale,
            **(billbee_options or {}),
        )
        self.sevdesk = SevdeskSandbox(
            api_token=self.credentials["sevdeskApiToken"],
            faults=self.faults,
            hold_seconds=LOCAL_HOLD_SECONDS,
            bookkeeping_version=bookkeeping_version,
            **(sevdesk_options or {}),
        )
        if sevdesk_state is not None:
            self.sevdesk.import_state(sevdesk_state)
        self._table_items = table_items
        self._extra_env = dict(extra_env or {})
        if not billbee_rate_limits:
            self._extra_env.setdefault("BILLBEE_RATE_LIMITS", "off")
        if billbee_rate_scale != 1:
            self._extra_env.setdefault("BILLBEE_RATE_SCALE", f"{billbee_rate_scale:g}")
        self.aws: LocalAws | None = None
        self.env: dict[str, str] = {}
        self.invocations = {"poll": 0, "export": 0}
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        billbee_url = self.billbee.start()
        sevdesk_url = self.sevdesk.start()
        self.aws = LocalAws(parameters={"BillbeeBaseUrl": billbee_url, "SevdeskBaseUrl": sevdesk_url})
        self.aws.__enter__()
        env = self.aws.env()
        env.update(
            {
                "BILLBEE_BASE_URL": billbee_url,
                "SEVDESK_BASE_URL": sevdesk_url,
                "HTTP_TIMEOUT_SECONDS": str(LOCAL_HTTP_TIMEOUT),
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
                # Time scaled down for the local stack: on AWS a lease is 150 s and back-off starts at 30 s.
                "LEASE_SECONDS": "8",
                "RETRY_BASE_SECONDS": "0.5",
                "RETRY_MAX_SECONDS": "4",
                # A lost write is searched for again after 1 s and written again after 6 s without a trace (60 s
                # and 15 min on AWS); the sandboxes' "latecommit" fault applies a write 3 s after it arrived.
                "UNKNOWN_RECHECK_SECONDS": "1",
                "UNKNOWN_SETTLE_SECONDS": "6",
                **self._extra_env,
            }
        )
        self.env = env
        with _ENV_LOCK:
            self._saved_env = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
        if self._table_items:
            self.restore_table(self._table_items)
        self.poll_app = load_handler("poll")
        self.export_app = load_handler("export")
        self.runtime = self.poll_app.runtime
        self.export_runtime = self.export_app.runtime
        self._worker_apps: list[ModuleType] = []
        return self

    def stop(self) -> None:
        try:
            if self.aws is not None:
                self.aws.__exit__(None, None, None)
                self.aws = None
        finally:
            self.billbee.stop()
            self.sevdesk.stop()
            with _ENV_LOCK:
                for key, value in self._saved_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def function_logs(self, path: Path) -> Iterator[None]:
        """Send the functions' JSON logs to a file instead of stdout."""
        from connector.observability import logger

        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)  # powertools logs to a stream (stdout)
        with path.open("a") as handle:
            previous = handler.setStream(handle)
            try:
                yield
            finally:
                handler.setStream(previous)

    # -- the job -------------------------------------------------------------------------------------------------
    def connection_body(self, body: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(json.dumps(body))
        body.setdefault("credentials", dict(self.credentials))
        return dict(body)

    def save_connection(self, body: dict[str, Any]) -> Any:
        """Store a connection through the setup code the HTTP API uses (raises SetupError when a check fails)."""
        from connector.pipeline.setup import save_connection
        from connector.settings.model import ConnectionSettings

        settings = ConnectionSettings.model_validate(self.connection_body(body))
        return save_connection(self.runtime, settings)

    def poll(self, *, remaining_ms: int = POLL_TIMEOUT_MS) -> dict[str, Any]:
        """One invocation of the PollFunction; ``remaining_ms``: the time Lambda says it has left (its budget is a
        share of that; 0 makes the poll stop after its first page of orders)."""
        event = json.loads((EVENTS / "poll_schedule.json").read_text())
        self.invocations["poll"] += 1
        return dict(self.poll_app.handler(event, FakeContext("PollFunction", remaining_ms=remaining_ms)))

    def run_once(self) -> dict[str, Any]:
        result = self.poll()
        self.drain()
        return result

    @property
    def queue_url(self) -> str:
        return self.env["EXPORT_QUEUE_URL"]

    def sqs(self) -> Any:
        return self.client("sqs")

    def client(self, service: str) -> Any:
        """A boto3 client of the running stack's moto server."""
        assert self.aws is not None, "the stack is not started"
        return self.aws.client(service)

    def drain(
        self,
        *,
        workers: int = WORKERS,
        batch_size: int = BATCH_SIZE,
        retry_visibility: int = RETRY_VISIBILITY_SECONDS,
        max_seconds: float = MAX_DRAIN_SECONDS,
        progress: Callable[[dict[str, int], int], None] | None = None,
        progress_seconds: float = 5.0,
    ) -> None:
        """Lambda's SQS poller: receive batches, invoke, delete what succeeded, return failures to the queue.

        Failed records stay invisible for the back-off the export handler set on them (scaled down locally by
        ``RETRY_BASE_SECONDS``); a batch whose invocation died comes back after ``retry_visibility`` seconds. After
        the queue's maxReceiveCount moto moves a message to the dead-letter queue, as SQS does.
        """
        sqs = self.sqs()
        queue_url = self.queue_url
        deadline = time.monotonic() + max_seconds
        lock = threading.Lock()
        # One handler module per worker, like one Lambda container each: a module's powertools BatchProcessor keeps
        # the failures of the batch it is processing, so two workers must never share one.
        while len(self._worker_apps) < workers:
            self._worker_apps.append(self.export_app if not self._worker_apps else load_handler("export"))

        def worker(app: ModuleType) -> None:
            idle_since: float | None = None
            while time.monotonic() < deadline:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=0, AttributeNames=["All"]
                ).get("Messages", [])
                if not messages:
                    attributes = sqs.get_queue_attributes(
                        QueueUrl=queue_url,
                        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                    )["Attributes"]
                    if int(attributes["ApproximateNumberOfMessages"]) + int(
                        attributes["ApproximateNumberOfMessagesNotVisible"]
                    ) == 0:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 0.3:
                            return
                    time.sleep(0.1)  # the poller's wait between empty receives (not a test timing)
                    continue
                idle_since = None
                with lock:
                    self.invocations["export"] += 1
                result = invoke_batch(app.handler, messages, queue_url)
                for message in messages:
                    if result.died:  # Lambda retries the whole batch after the visibility timeout
                        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                      VisibilityTimeout=retry_visibility)
                    elif message["MessageId"] not in result.failed:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    # a failed record stays invisible for the back-off the handler set on it

        threads = [
            threading.Thread(target=worker, args=(self._worker_apps[i],), name=f"export-worker-{i}")
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            threads[0].join(progress_seconds if progress is not None else None)
            if progress is not None and any(thread.is_alive() for thread in threads):
                progress(self._counts(), self._queued(sqs, queue_url))
        for thread in threads:
            thread.join()

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for connection in self.runtime.store.list_connections():
            for record in self.records(connection.settings.connection_id):
                counts[record.state.value] = counts.get(record.state.value, 0) + 1
        return counts

    @staticmethod
    def _queued(sqs: Any, queue_url: str) -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    # -- inspection ----------------------------------------------------------------------------------------------
    def runtimes(self) -> list[Any]:
        """Every function container's runtime: the poll's, and each export worker's (their caches are their own)."""
        return [self.runtime, self.export_runtime,
                *(app.runtime for app in self._worker_apps if app.runtime is not self.export_runtime)]

    def records(self, connection_id: str) -> list[Any]:
        return sorted(self.runtime.store.list_orders(connection_id), key=lambda r: r.order_id)

    def record(self, connection_id: str, order_id: int) -> Any:
        return self.runtime.store.get_order(connection_id, order_id)

    def dead_letters(self) -> list[Any]:
        """Every message in the dead-letter queue (the status API's reader: they stay in the queue)."""
        from connector.pipeline.deadletters import peek_dead_letters

        dlq_url = self.env.get("EXPORT_DLQ_URL")
        if not dlq_url:
            return []
        _, letters = peek_dead_letters(self.sqs(), dlq_url)
        return [_json_or_text(letter.body) for letter in letters]

    def report(self, connection_id: str, *, poll_result: dict[str, Any] | None = None) -> dict[str, Any]:
        records = self.records(connection_id)
        status = self.runtime.store.get_connection_status(connection_id)
        counts: dict[str, int] = {}
        for record in records:
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        from connector.pipeline.progress import read_progress

        progress = read_progress(self.runtime.store, connection_id)
        return {
            "connection": {"connectionId": connection_id, "status": status.state, "reason": status.reason},
            "poll": poll_result,
            "counts": counts,
            "progress": {**progress.as_dict(), "text": progress.sentence()},
            "orders": [
                {
                    "orderId": r.order_id,
                    "invoiceNumber": r.invoice_number,
                    "state": r.state.value,
                    "reason": r.reason,
                    "voucherId": r.steps.voucher_id,
                    "contactId": r.steps.contact_id,
                    "bookings": r.steps.bookings,
                    "tagged": r.steps.tagged,
                    "attempts": r.attempts,
                    "lastError": r.last_error,
                    "notes": r.notes,
                    "creditNoteOf": r.credit_note_of,
                }
                for r in records
            ],
            "leftOut": self.left_out(connection_id),
            "deadLetterQueue": self.dead_letters(),
            "invocations": dict(self.invocations),
        }

    def left_out(self, connection_id: str) -> list[dict[str, Any]]:
        """The sandbox's orders without a record, each with why the connection left it out (its filters, no
        invoice, unreadable data): so a run that exports nothing says why."""
        from connector.pipeline.filters import why_left_out

        stored = self.runtime.store.get_connection(connection_id)
        if stored is None:
            return []
        recorded = {r.order_id for r in self.records(connection_id)}
        return [
            {"orderId": raw.get("BillBeeOrderId"), "reason": why_left_out(raw, stored.settings)}
            for raw in self.billbee.dump_orders()
            if raw.get("BillBeeOrderId") not in recorded
        ]

    def billbee_orders(self) -> list[dict[str, Any]]:
        return [
            {
                "BillBeeOrderId": o.get("BillBeeOrderId"),
                "OrderNumber": o.get("OrderNumber"),
                "State": o.get("State"),
                "InvoiceNumber": printed_invoice_number(o) if o.get("InvoiceNumber") else None,
                "Tags": o.get("Tags") or [],
            }
            for o in self.billbee.dump_orders()
        ]

    def exchanges(self) -> list[dict[str, Any]]:
        return sorted(
            [e.as_json() for e in self.billbee.exchanges] + [e.as_json() for e in self.sevdesk.exchanges],
            key=lambda e: e["started"],
        )

    def write_outputs(self, out: Path, report: dict[str, Any]) -> None:
        out.mkdir(parents=True, exist_ok=True)

        def write(name: str, data: Any) -> None:
            (out / name).write_text(json.dumps(data, default=json_default, ensure_ascii=False, indent=2))

        write("report.json", report)
        write("sevdesk.json", self.sevdesk.dump())
        write("billbee.json", self.billbee_orders())
        with (out / "requests.jsonl").open("w") as handle:
            for exchange in self.exchanges():
                handle.write(json.dumps(exchange, default=json_default, ensure_ascii=False) + "\n")

    def dump_table(self) -> list[dict[str, Any]]:
        assert self.aws is not None
        client = self.aws.client("dynamodb")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.env["TABLE_NAME"]}
        while True:
            page = client.scan(**kwargs)
            items += [i for i in page["Items"] if not i["PK"]["S"].startswith("RATE#")]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def restore_table(self, items: list[dict[str, Any]]) -> None:
        assert self.aws is not None
        client = self.aws.client("dynamodb")
        for start in range(0, len(items), 25):
            chunk = items[start : start + 25]
            client.batch_write_item(
                RequestItems={self.env["TABLE_NAME"]: [{"PutRequest": {"Item": item}} for item in chunk]}
            )
