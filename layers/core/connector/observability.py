"""Logger and metrics, created once and imported everywhere (style.md), and the last guard for secrets.

No powertools Tracer: it needs aws-xray-sdk, which costs ~0.5 s of cold start; Lambda's active tracing (template
``Tracing: Active``) still records each invocation.

Credentials never go into a log on purpose; ``redact_secret`` registers each one as it is read, and every log line is
scrubbed of the registered values before it is written, so a value a library puts into an error message (httpx quotes
a bad header value whole) or a traceback is masked too.
"""

from __future__ import annotations

import logging
import threading

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="billbee-sevdesk")
metrics = Metrics(namespace="BillbeeSevdesk", service="billbee-sevdesk")

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values (a user name like "shop") would mask ordinary words
MAX_SECRETS = 2000
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def redact_secret(value: str | None) -> None:
    """Never let this value appear in a log line (nor its JSON-escaped form)."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if len(_secrets) < MAX_SECRETS:
            _secrets.add(value)


def redacted(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _install_redaction(target: Logger) -> None:
    formatter = target.registered_formatter
    original = formatter.format

    def format_redacted(record: logging.LogRecord) -> str:
        return redacted(original(record))

    formatter.format = format_redacted  # type: ignore[method-assign]


_install_redaction(logger)
