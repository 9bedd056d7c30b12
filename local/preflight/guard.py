"""The preflight's read-only guard: an httpx transport under both clients that lets only reads leave the process.

The preflight runs the connector's own code against the merchant's live accounts, so "it writes nothing" must not
depend on that code calling only reads today: a future change that tags, saves or invoices would otherwise write to
live books. The guard sits where every request of ``BillbeeClient`` (its PDF downloads included) and
``SevdeskClient`` passes, and refuses, before a byte is sent:

- every method but ``GET`` (``POST``, ``PUT``, ``PATCH``, ``DELETE``, ... all change something in these APIs);
- Billbee's ``CreateInvoice`` whatever the method: it allocates an invoice number for an order without one
  (billbee-pitfalls #16), and it is the only way to the PDF, so the preflight never fetches a PDF;
- sevDesk's ``getPdf``, a ``GET`` that marks a document as sent unless told otherwise (sevdesk-api.md);
- any address outside the API base URL it was given: a presigned PDF link (the PDF is not needed for a preview) or
  a redirect elsewhere.

A refusal raises ``WriteRefused`` (not an ``httpx`` error, so no retry loop takes it for a network problem), is kept
in ``refused`` even if some code swallowed the exception, and the preflight ends with its own exit status.

Every exchange, refused or sent, is kept for ``requests.jsonl`` with the credentials masked: the auth headers are
replaced, and each credential value (and the Basic header's base64 form) is masked wherever else it appears.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "x-billbee-api-key", "cookie", "set-cookie"})
READ_METHODS = frozenset({"GET"})
# Reads that change something all the same (lower-case path fragments).
WRITE_LIKE_PATHS = {
    "billbee": ("createinvoice",),  # allocates an invoice number for an order without one (billbee-pitfalls #16)
    "sevdesk": ("/getpdf",),  # marks an invoice or credit note as sent unless preventSendBy=true
}
MAX_BODY_CHARS = 65_536  # per recorded answer in requests.jsonl (a page of 250 orders is about 1 MB)

Observer = Callable[[dict[str, Any], Any], None]


class WriteRefused(RuntimeError):
    """A request that could change something was stopped before it left the process."""

    def __init__(self, api: str, method: str, target: str, why: str) -> None:
        super().__init__(f"the read-only guard refused {method} {target} ({api}): {why}")
        self.api = api
        self.method = method
        self.target = target
        self.why = why


class Masker:
    """Masks credential values (and the forms they take on the wire) in any text."""

    MIN_LENGTH = 4

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        for value in secrets:
            self.add(value)

    def add(self, value: str | None) -> None:
        if not value or len(value) < self.MIN_LENGTH:
            return
        self._values.add(value)
        self._values.add(json.dumps(value)[1:-1])  # as it appears inside JSON

    def add_basic(self, username: str, password: str) -> None:
        """The ``Authorization: Basic`` value Billbee gets, in case it turns up anywhere else."""
        self.add(base64.b64encode(f"{username}:{password}".encode()).decode())

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {name.lower(): (MASK if name.lower() in SECRET_HEADERS else value) for name, value in headers.items()}


def _body(content: bytes, content_type: str | None) -> tuple[Any, Any]:
    """(what is recorded, the parsed JSON or None)."""
    if not content:
        return None, None
    text = content.decode("utf-8", "replace")
    parsed: Any = None
    if "json" in (content_type or "") or text[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if len(text) > MAX_BODY_CHARS:
        return {"truncated": True, "length": len(text), "start": text[:MAX_BODY_CHARS]}, parsed
    if parsed is not None:
        return parsed, parsed
    if content_type and not content_type.startswith(("text/", "application/json")):
        return {"bytes": len(content), "contentType": content_type}, None
    return text, None


def _request_body(request: httpx.Request) -> Any:
    try:
        content = request.content
    except httpx.RequestNotRead:
        return {"stream": True}
    if content and (request.headers.get("content-type") or "").startswith("multipart/"):
        return {"multipart": True, "bytes": len(content)}
    return _body(content, request.headers.get("content-type"))[0]


class ReadOnlyGuard:
    """The rules, the record of every exchange and the transports that enforce them (one per API and client)."""

    def __init__(
        self,
        base_urls: Mapping[str, str],
        *,
        masker: Masker | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_urls = {api: httpx.URL(url.rstrip("/") + "/") for api, url in base_urls.items()}
        self.mask = masker or Masker()
        self.observer = observer
        self.clock = clock
        self.exchanges: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # -- the rules -----------------------------------------------------------------------------------------------
    def why_refused(self, api: str, request: httpx.Request) -> str | None:
        """Why this request could change something (refused), or None for a plain read of the configured API."""
        method = request.method.upper()
        if method not in READ_METHODS:
            return f"only reads (GET) may leave the preflight; {method} can change data"
        base = self.base_urls.get(api)
        url = request.url
        if base is None:
            return f"no base URL is configured for {api}"
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not url.path.startswith(
            base.path
        ):
            return f"{url.scheme}://{url.host}{url.path} is not under the {api} API ({base}); a PDF download or a " \
                "redirect is not needed for a preview"
        path = url.path.lower()
        for fragment in WRITE_LIKE_PATHS.get(api, ()):
            if fragment in path:
                return f"{fragment.strip('/')} changes data although it is read with {method}"
        return None

    def transport(self, api: str, inner: httpx.BaseTransport | None = None) -> GuardedTransport:
        """A transport for one client; ``inner`` sends what passes (default: a plain ``httpx.HTTPTransport``)."""
        return GuardedTransport(self, api, inner or httpx.HTTPTransport())

    # -- the record ----------------------------------------------------------------------------------------------
    def _record(self, entry: dict[str, Any], parsed: Any = None) -> None:
        with self._lock:
            entry["seq"] = len(self.exchanges) + 1
            self.exchanges.append(entry)
        if self.observer is not None:
            self.observer(entry, parsed)

    def _base(self, api: str, request: httpx.Request) -> dict[str, Any]:
        return {
            "api": api,
            "at": round(self.clock(), 3),
            "method": request.method,
            "url": str(request.url),
            "path": request.url.path,
            "query": [[k, v] for k, v in request.url.params.multi_items()],
            "requestHeaders": _headers(request.headers),
        }

    def refuse(self, api: str, request: httpx.Request, why: str) -> WriteRefused:
        entry = {**self._base(api, request), "requestBody": _request_body(request), "refused": why}
        with self._lock:
            self.refused.append(entry)
        self._record(entry)
        return WriteRefused(api, request.method, f"{request.url.path}", why)

    def record_answer(
        self, api: str, request: httpx.Request, response: httpx.Response, content: bytes, millis: float
    ) -> None:
        recorded, parsed = _body(content, response.headers.get("content-type"))
        entry = {
            **self._base(api, request),
            "status": response.status_code,
            "responseHeaders": _headers(response.headers),
            "responseBody": recorded,
            "ms": round(millis, 1),
        }
        self._record(entry, parsed)

    def record_failure(self, api: str, request: httpx.Request, exc: Exception, millis: float) -> None:
        self._record({**self._base(api, request), "status": None, "error": type(exc).__name__, "ms": round(millis, 1)})

    def jsonl_lines(self) -> Iterable[str]:
        """``requests.jsonl``: one masked JSON line per exchange."""
        with self._lock:
            entries = list(self.exchanges)
        for entry in entries:
            yield self.mask(json.dumps(entry, ensure_ascii=False, default=str))

    def methods(self) -> dict[str, int]:
        """How many requests were sent per method (refused ones are not sent)."""
        counts: dict[str, int] = {}
        with self._lock:
            for entry in self.exchanges:
                if "refused" not in entry:
                    counts[entry["method"]] = counts.get(entry["method"], 0) + 1
        return counts


class GuardedTransport(httpx.BaseTransport):
    def __init__(self, guard: ReadOnlyGuard, api: str, inner: httpx.BaseTransport) -> None:
        self.guard = guard
        self.api = api
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        why = self.guard.why_refused(self.api, request)
        if why is not None:
            raise self.guard.refuse(self.api, request, why)
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
            try:
                already = response.content  # a transport that answers read responses (tests' mock transports)
            except httpx.ResponseNotRead:
                already = None
                raw = b"".join(response.iter_raw())
                response.close()
        except Exception as exc:
            self.guard.record_failure(self.api, request, exc, (time.perf_counter() - started) * 1000)
            raise
        millis = (time.perf_counter() - started) * 1000
        if already is not None:
            self.guard.record_answer(self.api, request, response, already, millis)
            return response
        # A copy of the raw bytes, which httpx decodes (content encoding) at once; the client reads it as usual.
        copy = httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            content=raw,
            request=request,
            extensions={k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")},
        )
        self.guard.record_answer(self.api, request, copy, copy.content, millis)
        return copy

    def close(self) -> None:
        self.inner.close()
