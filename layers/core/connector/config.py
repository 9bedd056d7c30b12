"""Settings of the deployment, read once from the function's environment (template.yaml Globals)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from connector.billbee.client import DEFAULT_BASE_URL as BILLBEE_DEFAULT
from connector.sevdesk.client import DEFAULT_BASE_URL as SEVDESK_DEFAULT


@dataclass(frozen=True)
class Config:
    table_name: str
    export_queue_url: str
    secret_prefix: str = "billbee-sevdesk/"  # noqa: S105 - a name prefix, not a secret
    billbee_base_url: str = BILLBEE_DEFAULT
    sevdesk_base_url: str = SEVDESK_DEFAULT
    http_timeout: float = 20.0
    api_token_secret_id: str | None = None
    export_dlq_url: str | None = None  # the API peeks into it; the workers never read it
    lease_seconds: int = 150  # longer than one export (Lambda timeout 120 s)
    max_attempts: int = 8  # after this many failed attempts an order needs attention instead of retrying forever
    rate_limits: bool = True  # shared Billbee rate limiter in DynamoDB
    billbee_rate_scale: float = 1.0  # K: Billbee's limits K times faster, only for a local sandbox scaled alike
    retry_base_seconds: float = 30.0  # back-off of a failed export message: base x 2^(receives-1) ...
    retry_max_seconds: float = 900.0  # ... capped here
    # A sevDesk write whose answer was lost may commit later (sevdesk-pitfalls #18): look again after this long ...
    unknown_recheck_seconds: float = 60.0
    # ... and write again only after searches spread over this window (at least ``unknown_min_searches``) found
    # nothing. 15 minutes outlast any request a web server still works on after the client gave up.
    unknown_settle_seconds: float = 900.0
    unknown_min_searches: int = 3
    # The poll lists this many orders per page (Billbee's maximum; smaller only in tests) and stops a connection's
    # listing after this many pages per invocation (0: only the time budget stops it), continuing the next time.
    billbee_page_size: int = 250
    poll_max_pages: int = 0

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            table_name=env["TABLE_NAME"],
            export_queue_url=env.get("EXPORT_QUEUE_URL", ""),
            secret_prefix=env.get("SECRET_PREFIX", "billbee-sevdesk/"),
            billbee_base_url=env.get("BILLBEE_BASE_URL") or BILLBEE_DEFAULT,
            sevdesk_base_url=env.get("SEVDESK_BASE_URL") or SEVDESK_DEFAULT,
            http_timeout=float(env.get("HTTP_TIMEOUT_SECONDS") or 20),
            api_token_secret_id=env.get("API_TOKEN_SECRET_ID") or None,
            export_dlq_url=env.get("EXPORT_DLQ_URL") or None,
            lease_seconds=int(env.get("LEASE_SECONDS") or 150),
            max_attempts=int(env.get("MAX_ATTEMPTS") or 8),
            rate_limits=(env.get("BILLBEE_RATE_LIMITS", "on") != "off"),
            billbee_rate_scale=float(env.get("BILLBEE_RATE_SCALE") or 1),
            retry_base_seconds=float(env.get("RETRY_BASE_SECONDS") or 30),
            retry_max_seconds=float(env.get("RETRY_MAX_SECONDS") or 900),
            unknown_recheck_seconds=float(env.get("UNKNOWN_RECHECK_SECONDS") or 60),
            unknown_settle_seconds=float(env.get("UNKNOWN_SETTLE_SECONDS") or 900),
            unknown_min_searches=int(env.get("UNKNOWN_MIN_SEARCHES") or 3),
            billbee_page_size=min(250, max(1, int(env.get("BILLBEE_PAGE_SIZE") or 250))),
            poll_max_pages=max(0, int(env.get("POLL_MAX_PAGES") or 0)),
        )
