"""A small threaded HTTP server on 127.0.0.1 shared by the Billbee and sevDesk sandboxes.

Each sandbox declares routes (method, path regex, operation name, handler). The server parses the request, asks the
fault plan whether a fault applies to the operation, runs the handler, records the exchange (for ``requests.jsonl``
and the contract tests) and writes the response. Faults that model "saved, but the answer was lost" run the handler
first and then break the answer.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.faults import APPLIED_KINDS, LATE_KINDS, FaultPlan, FaultRule

REDACTED = "***"
SECRET_HEADERS = ("authorization", "x-billbee-api-key")


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route regex

    def query_values(self, name: str) -> list[str]:
        """All values of a query parameter, in the ``name=a&name=b`` and the indexed ``name[0]=a`` form."""
        indexed = re.compile(re.escape(name) + r"\[\d*\]$")
        return [v for k, v in self.query if k == name or indexed.match(k)]

    def query_value(self, name: str, default: str | None = None) -> str | None:
        values = self.query_values(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def multipart(self) -> tuple[dict[str, str], dict[str, UploadedFile]]:
        """Fields and files of a multipart/form-data body."""
        ctype = self.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body)
        fields: dict[str, str] = {}
        files: dict[str, UploadedFile] = {}
        if not message.is_multipart():
            return fields, files
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = UploadedFile(filename, part.get_content_type(), payload)
            else:
                fields[name] = payload.decode("utf-8", "replace")
        return fields, files


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes for raw bodies
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler


@dataclass
class Exchange:
    """One request and its answer, as recorded by a sandbox (secrets redacted)."""

    api: str
    operation: str
    method: str
    path: str
    query: list[tuple[str, str]]
    request_headers: dict[str, str]
    request_body: Any
    status: int | None
    response_headers: dict[str, str]
    response_body: Any
    fault: str | None
    started: float
    duration_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "request_headers": self.request_headers,
            "request_body": self.request_body,
            "status": self.status,
            "response_headers": self.response_headers,
            "response_body": self.response_body,
            "fault": self.fault,
            "started": self.started,
            "duration_ms": round(self.duration_ms, 2),
        }


class SandboxServer:
    """Base class: subclasses register routes and implement ``error_response``."""

    api = "base"

    def __init__(self, *, faults: FaultPlan | None = None, hold_seconds: float = 3.0) -> None:
        self.routes: list[Route] = []
        self.faults = faults or FaultPlan()
        self.hold_seconds = hold_seconds  # how long a "timeout" fault holds the answer (> the client's timeout)
        self.exchanges: list[Exchange] = []
        self.lock = threading.RLock()  # guards the sandbox's state; handlers run under it
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # "latecommit" faults: writes applied some seconds after the client gave up, on ``late_clock`` (epoch
        # seconds; the chaos suite moves it with the functions' clocks). Due ones are applied before every request.
        self.late_clock: Callable[[], float] = time.time
        self._late_commits: list[tuple[float, Handler, Request]] = []
        self.late_commits_applied: list[tuple[str, str]] = []  # (operation, path) of each late commit applied

    # -- routing -------------------------------------------------------------------------------------------------
    def route(self, method: str, path: str, operation: str, handler: Handler) -> None:
        """Register a handler; ``path`` is a regex with named groups, matched against the whole path."""
        self.routes.append(Route(method, re.compile(path + r"/?$"), operation, handler))

    def operations(self) -> set[str]:
        """The operation names of the routes (what ``--faults`` rules may name)."""
        return {route.operation for route in self.routes}

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for a request, its path parameters, and whether the path exists with another method."""
        path_known = False
        for route in self.routes:
            match = route.pattern.match(path)
            if match:
                path_known = True
                if route.method == method:
                    return route, match.groupdict(), True
        return None, {}, path_known

    # -- hooks for subclasses ------------------------------------------------------------------------------------
    def error_response(self, status: int, message: str, *, retry_after: int | None = None) -> Response:
        raise NotImplementedError

    def authenticate(self, request: Request) -> Response | None:
        """None if the request may proceed, else the API's auth-failure response."""
        return None

    def throttle(self, request: Request, operation: str) -> Response | None:
        """None if the request is within the rate limits, else a 429 response."""
        return None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "sandbox not started"
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}{self.url_prefix}"

    url_prefix = ""

    def start(self, port: int = 0) -> str:
        sandbox = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, a keep-alive client waits for the delayed ACK
            # (~40 ms per request, measured). TCP_NODELAY makes a sandbox request take well under 1 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr access log
                return

            def _serve(self) -> None:
                sandbox._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.api}-sandbox", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- late commits --------------------------------------------------------------------------------------------
    def apply_late_commits(self, *, everything: bool = False) -> int:
        """Apply the late writes that are due (or all of them); returns how many were applied."""
        with self.lock:
            now = self.late_clock()
            due = [entry for entry in self._late_commits if everything or entry[0] <= now]
            self._late_commits = [entry for entry in self._late_commits if entry not in due]
            for _, handler, request in due:
                try:
                    response = handler(request)
                except Exception:  # noqa: BLE001 - a late write that fails is as good as never applied
                    response = Response(500)
                if response.status < 400:
                    self.late_commits_applied.append((request.method, request.path))
            return len(due)

    def discard_late_commits(self) -> None:
        with self.lock:
            self._late_commits.clear()
            self.late_commits_applied.clear()

    @property
    def late_commits_pending(self) -> int:
        with self.lock:
            return len(self._late_commits)

    # -- request handling ----------------------------------------------------------------------------------------
    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        started = time.time()
        t0 = time.perf_counter()
        split = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in http.headers.items()}
        request = Request(http.command, split.path, parse_qsl(split.query, keep_blank_values=True), headers, body)
        route, params, path_known = self.resolve(request.method, request.path)
        request.params = params
        self.apply_late_commits()
        operation = route.operation if route else "unknown"
        fault: FaultRule | None = None
        response: Response | None = None

        response = self.authenticate(request)
        if response is None and route is None:
            response = self.error_response(405 if path_known else 404, f"No route for {request.method} {request.path}")
        if response is None:
            fault = self.faults.fault_for(self.api, operation)
            if fault is not None and fault.kind in LATE_KINDS and route is not None:
                with self.lock:
                    self._late_commits.append((self.late_clock() + fault.delay, route.handler, request))
                response = Response(status=0)  # never written: held past the client's timeout, then closed
            elif fault is not None and fault.kind not in APPLIED_KINDS:
                response = self._fault_response(fault)
        if response is None:
            response = self.throttle(request, operation)
        applied_fault = fault if fault is not None and fault.kind in APPLIED_KINDS else None
        if response is None:
            assert route is not None
            try:
                with self.lock:
                    response = route.handler(request)
            except Exception as exc:  # a sandbox bug must show up as a 500, not hang the client
                response = self.error_response(500, f"sandbox error: {type(exc).__name__}: {exc}")
            if applied_fault is not None and applied_fault.kind == "saved500":
                response = self.error_response(500, "Internal Server Error")

        kind = fault.kind if fault else None
        self._record(request, operation, response, kind, started, t0)
        if kind in ("timeout", "savedtimeout", "latecommit"):
            time.sleep(self.hold_seconds)
        if kind in ("drop", "saveddrop", "timeout", "savedtimeout", "latecommit"):
            # The client has given up (or will see the connection vanish): close without an answer.
            http.close_connection = True
            try:
                http.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(http, response)

    def _fault_response(self, fault: FaultRule) -> Response | None:
        if fault.kind == "429":
            return self.error_response(429, "Too Many Requests", retry_after=fault.retry_after)
        if fault.kind == "429bare":
            return self.error_response(429, "Too Many Requests", retry_after=None)
        if fault.kind in ("500", "502", "503"):
            return self.error_response(
                int(fault.kind), "Service Unavailable" if fault.kind == "503" else "Server Error"
            )
        if fault.kind in ("timeout", "drop"):
            return Response(status=0)  # never written
        return None

    def _record(
        self, request: Request, operation: str, response: Response, fault: str | None, started: float, t0: float
    ) -> None:
        req_headers = {k: (REDACTED if k in SECRET_HEADERS else v) for k, v in request.headers.items()}
        exchange = Exchange(
            api=self.api,
            operation=operation,
            method=request.method,
            path=request.path,
            query=request.query,
            request_headers=req_headers,
            request_body=_describe_body(request),
            status=None if fault in ("drop", "saveddrop", "timeout", "savedtimeout", "latecommit") else response.status,
            response_headers=dict(response.headers),
            response_body=None if isinstance(response.body, bytes) else response.body,
            fault=fault,
            started=started,
            duration_ms=(time.perf_counter() - t0) * 1000,
        )
        with self.lock:
            self.exchanges.append(exchange)

    @staticmethod
    def _write(http: BaseHTTPRequestHandler, response: Response) -> None:
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None and response.status == 204:
            payload = b""
        else:
            payload = json.dumps(response.body, ensure_ascii=False).encode()
        try:
            http.send_response(response.status)
            http.send_header("Content-Type", response.content_type)
            http.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                http.send_header(name, value)
            http.end_headers()
            http.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _describe_body(request: Request) -> Any:
    if not request.body:
        return None
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        fields, files = request.multipart()
        return {
            "multipart": {
                "fields": fields,
                "files": {
                    k: {"filename": f.filename, "content_type": f.content_type, "size": len(f.data)}
                    for k, f in files.items()
                },
            }
        }
    try:
        return json.loads(request.body)
    except ValueError:
        return {"raw": request.body[:2000].decode("utf-8", "replace")}
