"""The reconciliation report on the embedded local stack, or on the live accounts read-only (docs/reconciliation.md).

    python -m local.reconcile [PERIOD] [--state DIR] [--orders FILE] [--connection FILE] [--out DIR]
    python -m local.reconcile PERIOD --live --connection FILE [--credentials FILE] [--out DIR]
                              [--billbee-url URL] [--sevdesk-url URL]

``PERIOD`` is a month (``2026-11``), a quarter (``2026-Q4``) or ``2026-11-01..2026-11-30``; without it (local stack
only), the month of the newest invoice the Billbee sandbox holds.

- ``--state DIR``: the state an earlier ``python -m local.run --state DIR`` left (``make run`` keeps it in
  ``out/state``): its Billbee orders, sevDesk account and table. The report only reads them; nothing is polled or
  exported, and the state is not written back.
- without ``--state``: a fresh stack with the sample shop (or ``--orders``) and the sample connection (or
  ``--connection``) runs the hourly job once (poll, then the export queue drained), and the report follows.
- ``--live``: the merchant's live Billbee and sevDesk accounts (or the URLs given), through the preflight's
  read-only clients: its credential resolution (``--credentials FILE``, else the connection file's ``credentials``,
  else ``BILLBEE_API_KEY``, ``BILLBEE_USERNAME``, ``BILLBEE_API_PASSWORD``, ``SEVDESK_API_TOKEN``; never printed or
  written) and its guard under both clients, which refuses every request but a read before it leaves the process
  (``local/preflight/guard.py``). No AWS account and no table: the connector's export records are not read, so a
  "missing" line carries no export state (the report's notes say so).

Prints the verdict, every line that is not matched, and the totals per tax rule and rate; writes
``reconciliation.json`` (the HTTP API's answer) and ``reconciliation.csv`` to ``--out``. The same code answers
``GET /connections/{id}/reconciliation`` on AWS.

Exit status: 0 the period reconciles; 3 it does not (missing, extra or different lines, or a difference in a total);
1 an API could not be read, or the poll failed; 2 bad input (a file, the period, missing or refused credentials);
5 the read-only guard stopped a write (``--live``; a bug: please report it); 70 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.inputs import EXIT_BAD_INPUT, BadInput, load_connection, load_orders, read_only_main
from local.stack import LocalStack, generate_credentials

EXIT_FAILED = 1
EXIT_DOES_NOT_RECONCILE = 3
EXIT_WRITE_REFUSED = 5
EXIT_INTERNAL = 70
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONNECTION = REPO_ROOT / "local" / "sample_connection.json"
STATE_FILES = ("credentials.json", "billbee-orders.json", "sevdesk-state.pickle", "table.json")


def newest_invoice_month(orders: list[dict[str, Any]]) -> str:
    """The month of the newest invoice date among the orders (``YYYY-MM``): the local default period."""
    days = sorted(str(o["InvoiceDate"])[:7] for o in orders if isinstance(o, dict) and o.get("InvoiceDate"))
    if not days:
        raise BadInput("the Billbee orders have no invoice; name a period, e.g. 2026-11")
    return days[-1]


class LocalReconcile:
    def __init__(self, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self.args = args
        self.env = env
        self.out = Path(args.out)
        self.state = Path(args.state) if args.state else None

    def _stack(self) -> tuple[LocalStack, dict[str, Any] | None]:
        """The stack, and the connection to store and poll (None: an earlier run's, from ``--state``)."""
        if self.state is None:
            orders = load_orders(Path(self.args.orders)) if self.args.orders else _sample_orders()
            body = load_connection(Path(self.args.connection or DEFAULT_CONNECTION))
            return LocalStack(orders=orders, credentials=generate_credentials()), body
        if self.args.orders or self.args.connection:
            raise BadInput("--state reports on what an earlier run left; --orders and --connection go with a new run")
        from local.run import LocalState

        state = LocalState(self.state)
        missing = [name for name in STATE_FILES if not (self.state / name).exists()]
        if missing:
            raise BadInput(f"{self.state} holds no state of `python -m local.run --state {self.state}` "
                           f"({', '.join(missing)} missing); run that first, e.g. `make run`")
        stack = LocalStack(orders=list(state.load("billbee-orders.json")), credentials=dict(state.load(
            "credentials.json")), sevdesk_state=state.load_bytes("sevdesk-state.pickle"),
            table_items=list(state.load("table.json")))
        return stack, None

    def run(self) -> int:
        if self.args.live:
            return LiveReconcile(self.args, self.env).run()
        from connector.errors import ApiError
        from connector.pipeline.setup import SetupError
        from connector.reconciliation.report import Period

        self.out.mkdir(parents=True, exist_ok=True)
        stack, body = self._stack()
        period_text = self.args.period or newest_invoice_month(stack.billbee.dump_orders())
        try:
            period = Period.parse(period_text)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
        log = self.out / "reconcile-functions.log"
        log.write_text("")
        with stack, stack.function_logs(log):
            if body is not None:
                try:
                    stack.save_connection(body)
                except (SetupError, ApiError) as exc:
                    print(f"connection {body.get('connectionId')!r} not saved: {exc}")
                    return EXIT_FAILED
                polled = (stack.poll().get("connections") or [{}])[0]
                stack.drain()
                counts = stack.report(str(body["connectionId"]))["counts"]
                print(f"poll: {polled.get('status')}, {polled.get('listed', 0)} orders listed; exports: "
                      + (", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"), flush=True)
                if polled.get("status") != "OK":
                    print(f"the poll failed: {polled.get('error')}")
                    return EXIT_FAILED
            connection_id = self._connection_id(stack, body)
            try:
                report = self._report(stack, connection_id, period)
            except ApiError as exc:
                print(f"the report could not be made: {exc}")
                return EXIT_FAILED
        return self._write(report, connection_id)

    def _connection_id(self, stack: LocalStack, body: dict[str, Any] | None) -> str:
        if body is not None:
            return str(body["connectionId"])
        connections = [c.settings.connection_id for c in stack.runtime.store.list_connections()]
        if self.args.connection_id:
            if self.args.connection_id not in connections:
                raise BadInput(f"{self.state} has no connection {self.args.connection_id!r} (it has {connections})")
            return str(self.args.connection_id)
        if len(connections) != 1:
            raise BadInput(f"{self.state} holds {len(connections)} connections {connections}; "
                           "name one with --connection-id")
        return str(connections[0])

    @staticmethod
    def _report(stack: LocalStack, connection_id: str, period: Any) -> Any:
        from connector.reconciliation.job import JobState, ReconciliationJob, run_to_end
        from connector.reconciliation.records import Records
        from connector.settings.model import Credentials

        runtime = stack.runtime
        stored = runtime.store.get_connection(connection_id)
        assert stored is not None
        # The local stack's credentials are the sandboxes' own (credentials.json of the state); Secrets Manager does
        # not outlive a run, so the connection's secret is put back first.
        credentials = Credentials.model_validate(stack.credentials)
        if runtime.secrets.secret_id_for(connection_id) == stored.secret_id:
            runtime.secrets.put(connection_id, credentials)
        clients = runtime.build_clients(connection_id, credentials)
        try:
            job = ReconciliationJob(JobState.new(period), billbee=clients.billbee, sevdesk=clients.sevdesk,
                                    records=lambda: Records(runtime.store, connection_id),
                                    settings=stored.settings)
            return run_to_end(job)
        finally:
            clients.billbee.close()
            clients.sevdesk.close()

    def _write(self, report: Any, connection_id: str) -> int:
        return write_report(report, connection_id, self.out)


def write_report(report: Any, connection_id: str, out: Path) -> int:
    """``reconciliation.json`` and ``reconciliation.csv`` in ``out``, the verdict on the console; the exit status."""
    from connector.reconciliation.render import report_csv, report_dict, report_text

    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    body = report_dict(report, connection_id=connection_id, generated_at=generated)
    (out / "reconciliation.json").write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "reconciliation.csv").write_text(report_csv(report), encoding="utf-8")
    print(report_text(report))
    print(f"written: {out}/reconciliation.json, {out}/reconciliation.csv")
    return 0 if report.reconciles else EXIT_DOES_NOT_RECONCILE


