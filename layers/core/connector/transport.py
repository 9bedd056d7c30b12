"""Sending one request with the retry rules both APIs need, in one place.

- 429: the limiter rejected the request before it reached the service, so even a write is safe to repeat after
  ``Retry-After`` (sevdesk-api.md §1); a wait longer than ``max_retry_after`` is left to the queue's redelivery.
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
) -> httpx.Response:
    last_problem = "no attempt made"
    for attempt in range(1, policy.attempts + 1):
        if before_send is not None:
            before_send()
        backoff = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
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
                wait = retry_after_seconds(response, backoff)
                last_problem = f"{operation}: throttled (429, Retry-After {wait:g} s)"
                if wait > policy.max_retry_after:
                    raise TransientError(api, last_problem, status=429, retry_after=wait)
                logger.info("throttled", extra={"api": api, "operation": operation, "retry_after": wait})
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
    raise TransientError(api, f"{last_problem}; gave up after {policy.attempts} attempts")
