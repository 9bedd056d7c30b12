"""``python -m local.preflight`` (``make preflight``): a read-only dry run against the merchant's live accounts.

    python -m local.preflight --connection FILE [--credentials FILE] [--out DIR] [--limit N]
                              [--billbee-url URL] [--sevdesk-url URL] [--timeout S] [--max-wait S]
    python -m local.preflight --sandbox [--connection FILE] [--out DIR]    # the sample shop, no accounts needed

Runs the setup checks, lists the orders the connection's filters select with the poll's own code, and shows per
order what the export would do (the exact saveVoucher and bookAmount bodies, the contact it would create or reuse,
a voucher already in sevDesk it would adopt) or why it would not export it. Writes ``preflight.html``,
``preflight.json``, ``observations.json`` and ``requests.jsonl`` to ``--out``. Writes nothing to Billbee or sevDesk:
a guard under both clients refuses every request but a read (``guard.py``). Needs no AWS account: it keeps nothing.

Credentials: ``--credentials FILE`` (a JSON object with ``billbeeApiKey``, ``billbeeUsername``,
``billbeeApiPassword``, ``sevdeskApiToken``), else the connection file's ``credentials``, else the environment
variables ``BILLBEE_API_KEY``, ``BILLBEE_USERNAME``, ``BILLBEE_API_PASSWORD``, ``SEVDESK_API_TOKEN``. They are never
printed and never written to a file.

Exit status: 0 every selected order would be exported (or adopted); 1 an API could not be reached or stopped
answering; 2 bad input (a file, missing credentials) or the connection would be refused (wrong credentials,
bookkeeping 1.0, an account mapping); 3 orders would need a bookkeeper's attention; 4 more orders match than
``--limit`` shows; 5 the read-only guard stopped a write (a bug: please report it with requests.jsonl); 70 internal
error.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from local.inputs import EXIT_BAD_INPUT, BadInput, load_connection, read_json, read_only_main, settings_problems

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_ATTENTION = 3
EXIT_INCOMPLETE = 4
EXIT_WRITE_REFUSED = 5
EXIT_INTERNAL = 70
DEFAULT_LIMIT = 500
ENV_CREDENTIALS = {
    "billbeeApiKey": "BILLBEE_API_KEY",
    "billbeeUsername": "BILLBEE_USERNAME",
    "billbeeApiPassword": "BILLBEE_API_PASSWORD",
    "sevdeskApiToken": "SEVDESK_API_TOKEN",
}
LIVE_BILLBEE = "https://app.billbee.io/api/v1"
LIVE_SEVDESK = "https://my.sevdesk.de/api/v1"


def resolve_credentials(
    credentials_file: Path | None, body: dict[str, Any], env: Mapping[str, str]
) -> tuple[Any, str]:
    """The four credentials and where they came from. Messages name fields and sources, never a value."""
    from connector.settings.model import Credentials

    if credentials_file is not None:
        data = read_json(credentials_file, "credentials file")
        if isinstance(data, dict) and isinstance(data.get("credentials"), dict):
            data = data["credentials"]  # a connection body with credentials works too
        source = f"credentials file {credentials_file}"
        if not isinstance(data, dict):
            raise BadInput(f"{source}: expected a JSON object with {', '.join(ENV_CREDENTIALS)}")
    elif isinstance(body.get("credentials"), dict):
        data, source = body["credentials"], "the connection file's credentials"
    else:
        data = {key: env[name] for key, name in ENV_CREDENTIALS.items() if env.get(name)}
        source = "the environment"
        if not data:
            raise BadInput(
                "no credentials: set the environment variables " + ", ".join(ENV_CREDENTIALS.values())
                + ", or give --credentials FILE (a JSON object with " + ", ".join(ENV_CREDENTIALS) + ")"
            )
        missing = [name for key, name in ENV_CREDENTIALS.items() if key not in data]
        if missing:
            raise BadInput(f"credentials from the environment: {', '.join(missing)} not set")
    try:
        return Credentials.model_validate(data), source
    except ValidationError as exc:
        problems = "\n  ".join(settings_problems(exc))
        raise BadInput(f"credentials from {source} have errors:\n  {problems}") from None


def _base_url(value: str, name: str) -> str:
    import httpx

    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BadInput(f"{name} {value!r} is not a URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise BadInput(f"{name} {value!r} is not an http(s) URL (e.g. {LIVE_BILLBEE})")
    return str(url).rstrip("/")


@contextmanager
def connector_log_to(path: Path, handler: Any) -> Iterator[None]:
    """The connector's JSON log lines (credentials scrubbed by its own formatter) go to a file, not the console; the
    lines that name a reading of the APIs also go to ``handler`` (observations)."""
    import logging

    from connector.observability import logger

    stream = logger.registered_handler
    assert isinstance(stream, logging.StreamHandler)
    std = logging.getLogger(logger.service)
    with path.open("w", encoding="utf-8") as handle:
        previous = stream.setStream(handle)
        std.addHandler(handler)
        try:
            yield
        finally:
            std.removeHandler(handler)
            stream.setStream(previous)


class PageProgress:
    """One line per page of a long listing (at most one every few seconds once it is long)."""

    def __init__(self, say: Callable[[str], None], seconds: float) -> None:
        self.say = say
        self.seconds = seconds
        self.last = 0.0
        self.pages: dict[str, int] = {}

    def __call__(self, entry: dict[str, Any], body: Any) -> None:
        path = str(entry.get("path") or "").lower()
        if entry.get("api") != "billbee" or entry.get("status") != 200 or not isinstance(body, dict):
            return
        if ["pageSize", "1"] in (entry.get("query") or []):
            return  # the setup check's probe
        kind = "invoices" if path.endswith("/orders/invoices") else "orders" if path.endswith("/orders") else None
        if kind is None:
            return
        self.pages[kind] = self.pages.get(kind, 0) + 1
        found = body.get("Paging")
        paging: dict[str, Any] = found if isinstance(found, dict) else {}
        total = paging.get("TotalPages")
        now = time.monotonic()
        last_page = isinstance(total, int) and paging.get("Page") == total
        if self.pages[kind] == 1 or last_page or now - self.last >= self.seconds:
            self.last = now
            rows = paging.get("TotalRows")
            of = f" of {total}" if isinstance(total, int) else ""
            extra = f" ({rows} in all)" if isinstance(rows, int) else ""
            self.say(f"  Billbee {kind}: page {paging.get('Page') or self.pages[kind]}{of}{extra}")


SAMPLE_CONNECTION = Path(__file__).resolve().parents[1] / "sample_connection.json"


@contextmanager
def sandboxes() -> Iterator[tuple[dict[str, str], str, str]]:
    """The Billbee sandbox with the sample shop and an empty sevDesk sandbox on 127.0.0.1, with fresh fake
    credentials: what ``--sandbox`` runs against (the same sandboxes as ``make run``)."""
    from local.sample_shop import sample_orders, sample_shops
    from local.sandbox.billbee import BillbeeSandbox
    from local.sandbox.sevdesk import SevdeskSandbox
    from local.stack import generate_credentials

    credentials = generate_credentials()
    billbee = BillbeeSandbox(api_key=credentials["billbeeApiKey"], username=credentials["billbeeUsername"],
                             password=credentials["billbeeApiPassword"], orders=sample_orders(), shops=sample_shops())
    sevdesk = SevdeskSandbox(api_token=credentials["sevdeskApiToken"])
    with billbee, sevdesk:
        yield credentials, billbee.base_url, sevdesk.base_url


class Cli:
    def __init__(self, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self.args = args
        self.env = env

    def say(self, text: str) -> None:
        print(text, flush=True)

    def run(self) -> int:
        if not self.args.sandbox:
            return self._run()
        with sandboxes() as (credentials, billbee_url, sevdesk_url):
            self.say("--sandbox: the built-in sample shop on local Billbee and sevDesk sandboxes (127.0.0.1), not "
                     "your accounts")
            self.args.billbee_url, self.args.sevdesk_url = billbee_url, sevdesk_url
            self.args.connection = self.args.connection or str(SAMPLE_CONNECTION)
            self.env = {**{name: credentials[key] for key, name in ENV_CREDENTIALS.items()}}
            return self._run()

    def _run(self) -> int:
        from connector.settings.model import ConnectionSettings
        from local.preflight.guard import Masker, ReadOnlyGuard, WriteRefused
        from local.preflight.observations import Observations
        from local.preflight.preview import Preflight, PreflightOptions
        from local.preflight.report import write_outputs

        args = self.args
        if args.limit < 1:
            raise BadInput("--limit must be at least 1")
        if not args.connection:
            raise BadInput("--connection FILE is required (the connection settings; start from "
                           "local/sample_connection.json), or --sandbox to try the preflight on the sample shop")
        body = load_connection(Path(args.connection))
        settings = ConnectionSettings.model_validate({**body, "credentials": None})
        credentials, source = resolve_credentials(
            Path(args.credentials) if args.credentials else None, body, self.env
        )
        billbee_url = _base_url(args.billbee_url or self.env.get("BILLBEE_BASE_URL") or LIVE_BILLBEE, "--billbee-url")
        sevdesk_url = _base_url(args.sevdesk_url or self.env.get("SEVDESK_BASE_URL") or LIVE_SEVDESK, "--sevdesk-url")
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"--out {out}: cannot create the directory ({type(exc).__name__})") from exc

        secrets = credentials.as_secret_json()
        masker = Masker(secrets.values())
        masker.add_basic(secrets["billbeeUsername"], secrets["billbeeApiPassword"])
        seen = Observations()
        progress = PageProgress(self.say, args.progress_seconds)

        def observe(entry: dict[str, Any], parsed: Any) -> None:
            seen.exchange(entry, parsed)
            progress(entry, parsed)

        guard = ReadOnlyGuard({"billbee": billbee_url, "sevdesk": sevdesk_url}, masker=masker, observer=observe)
        self.say(f"preflight of connection {settings.connection_id!r} (read-only: nothing is written to Billbee or "
                 f"sevDesk); credentials from {source}")
        self.say(f"Billbee {billbee_url}, sevDesk {sevdesk_url}")
        options = PreflightOptions(
            settings=settings, credentials=credentials, billbee_url=billbee_url, sevdesk_url=sevdesk_url,
            limit=args.limit, timeout=args.timeout, max_wait=args.max_wait,
            rate_limits=not args.no_rate_limit, progress=self.say, progress_seconds=args.progress_seconds,
        )
        preflight = Preflight(options, guard, seen)
        with connector_log_to(out / "connector.log", seen.log_handler()):
            try:
                result = preflight.run()
            except WriteRefused as exc:
                result = preflight.result
                result.refused_write = str(exc)
        data = write_outputs(out, result, guard, seen)
        return self._summary(data, out)

    def _summary(self, data: dict[str, Any], out: Path) -> int:
        from local.preflight.preview import OUTCOMES

        summary = data["summary"]
        counts = summary["counts"]
        if counts:
            self.say("orders: " + ", ".join(f"{counts[name]} {OUTCOMES[name][0].lower()}" for name in OUTCOMES
                                            if counts.get(name)))
        shown = 0
        for order in data["orders"]:
            if order["outcome"] in ("needsAttention", "couldNotCheck", "skipped", "alreadyInSevdesk") and shown < 30:
                shown += 1
                self.say(f"  {order['orderId']} {order.get('invoiceNumber') or '-'}: "
                         f"{OUTCOMES[order['outcome']][0].lower()}: {order.get('reason')}")
        for problem in summary["problems"]:
            self.say(f"  needs attention: {problem}")
        sent = data["requests"]["sent"]
        self.say(f"read-only: {sum(sent.values())} request(s) sent ("
                 + (", ".join(f"{n} {m}" for m, n in sorted(sent.items())) or "none")
                 + f"), {len(data['requests']['refused'])} refused by the guard")
        self.say(f"wrote {out}/preflight.html, preflight.json, observations.json, requests.jsonl "
                 f"({data['preflight']['seconds']} s)")
        if data["refusedWrite"]:
            self.say(f"STOPPED: {data['refusedWrite']}. Nothing was sent; this is a bug in the connector: please "
                     f"report it with {out}/requests.jsonl")
            return EXIT_WRITE_REFUSED
        if data["stopped"]:
            self.say(f"stopped: {data['stopped']}")
            return EXIT_UNREACHABLE if data["stopKind"] == "unreachable" else EXIT_BAD_INPUT
        if data["error"]:
            self.say(f"the preflight could not finish: {data['error']}")
            return EXIT_UNREACHABLE
        if counts.get("couldNotCheck"):
            self.say(f"{counts['couldNotCheck']} order(s) could not be checked; run the preflight again")
            return EXIT_UNREACHABLE
        if not data["setupChecks"]["ok"]:
            self.say("the setup checks would refuse this connection: fix what they name (above), then run again")
            return EXIT_BAD_INPUT
        if counts.get("needsAttention") or summary["problems"]:
            self.say("some orders would need a bookkeeper's attention (exit status 3); the reasons are above and in "
                     "preflight.html")
            return EXIT_ATTENTION
        if summary["matching"] > summary["limit"]:
            self.say(f"{summary['matching']} orders match, details shown for {summary['limit']}: run again with a "
                     "higher --limit to see every order (exit status 4)")
            return EXIT_INCOMPLETE
        return EXIT_OK


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.preflight", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--connection", help="the connection settings JSON (the HTTP API's body); required unless "
                        "--sandbox (default there: local/sample_connection.json)")
    parser.add_argument("--sandbox", action="store_true",
                        help="try it without accounts: the built-in sample shop on local sandboxes, fake credentials")
    parser.add_argument("--credentials", help="JSON file with billbeeApiKey, billbeeUsername, billbeeApiPassword, "
                        "sevdeskApiToken (else the connection file's, else BILLBEE_API_KEY ... SEVDESK_API_TOKEN)")
    parser.add_argument("--out", default="preflight", help="directory for the report files (default: preflight/)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"show details for at most this many orders (default {DEFAULT_LIMIT})")
    parser.add_argument("--billbee-url", help=f"Billbee API base URL (default $BILLBEE_BASE_URL or {LIVE_BILLBEE})")
    parser.add_argument("--sevdesk-url", help=f"sevDesk API base URL (default $SEVDESK_BASE_URL or {LIVE_SEVDESK})")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    parser.add_argument("--max-wait", type=float, default=65.0,
                        help="longest wait after a 429 before giving up (default 65 s: Billbee's invoice list asks 60)")
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="do not pace Billbee requests (2/s per endpoint); for sandboxes only")
    parser.add_argument("--progress-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    return read_only_main(Cli(args, os.environ if env is None else env).run, Path(args.out) / "connector.log")
