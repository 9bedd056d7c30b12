"""Run the connector's main job on the embedded local stack (architecture.md §6).

    python -m local.run [--orders FILE] [--connection FILE] [--out DIR] [--faults SPEC] [--state DIR]

Starts a moto server with the resources of template.yaml, a Billbee sandbox and a sevDesk sandbox on 127.0.0.1,
stores the connection through the same setup code the HTTP API uses, fires the real PollFunction handler with the
schedule event and drains the export queue into the real ExportFunction handler the way Lambda's SQS poller would
(batches of 5, two workers = the lowest MaximumConcurrency SQS allows, failed records back to the queue). Writes
``report.json``, ``sevdesk.json``, ``billbee.json`` and ``requests.jsonl`` to ``--out``.

Exit status: 0 all done; 1 an order ended ``FAILED``, the poll failed or the connection is in error; 2 bad input (a
file, the connection's settings, the fault spec) or the setup checks refused the connection; 3 orders need a
bookkeeper's attention (``NEEDS_ATTENTION``, or an order Billbee sent that cannot be read). The summary says which.

``--state DIR`` keeps the sandboxes' data and the DynamoDB table between runs, so a second run works on what the
first one left (exported orders carry the tag; sevDesk holds their vouchers) and must create nothing twice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from local.faults import FaultPlan, FaultSpecError, parse_fault_spec
from local.inputs import EXIT_BAD_INPUT, BadInput, check_fault_operations, load_connection, load_orders
from local.stack import LocalStack, generate_credentials, json_default

EXIT_FAILED = 1
EXIT_ATTENTION = 3
EXIT_INTERNAL = 70
PROGRESS_SECONDS = 5.0

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONNECTION = REPO_ROOT / "local" / "sample_connection.json"


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

    def save(self, name: str, data: Any) -> None:
        path = self._path(name)
        if path is not None:
            path.write_text(json.dumps(data, default=json_default, ensure_ascii=False, indent=1))

    def load_bytes(self, name: str) -> bytes | None:
        path = self._path(name)
        return None if path is None or not path.exists() else path.read_bytes()

    def save_bytes(self, name: str, data: bytes) -> None:
        path = self._path(name)
        if path is not None:
            path.write_bytes(data)


class LocalRun:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state = LocalState(Path(args.state) if args.state else None)
        self.faults = FaultPlan(rules=parse_fault_spec(args.faults), seed=args.seed)
        self.opened_filters: str | None = None

    def _credentials(self) -> dict[str, str]:
        stored = self.state.load("credentials.json")
        if stored:
            return dict(stored)
        generated = generate_credentials()
        self.state.save("credentials.json", generated)
        return generated

    def _orders(self) -> list[dict[str, Any]]:
        """The Billbee orders: those an earlier run left in ``--state``, else ``--orders``, else the sample shop.
        ``--orders`` with a state made from other orders is refused with how to start over: silently keeping the
        old orders would show the user results for a file they did not give."""
        source = str(Path(self.args.orders).resolve()) if self.args.orders else "the sample shop"
        saved = self.state.load("billbee-orders.json")
        if saved is not None:
            earlier = self.state.load("orders-source.json") or "the sample shop"
            if self.args.orders and earlier != source:
                raise BadInput(
                    f"{self.state.directory} holds the orders of an earlier run ({earlier}), not {self.args.orders}. "
                    "Start over with `make clean` (or give another OUT=..., or --state DIR), then run again"
                )
            return list(saved)
        orders = load_orders(Path(self.args.orders)) if self.args.orders else _sample_orders()
        self.state.save("orders-source.json", source)
        return orders

    def _connection(self, orders: list[dict[str, Any]]) -> dict[str, Any]:
        """The connection: ``--connection``, else the sample one. With ``--orders`` and no ``--connection``, the
        sample connection's filters are opened to the file's orders (its oldest order date, every shop, the states
        its orders are in), so trying an example file exports its orders; the summary says so."""
        if self.args.connection:
            return load_connection(Path(self.args.connection))
        body: dict[str, Any] = json.loads(DEFAULT_CONNECTION.read_text())
        if not self.args.orders:
            return body
        general = body["general"]
        dates = sorted(str(o.get("CreatedAt"))[:10] for o in orders if isinstance(o, dict) and o.get("CreatedAt"))
        states = {int(o["State"]) for o in orders if isinstance(o, dict) and isinstance(o.get("State"), int)}
        if dates and dates[0] < general["startDate"]:
            general["startDate"] = dates[0]
        general["shopIds"] = []
        general["orderStateIds"] = sorted(set(general["orderStateIds"]) | {s for s in states if 1 <= s <= 17})
        self.opened_filters = (
            f"no --connection: the sample connection with its filters opened to {self.args.orders} "
            f"(start date {general['startDate']}, every shop, states {general['orderStateIds']})"
        )
        return body

    def run(self) -> int:
        from connector.errors import ApiError
        from connector.pipeline.setup import SetupError

        orders = self._orders()
        body = self._connection(orders)
        if self.opened_filters:
            print(self.opened_filters)
        stack = LocalStack(
            orders=orders,
            credentials=self._credentials(),
            faults=self.faults,
            bookkeeping_version=self.args.bookkeeping_version,
            sevdesk_state=self.state.load_bytes("sevdesk-state.pickle"),
            table_items=self.state.load("table.json"),
        )
        check_fault_operations(self.faults.rules, {"billbee": stack.billbee.operations(),
                                                   "sevdesk": stack.sevdesk.operations()})
        log = self.out / "functions.log"
        log.write_text("")
        with stack, stack.function_logs(log):
            try:
                stack.save_connection(body)
            except SetupError as exc:
                print(f"connection {body.get('connectionId')!r} not saved:")
                for check in exc.report.checks:
                    print(f"  {'ok ' if check.ok else 'BAD'} {check.name}: {check.detail}")
                return EXIT_FAILED if exc.unreachable else EXIT_BAD_INPUT
            except ApiError as exc:
                print(f"connection {body.get('connectionId')!r} not saved: the setup checks could not finish ({exc})")
                return EXIT_FAILED
            started = time.monotonic()
            poll_result = stack.poll()
            polled = (poll_result.get("connections") or [{}])[0]
            print(f"poll: {polled.get('status')}, {polled.get('listed', 0)} orders listed, "
                  f"{polled.get('queued', 0)} queued", flush=True)
            stack.drain(progress=self._progress, progress_seconds=PROGRESS_SECONDS)
            report = stack.report(str(body["connectionId"]), poll_result=poll_result)
            report["seconds"] = round(time.monotonic() - started, 2)
            stack.write_outputs(self.out, report)
            self.state.save("billbee-orders.json", stack.billbee.dump_orders())
            self.state.save_bytes("sevdesk-state.pickle", stack.sevdesk.export_state())
            self.state.save("table.json", stack.dump_table())
        return self._print_summary(report)

    @staticmethod
    def _progress(counts: dict[str, int], queued: int) -> None:
        done = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing yet"
        print(f"  ... {done}; {queued} message(s) still in the queue", flush=True)

    def _print_summary(self, report: dict[str, Any]) -> int:
        counts = report["counts"]
        connection = report["connection"]
        polls = (report.get("poll") or {}).get("connections") or []
        poll = polls[0] if polls else {}
        print(f"connection {connection['connectionId']}: {connection['status']}"
              + (f" ({connection['reason']})" if connection["reason"] else ""))
        if poll.get("status") not in (None, "OK"):
            print(f"the poll {poll.get('status')}: {poll.get('error')}")
        print("orders: " + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none exported"))
        print(f"progress: {report['progress']['text']}")
        if not report["progress"]["listingComplete"]:
            print("  the listing stopped at the poll's time budget; the next hourly run continues where it stopped")
        for order in report["orders"]:
            if order["state"] not in ("EXPORTED",):
                detail = order["reason"] or order["lastError"] or ""
                print(f"  {order['orderId']} {order['invoiceNumber'] or '-'}: {order['state']} {detail}")
        for problem in poll.get("problems") or []:
            print(f"  NEEDS_ATTENTION {problem}")
        left_out = report.get("leftOut") or []
        if left_out:
            reasons: dict[str, int] = {}
            for entry in left_out:
                reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
            every = " (every order)" if not report["orders"] else ""
            print(f"{len(left_out)} order(s) left out by the connection's filters{every}:")
            for reason, number in sorted(reasons.items(), key=lambda item: -item[1]):
                print(f"  {number} x {reason}")
        if report["deadLetterQueue"]:
            print(f"dead-letter queue: {len(report['deadLetterQueue'])} message(s)")
        print(f"{report['invocations']['export']} export invocations, {report['seconds']} s; outputs in {self.out}/")
        if counts.get("FAILED") or connection["status"] != "OK" or poll.get("status") not in (None, "OK"):
            return EXIT_FAILED
        if counts.get("NEEDS_ATTENTION") or poll.get("problems"):
            print("some orders need attention (exit status 3); the reasons are above and in report.json")
            return EXIT_ATTENTION
        return 0


def _sample_orders() -> list[dict[str, Any]]:
    from local.sample_shop import sample_orders

    return sample_orders()


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
        return EXIT_BAD_INPUT
    except BadInput as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: one line, secrets masked; the functions' log has the details
        from connector.observability import redacted

        print(redacted(f"internal error: {type(exc).__name__}: {exc} (see {args.out}/functions.log)"),
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
