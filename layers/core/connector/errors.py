"""Errors the clients raise, classified by what the pipeline must do with them."""

from __future__ import annotations


class ApiError(Exception):
    """A failed call to Billbee or sevDesk. Messages never contain credentials."""

    retryable = False

    def __init__(self, api: str, message: str, *, status: int | None = None, code: object = None) -> None:
        super().__init__(f"{api}: {message}" + (f" (HTTP {status})" if status else ""))
        self.api = api
        self.status = status
        self.code = code
        self.detail = message


class TransientError(ApiError):
    """Worth retrying later: 5xx, timeouts on reads, 429 with a long Retry-After, network errors."""

    retryable = True

    def __init__(self, api: str, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(api, message, status=status)
        self.retry_after = retry_after


class UnknownOutcome(TransientError):
    """A write whose answer was lost (timeout, dropped connection, 5xx): it may or may not have been applied.

    The next attempt must look for the result before writing again (architecture.md §4, sevdesk-pitfalls #18).
    """


class AuthError(ApiError):
    """401/403: a wrong or revoked credential. Permanent for the connection until the user fixes it."""


class RejectedError(ApiError):
    """400/422 and envelope errors: the request itself is wrong. Permanent for this order."""


class NotFoundError(ApiError):
    """The object does not exist (HTTP 404, Billbee ErrorCode 2, sevDesk code 151)."""


class UnreadableData(RejectedError):
    """An answer whose data the connector cannot read (a date that is no date, a number in words, NaN, ...):
    permanent for this order until the data changes; ``detail`` names the field and the problem."""


class Waiting(TransientError):
    """The order must wait (for another export's lease, for a lost answer to show up): no failure, so it does not
    use up one of the order's attempts (nor does a 429)."""


class OutcomePending(Waiting):
    """A write whose answer was lost has not shown up yet: look again later, never write again at once."""
