"""Run the connector's main job on the embedded local stack (architecture.md §6).

    python -m local.run [--orders FILE] [--connection FILE] [--out DIR] [--faults SPEC] [--state DIR]

Starts a moto server with the resources of template.yaml, a Billbee sandbox and a sevDesk sandbox on 127.0.0.1,
stores the connection through the same setup code the HTTP API uses, fires the real PollFunction handler with the
schedule event and drains the export queue into the real ExportFunction handler the way Lambda's SQS poller would
(batches of 5, two workers = the template's MaximumConcurrency, failed records back to the queue). Writes
``report.json``, ``sevdesk.json``, ``billbee.json`` and ``requests.jsonl`` to ``--out`` and exits 1 if any order
ended ``FAILED``.

``--state DIR`` keeps the sandboxes' data and the DynamoDB table between runs, so a second run works on what the
first one left (exported orders carry the tag; sevDesk holds their vouchers) and must create nothing twice.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from local.aws import LocalAws
from local.faults import FaultPlan, FaultSpecError, parse_fault_spec

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONNECTION = REPO_ROOT / "local" / "sample_connection.json"
EVENTS = REPO_ROOT / "events"
LOCAL_HTTP_TIMEOUT = 2.0  # seconds; a "timeout" fault holds the answer longer than this
LOCAL_HOLD_SECONDS = 3.0
BATCH_SIZE = 5  # template: ExportFunction SQS event BatchSize
WORKERS = 2  # template: ScalingConfig MaximumConcurrency
RETRY_VISIBILITY_SECONDS = 1  # a failed record is visible again after this (720 s on AWS; shortened locally)
MAX_DRAIN_SECONDS = 600


@dataclass
class FakeContext:
    """What powertools reads from a Lambda context."""

    function_name: str
    aws_request_id: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:local"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py under its own module name (the three files are all called app.py)."""
    path = REPO_ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_function_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


# -- state kept between runs ---------------------------------------------------------------------------------------
class LocalState:
    """Sandbox credentials, sandbox data and table items in a directory, so runs can build on each other."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path | None:
        return None if self.directory is None else self.directory / name

    def load(self, name: str) -> Any:
        path = self._path(name)
        if path is None or not path.exists():
            return None
        return json.loads(path.read_text())

    def load_bytes(self, name: str) -> bytes | None:
        path = self._path(name)
        return None if path is None or not path.exists() else path.read_bytes()

    def save_bytes(self, name: str, data: bytes) -> None:
        path = self._path(name)
        if path is not None:
            path.write_bytes(data)

    def save(self, name: str, data: Any) -> None:
        path = self._path(name)
        if path is not None:
            path.write_text(json.dumps(data, default=_json_default, ensure_ascii=False, indent=1))


def sandbox_credentials(state: LocalState) -> dict[str, str]:
    """Generated per state directory: the sandboxes' fake credentials, never real ones, never in the repo."""
    stored = state.load("credentials.json")
    if stored:
        return dict(stored)
    generated = {
        "billbeeApiKey": secrets.token_hex(16),
        "billbeeUsername": "sandbox-merchant@example.com",
        "billbeeApiPassword": "Sandbox-" + secrets.token_urlsafe(12),
        "sevdeskApiToken": secrets.token_hex(16),
    }
    state.save("credentials.json", generated)
    return generated


def dump_table(aws: LocalAws, table_name: str) -> list[dict[str, Any]]:
    client = aws.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table_name}
    while True:
        page = client.scan(**kwargs)
        items += [i for i in page["Items"] if not i["PK"]["S"].startswith("RATE#")]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def restore_table(aws: LocalAws, table_name: str, items: list[dict[str, Any]]) -> None:
    client = aws.client("dynamodb")
    for start in range(0, len(items), 25):
        chunk = items[start : start + 25]
        client.batch_write_item(RequestItems={table_name: [{"PutRequest": {"Item": item}} for item in chunk]})