class LiveReconcile:
    """``--live``: the report over the merchant's accounts through the preflight's read-only clients."""

    def __init__(self, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self.args = args
        self.env = env
        self.out = Path(args.out)

    def run(self) -> int:
        import logging

        from connector.config import Config
        from connector.errors import ApiError, AuthError
        from connector.observability import redacted
        from connector.reconciliation.job import JobState, ReconciliationJob, run_to_end
        from connector.reconciliation.records import NoRecords
        from connector.reconciliation.report import Period
        from connector.settings.model import ConnectionSettings
        from connector.transport import RetryPolicy
        from local.preflight.cli import LIVE_BILLBEE, LIVE_SEVDESK, connector_log_to, resolve_credentials
        from local.preflight.cli import _base_url as checked_url
        from local.preflight.guard import Masker, ReadOnlyGuard, WriteRefused
        from local.preflight.preview import PreflightRuntime

        args = self.args
        if args.state or args.orders:
            raise BadInput("--live reads your accounts; --state and --orders go with the local stack")
        if not args.connection:
            raise BadInput("--live needs --connection FILE (the connection settings, the body of PUT "
                           "/connections/{id}; start from local/sample_connection.json)")
        if not args.period:
            raise BadInput("--live needs a period, e.g. 2026-11 (a month), 2026-Q4 or 2026-11-01..2026-11-30")
        try:
            period = Period.parse(args.period)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
        body = load_connection(Path(args.connection))
        settings = ConnectionSettings.model_validate({**body, "credentials": None})
        credentials, source = resolve_credentials(Path(args.credentials) if args.credentials else None, body,
                                                  self.env)
        urls = {
            "billbee": checked_url(args.billbee_url or self.env.get("BILLBEE_BASE_URL") or LIVE_BILLBEE,
                                   "--billbee-url"),
            "sevdesk": checked_url(args.sevdesk_url or self.env.get("SEVDESK_BASE_URL") or LIVE_SEVDESK,
                                   "--sevdesk-url"),
        }
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"--out {self.out}: cannot create the directory ({type(exc).__name__})") from exc
        secrets = credentials.as_secret_json()
        masker = Masker(secrets.values())
        masker.add_basic(secrets["billbeeUsername"], secrets["billbeeApiPassword"])
        guard = ReadOnlyGuard(urls, masker=masker)
        config = Config(table_name="(none: read-only, nothing is kept)", export_queue_url="",
                        billbee_base_url=urls["billbee"], sevdesk_base_url=urls["sevdesk"],
                        http_timeout=args.timeout, rate_limits=not args.no_rate_limit)
        runtime = PreflightRuntime(config, guard)
        print(f"reconciliation of connection {settings.connection_id!r}, {period.first} to {period.last}, read-only "
              f"(nothing is written to Billbee or sevDesk); credentials from {source}")
        print(f"Billbee {urls['billbee']}, sevDesk {urls['sevdesk']}", flush=True)

        def say(text: str) -> None:
            print(masker(redacted(text)), flush=True)

        report = None
        failed: str | None = None
        code = EXIT_FAILED
        log = self.out / "reconcile-connector.log"
        with connector_log_to(log, logging.NullHandler()):
            clients = runtime.build_clients(settings.connection_id, credentials,
                                            retry=RetryPolicy(max_retry_after=args.max_wait))
            try:
                job = ReconciliationJob(JobState.new(period), billbee=clients.billbee, sevdesk=clients.sevdesk,
                                        records=NoRecords, settings=settings)
                report = run_to_end(job, max_wait=args.max_wait)
            except WriteRefused:
                pass  # told below from the guard's own record, which also holds a refusal some code swallowed
            except AuthError as exc:
                failed, code = f"the credentials were refused: {exc}", EXIT_BAD_INPUT
            except ApiError as exc:
                failed = f"the report could not be made: {exc}"
            finally:
                clients.billbee.close()
                clients.sevdesk.close()
        sent = guard.methods()
        say(f"read-only: {sum(sent.values())} request(s) sent ("
            + (", ".join(f"{n} {m}" for m, n in sorted(sent.items())) or "none")
            + f"), {len(guard.refused)} refused by the guard")
        if guard.refused:
            first = guard.refused[0]
            say(f"STOPPED: {WriteRefused(first['api'], first['method'], first['path'], first['refused'])}. Nothing "
                f"was sent; this is a bug in the connector: please report it with {log}")
            return EXIT_WRITE_REFUSED
        if failed is not None or report is None:
            say(failed or "the report could not be made")
            return code
        return write_report(report, settings.connection_id, self.out)


