"""`make serve`: the connector's HTTP API on 127.0.0.1, over the embedded local stack.

    python -m local.serve [--port 8080] [--orders FILE] [--connection FILE] [--poll] [--no-worker]
                          [--no-rate-limits] [--logs FILE]

Starts the local stack (moto + Billbee sandbox with the sample shop + sevDesk sandbox), stores the sample connection
(or ``--connection``) through the setup code, and serves HTTP on 127.0.0.1. Each request is translated into the
API Gateway HTTP API (payload 2.0) event that AWS would send for the template's routes (``ANY /connections``,
``ANY /connections/{proxy+}``, ``GET /openapi.json``, ``GET /console``, ``GET /console/{proxy+}``) and handed to the
real handler, ``functions/api/app.py``; its answer goes back as the HTTP response. Paths outside those routes get API
Gateway's own 404, as on AWS. So the README's curl calls and the web console (``/console``) work the same here and
against a deployed stack: only ``$API`` and ``$TOKEN`` differ, and both are printed at start.

A background worker drains the export queue into the real ExportFunction handler the way Lambda's SQS poller does,
so a manual export is carried out without further steps (``--no-worker`` leaves the queue alone). ``--poll`` runs the
hourly job once at start.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.inputs import EXIT_BAD_INPUT, BadInput, load_connection, load_orders
from local.lambda_sqs import FakeContext
from local.stack import LocalStack, load_handler

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONNECTION = REPO_ROOT / "local" / "sample_connection.json"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's request payload limit
# API Gateway passes these bodies as text; anything else arrives base64-encoded with isBase64Encoded true.
TEXT_TYPES = (
    "text/", "application/json", "application/javascript", "application/xml", "application/x-www-form-urlencoded"
)
ApiHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def route_key(method: str, path: str) -> tuple[str, dict[str, str] | None] | None:
    """The template's route that API Gateway would pick for this request, with its path parameters; None: no route
    (API Gateway answers 404 itself and the function never runs)."""
    if path == "/openapi.json":
        return ("GET /openapi.json", None) if method == "GET" else None
    if path == "/console":
        return ("GET /console", None) if method == "GET" else None
    if path.startswith("/console/") and len(path) > len("/console/"):
        return ("GET /console/{proxy+}", {"proxy": path[len("/console/"):]}) if method == "GET" else None
    if path == "/connections":
        return "ANY /connections", None
    if path.startswith("/connections/") and len(path) > len("/connections/"):
        return "ANY /connections/{proxy+}", {"proxy": path[len("/connections/"):]}
    return None


def is_text(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().startswith(TEXT_TYPES)


def http_api_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    host: str = "127.0.0.1",
) -> dict[str, Any] | None:
    """The payload-2.0 event of one HTTP request, shaped like ``events/api_*.json``; None when no route matches."""
    split = urlsplit(target)
    path = split.path or "/"
    matched = route_key(method, path)
    if matched is None:
        return None
    key, path_parameters = matched
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        # API Gateway lower-cases header names and joins repeated headers with commas.
        joined[lower] = f"{joined[lower]},{value}" if lower in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": key,
        "rawPath": path,
        "rawQueryString": split.query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": secrets.token_urlsafe(12),
            "routeKey": key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        text: str | None = None
        if is_text(joined.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = text
    return event


class ApiGatewayServer:
    """HTTP on a loopback address -> API Gateway HTTP API events -> a Lambda handler -> HTTP.

    Requests are handed to the handler one at a time, as one Lambda container takes them: the handler keeps
    per-request state (powertools' current event)."""

    def __init__(self, handler: ApiHandler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"{host} is not a loopback address; the local API serves 127.0.0.1 only")
        self.handler = handler
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._request_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiGatewayServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ApiGatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.handler(event, FakeContext("ApiFunction"))

    def _request_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "local-api-gateway"
            sys_version = ""

            def _serve(self) -> None:
                length_text = self.headers.get("Content-Length") or "0"
                length = int(length_text) if length_text.isdigit() else -1
                if length < 0 or length > MAX_PAYLOAD_BYTES:
                    self._send(413, {"Content-Type": "application/json"}, b'{"message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                event = http_api_event(
                    self.command, self.path, list(self.headers.items()), body,
                    source_ip=self.client_address[0], host=self.headers.get("Host", "127.0.0.1"),
                )
                if event is None:
                    self._send(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
                    return
                try:
                    answer = server.invoke(event)
                except Exception:  # what API Gateway answers when the function itself fails
                    self._send(500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}')
                    return
                payload = answer.get("body") or ""
                data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode()
                headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
                cookies = list(answer.get("cookies") or [])
                self._send(int(answer.get("statusCode") or 200), headers, data, cookies)

            def _send(
                self, status: int, headers: dict[str, str], data: bytes, cookies: list[str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                for cookie in cookies or []:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return None  # the functions' log says what happened; no access log on stderr

        return Request


class QueueWorker:
    """Lambda's SQS poller for the export queue, in the background: drains whatever gets queued."""

    def __init__(self, stack: LocalStack, *, idle_wait: float = 1.0) -> None:
        self.stack = stack
        self.idle_wait = idle_wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-poller", daemon=True)

    def start(self) -> QueueWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.stack.drain(max_seconds=60)
            except Exception as exc:  # keep serving; the next round tries again
                print(f"export worker: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._stop.wait(self.idle_wait)


def api_token(stack: LocalStack) -> str:
    """The bearer token, read from the (moto) ApiTokenSecret like README's aws secretsmanager call does on AWS."""
    assert stack.aws is not None
    secret_id = stack.env["API_TOKEN_SECRET_ID"]
    return str(stack.aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def serve_stack(stack: LocalStack, *, host: str = "127.0.0.1", port: int = 0) -> ApiGatewayServer:
    """An unstarted server for the real ApiFunction handler of a started stack."""
    api_app = load_handler("api")
    return ApiGatewayServer(api_app.handler, host=host, port=port)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="default 8080; 0 picks a free port")
    parser.add_argument("--orders", type=Path, help="a JSON array of Billbee orders (default: the sample shop)")
    parser.add_argument("--connection", type=Path, default=DEFAULT_CONNECTION, help="the connection to store")
    parser.add_argument("--poll", action="store_true", help="run the hourly job once at start")
    parser.add_argument("--no-worker", action="store_true", help="do not drain the export queue")
    parser.add_argument("--no-rate-limits", action="store_true", help="switch off Billbee's 2 requests/s")
    parser.add_argument("--logs", type=Path, default=REPO_ROOT / "out" / "serve-functions.log",
                        help="where the functions' JSON log goes (default out/serve-functions.log)")
    args = parser.parse_args(argv)
    try:
        return _serve(args)
    except BadInput as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: one line, secrets masked; the functions' log has the details
        from connector.observability import redacted

        print(redacted(f"internal error: {type(exc).__name__}: {exc} (see {args.logs})"), file=sys.stderr)
        return 70


def _serve(args: argparse.Namespace) -> int:
    from connector.errors import ApiError
    from connector.pipeline.setup import SetupError
    from local.sample_shop import sample_orders

    orders = load_orders(args.orders) if args.orders else sample_orders()
    connection = load_connection(args.connection)
    args.logs.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as resources:
        stack = resources.enter_context(LocalStack(orders=orders, billbee_rate_limits=not args.no_rate_limits))
        resources.enter_context(stack.function_logs(args.logs))
        try:
            stack.save_connection(connection)
        except SetupError as exc:
            failed = "\n  ".join(f"{c.name}: {c.detail}" for c in exc.report.checks if not c.ok)
            raise BadInput(f"connection {connection.get('connectionId')!r} not saved:\n  {failed}") from None
        except ApiError as exc:
            raise BadInput(f"connection not saved: the setup checks could not finish ({exc})") from None
        if args.poll:
            stack.poll()
        try:
            server = resources.enter_context(serve_stack(stack, host=args.host, port=args.port))
        except ValueError as exc:
            raise BadInput(f"--host: {exc}") from None
        except OSError as exc:
            raise BadInput(
                f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); is another `make serve` running? "
                "Pick another port: make serve ARGS='--port 8081' (or --port 0 for any free one)"
            ) from None
        if not args.no_worker:
            worker = QueueWorker(stack).start()
            resources.callback(worker.stop)
        connection_id = connection.get("connectionId", "demo-shop")
        print(
            f"Billbee -> sevDesk connector API on {server.url} (local stack: moto + sandboxes)\n\n"
            f"  export API={server.url}\n"
            f"  export TOKEN={api_token(stack)}\n\n"
            f"  web console: {server.url}/console (paste the TOKEN when it asks)\n\n"
            f'  curl -H "Authorization: Bearer $TOKEN" "$API/connections/{connection_id}"\n'
            f'  curl -H "Authorization: Bearer $TOKEN" "$API/openapi.json"\n\n'
            f"connection {connection_id!r} stored; {len(orders)} orders in the Billbee sandbox; export worker "
            f"{'off' if args.no_worker else 'on'}; function logs -> {args.logs}\nCtrl-C stops.",
            flush=True,
        )
        # A terminated `make serve` stops like Ctrl-C: the stack's servers are shut down by the with-block.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