# -- the run -------------------------------------------------------------------------------------------------------
class LocalRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state = LocalState(Path(args.state) if args.state else None)
        self.faults = FaultPlan(rules=parse_fault_spec(args.faults), seed=args.seed)
        self.invocations = {"poll": 0, "export": 0}

    def run(self) -> int:
        from local.sandbox.billbee import BillbeeSandbox
        from local.sandbox.sevdesk import SevdeskSandbox

        credentials = sandbox_credentials(self.state)
        orders = self._orders()
        billbee = BillbeeSandbox(
            api_key=credentials["billbeeApiKey"],
            username=credentials["billbeeUsername"],
            password=credentials["billbeeApiPassword"],
            orders=orders,
            faults=self.faults,
            hold_seconds=LOCAL_HOLD_SECONDS,
        )
        sevdesk = SevdeskSandbox(
            api_token=credentials["sevdeskApiToken"],
            faults=self.faults,
            hold_seconds=LOCAL_HOLD_SECONDS,
            bookkeeping_version=self.args.bookkeeping_version,
        )
        saved_sevdesk = self.state.load_bytes("sevdesk-state.pickle")
        if saved_sevdesk is not None:
            sevdesk.import_state(saved_sevdesk)
        billbee_url = billbee.start()
        sevdesk_url = sevdesk.start()
        aws = LocalAws(parameters={"BillbeeBaseUrl": billbee_url, "SevdeskBaseUrl": sevdesk_url})
        try:
            with aws:
                env = aws.env()
                env.update(
                    {
                        "BILLBEE_BASE_URL": billbee_url,
                        "SEVDESK_BASE_URL": sevdesk_url,
                        "HTTP_TIMEOUT_SECONDS": str(LOCAL_HTTP_TIMEOUT),
                        "POWERTOOLS_METRICS_DISABLED": "true",
                        "POWERTOOLS_DEV": "false",
                    }
                )
                os.environ.update(env)
                saved_items = self.state.load("table.json")
                if saved_items:
                    restore_table(aws, env["TABLE_NAME"], saved_items)
                return self._run_with_stack(aws, env, billbee, sevdesk, credentials)
        finally:
            billbee.stop()
            sevdesk.stop()

    def _orders(self) -> list[dict[str, Any]]:
        saved = self.state.load("billbee-orders.json")
        if saved is not None:
            return list(saved)
        if self.args.orders:
            data = json.loads(Path(self.args.orders).read_text())
            if isinstance(data, dict) and "Data" in data:  # a whole GET /orders answer is fine too
                data = data["Data"]
            if not isinstance(data, list):
                raise SystemExit(f"{self.args.orders}: expected a JSON array of Billbee orders (the Data of GET /orders)")
            return data
        from local.sample_shop import sample_orders

        return sample_orders()

    def _connection(self, credentials: dict[str, str]) -> dict[str, Any]:
        path = Path(self.args.connection) if self.args.connection else DEFAULT_CONNECTION
        body = json.loads(path.read_text())
        body.setdefault("credentials", credentials)
        return dict(body)

    def _run_with_stack(
        self, aws: LocalAws, env: dict[str, str], billbee: Any, sevdesk: Any, credentials: dict[str, str]
    ) -> int:
        from connector.observability import logger
        from connector.pipeline.setup import SetupError, save_connection
        from connector.settings.model import ConnectionSettings

        log_file = (self.out / "functions.log").open("w")
        logger.registered_handler.setStream(log_file)  # the functions' JSON logs go to a file, not the summary

        poll_app = load_handler("poll")
        export_app = load_handler("export")
        runtime = poll_app.runtime
        settings = ConnectionSettings.model_validate(self._connection(credentials))
        try:
            save_connection(runtime, settings)
        except SetupError as exc:
            print(f"connection {settings.connection_id!r} not saved:")
            for check in exc.report.checks:
                print(f"  {'ok ' if check.ok else 'BAD'} {check.name}: {check.detail}")
            return 2

        event = json.loads((EVENTS / "poll_schedule.json").read_text())
        started = time.monotonic()
        poll_result = poll_app.handler(event, FakeContext("PollFunction"))
        self.invocations["poll"] += 1
        self._drain(aws, env, export_app.handler)
        elapsed = time.monotonic() - started

        report = self._report(runtime, settings.connection_id, poll_result, aws, env, elapsed)
        self._write_outputs(report, billbee, sevdesk)
        self.state.save("billbee-orders.json", billbee.dump_orders())
        self.state.save_bytes("sevdesk-state.pickle", sevdesk.export_state())
        self.state.save("table.json", dump_table(aws, env["TABLE_NAME"]))
        log_file.close()
        return self._print_summary(report)

    def _drain(self, aws: LocalAws, env: dict[str, str], export_handler: Callable[..., Any]) -> None:
        """Lambda's SQS poller: receive batches, invoke, delete what succeeded, return failures to the queue."""
        sqs = aws.client("sqs")
        queue_url = env["EXPORT_QUEUE_URL"]
        deadline = time.monotonic() + MAX_DRAIN_SECONDS
        lock = threading.Lock()

        def worker() -> None:
            idle_since: float | None = None
            while time.monotonic() < deadline:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=BATCH_SIZE,
                    WaitTimeSeconds=0,
                    AttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    attributes = sqs.get_queue_attributes(
                        QueueUrl=queue_url,
                        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                    )["Attributes"]
                    waiting = int(attributes["ApproximateNumberOfMessages"])
                    in_flight = int(attributes["ApproximateNumberOfMessagesNotVisible"])
                    if waiting == 0 and in_flight == 0:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 0.5:
                            return
                    time.sleep(0.2)  # the poller's own wait between empty receives, not a test timing
                    continue
                idle_since = None
                event = {"Records": [self._sqs_record(m, queue_url) for m in messages]}
                with lock:
                    self.invocations["export"] += 1
                result = export_handler(event, FakeContext("ExportFunction"))
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
                for message in messages:
                    if message["MessageId"] in failed:
                        sqs.change_message_visibility(
                            QueueUrl=queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=RETRY_VISIBILITY_SECONDS,
                        )
                    else:
                        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

        threads = [threading.Thread(target=worker, name=f"export-worker-{i}") for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @staticmethod
    def _sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
        queue_name = queue_url.rsplit("/", 1)[-1]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:{queue_name}",
            "awsRegion": "eu-central-1",
        }

    def _report(
        self,
        runtime: Any,
        connection_id: str,
        poll_result: dict[str, Any],
        aws: LocalAws,
        env: dict[str, str],
        elapsed: float,
    ) -> dict[str, Any]:
        records = sorted(runtime.store.list_orders(connection_id), key=lambda r: r.order_id)
        status = runtime.store.get_connection_status(connection_id)
        dlq: list[Any] = []
        dlq_url = env.get("EXPORT_DLQ_URL")
        if dlq_url:
            messages = aws.client("sqs").receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            dlq = [json.loads(m["Body"]) if m["Body"].startswith("{") else m["Body"] for m in messages]
        counts: dict[str, int] = {}
        for record in records:
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        return {
            "connection": {"connectionId": connection_id, "status": status.state, "reason": status.reason},
            "poll": poll_result,
            "counts": counts,
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
                }
                for r in records
            ],
            "deadLetterQueue": dlq,
            "invocations": dict(self.invocations),
            "seconds": round(elapsed, 2),
        }

    def _write_outputs(self, report: dict[str, Any], billbee: Any, sevdesk: Any) -> None:
        def write(name: str, data: Any) -> None:
            (self.out / name).write_text(json.dumps(data, default=_json_default, ensure_ascii=False, indent=2))

        write("report.json", report)
        write("sevdesk.json", sevdesk.dump())
        write(
            "billbee.json",
            [
                {
                    "BillBeeOrderId": o.get("BillBeeOrderId"),
                    "OrderNumber": o.get("OrderNumber"),
                    "State": o.get("State"),
                    "InvoiceNumber": f"{o.get('InvoiceNumberPrefix') or ''}{o.get('InvoiceNumber') or ''}"
                    f"{o.get('InvoiceNumberPostfix') or ''}" if o.get("InvoiceNumber") else None,
                    "Tags": o.get("Tags") or [],
                }
                for o in billbee.dump_orders()
            ],
        )
        exchanges = sorted(
            [e.as_json() for e in billbee.exchanges] + [e.as_json() for e in sevdesk.exchanges],
            key=lambda e: e["started"],
        )
        with (self.out / "requests.jsonl").open("w") as handle:
            for exchange in exchanges:
                handle.write(json.dumps(exchange, default=_json_default, ensure_ascii=False) + "\n")

    def _print_summary(self, report: dict[str, Any]) -> int:
        counts = report["counts"]
        connection = report["connection"]
        print(f"connection {connection['connectionId']}: {connection['status']}"
              + (f" ({connection['reason']})" if connection["reason"] else ""))
        print("orders: " + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"))
        for order in report["orders"]:
            if order["state"] not in ("EXPORTED",):
                detail = order["reason"] or order["lastError"] or ""
                print(f"  {order['orderId']} {order['invoiceNumber'] or '-'}: {order['state']} {detail}")
        if report["deadLetterQueue"]:
            print(f"dead-letter queue: {len(report['deadLetterQueue'])} message(s)")
        print(f"{report['invocations']['export']} export invocations, {report['seconds']} s; outputs in {self.out}/")
        return 1 if counts.get("FAILED") else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", help="JSON array of Billbee orders in API format (default: the sample shop)")
    parser.add_argument("--connection", help="connection settings JSON, the HTTP API's body (default: sample)")
    parser.add_argument("--out", default="out", help="directory for report.json, sevdesk.json, billbee.json, ...")
    parser.add_argument("--faults", help="fault spec, e.g. 'sevdesk.save_voucher=saved500*1' (see local/faults.py)")
    parser.add_argument("--state", help="keep sandbox data and the table here between runs")
    parser.add_argument("--seed", type=int, help="seed for probabilistic faults")
    parser.add_argument("--bookkeeping-version", default="2.0", help="the sevDesk sandbox's bookkeeping version")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return LocalRun(args).run()
    except FaultSpecError as exc:
        print(f"--faults: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
