"""Sending one request with the retry rules both APIs need, in one place.

- 429: the limiter rejected the request before it reached the service, so even a write is safe to repeat after
  ``Retry-After`` (sevdesk-api.md §1); a wait longer than ``max_retry_after`` is left to the queue's redelivery.
  Billbee sometimes answers 429 without ``Retry-After`` (ERRATA Billbee 5): then the caller's documented window for
  that resource is waited (``throttle_window``), never a short back-off that would hit the same limit again.
- 5xx, timeouts, dropped connections: a read is repeated with exponential back-off; a write raises
  ``UnknownOutcome``, because sevDesk may have applied it (sevdesk-pitfalls #18), and the caller reconciles first.
- A connection that could not be opened never reached the server: safe to repeat for any method.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from connector.errors import TransientError, UnknownOutcome
from connector.observability import logger


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 15.0


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def throttle_wait(response: httpx.Response, window: float | None, backoff: float) -> tuple[float, str]:
    """How long to wait after a 429, and which reading of the API the answer showed (logged)."""
    if response.headers.get("Retry-After") is not None:
        return retry_after_seconds(response, backoff), "retry-after header"
    if window is not None:
        return window, "no retry-after header: documented window"
    return backoff, "no retry-after header: back-off"


def send(
    client: httpx.Client,
    request: httpx.Request,
    *,
    api: str,
    operation: str,
    idempotent: bool,
    policy: RetryPolicy,
    before_send: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    throttle_window: float | None = None,
) -> httpx.Response:
    last_problem = "no attempt made"
    throttled: float | None = None  # the last attempt was refused by a rate limit (nothing was applied)
    for attempt in range(1, policy.attempts + 1):
        if before_send is not None:
            before_send()
        backoff = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        throttled = None
        try:
            response = client.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last_problem = f"{operation}: cannot connect ({type(exc).__name__})"
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            last_problem = f"{operation}: no answer ({type(exc).__name__})"
            if not idempotent:
                raise UnknownOutcome(api, last_problem) from exc
        else:
            if response.status_code == 429:
                wait, reading = throttle_wait(response, throttle_window, backoff)
                last_problem = f"{operation}: throttled (429, waiting {wait:g} s: {reading})"
                logger.info("throttled", extra={"api": api, "operation": operation, "retry_after": wait,
                                                "reading": reading})
                if wait > policy.max_retry_after:
                    raise TransientError(api, last_problem, status=429, retry_after=wait)
                throttled = wait
                if attempt < policy.attempts:
                    sleep(wait)
                continue
            if response.status_code >= 500:
                last_problem = f"{operation}: server error"
                if not idempotent:
                    raise UnknownOutcome(api, last_problem, status=response.status_code)
                if attempt < policy.attempts:
                    sleep(backoff)
                    continue
                raise TransientError(api, last_problem, status=response.status_code)
            return response
        if attempt < policy.attempts:
            sleep(backoff)
    if throttled is not None:
        raise TransientError(
            api, f"{last_problem}; gave up after {policy.attempts} attempts", status=429, retry_after=throttled
        )
    raise TransientError(api, f"{last_problem}; gave up after {policy.attempts} attempts")