def _sample_orders() -> list[dict[str, Any]]:
    from local.sample_shop import sample_orders

    return sample_orders()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("period", nargs="?", help="2026-11, 2026-Q4 or 2026-11-01..2026-11-30 (default: the month "
                                                  "of the newest invoice)")
    parser.add_argument("--state", help="report on what `python -m local.run --state DIR` left (make run: out/state)")
    parser.add_argument("--orders", help="without --state: JSON array of Billbee orders (default: the sample shop)")
    parser.add_argument("--connection", help="connection settings JSON: without --state the new run's (default: the "
                        "sample one); with --live required")
    parser.add_argument("--connection-id", help="with --state: which stored connection (when there are several)")
    parser.add_argument("--out", default="out", help="directory for reconciliation.json and reconciliation.csv")
    live = parser.add_argument_group("live accounts, read-only (--live)")
    live.add_argument("--live", action="store_true", help="read your live Billbee and sevDesk accounts through the "
                      "preflight's read-only clients (needs PERIOD and --connection)")
    live.add_argument("--credentials", help="JSON file with billbeeApiKey, billbeeUsername, billbeeApiPassword, "
                      "sevdeskApiToken (else the connection file's, else BILLBEE_API_KEY ... SEVDESK_API_TOKEN)")
    live.add_argument("--billbee-url", help="Billbee API base URL (default $BILLBEE_BASE_URL or the live API)")
    live.add_argument("--sevdesk-url", help="sevDesk API base URL (default $SEVDESK_BASE_URL or the live API)")
    live.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    live.add_argument("--max-wait", type=float, default=65.0,
                      help="longest wait after a 429 before giving up (default 65 s: Billbee's invoice list asks 60)")
    live.add_argument("--no-rate-limit", action="store_true",
                      help="do not pace Billbee requests (2/s per endpoint); for sandboxes only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    log = "reconcile-connector.log" if args.live else "reconcile-functions.log"
    return read_only_main(LocalReconcile(args, os.environ if env is None else env).run, Path(args.out) / log)


if __name__ == "__main__":
    sys.exit(main())
