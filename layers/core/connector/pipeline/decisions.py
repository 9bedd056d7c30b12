"""The pipeline's decisions as pure functions, proved by table tests in milliseconds (tests/unit/test_decisions.py):
what the hourly poll does with a listed order, with an open record whose order is no longer listed, and what a
failed export attempt leaves behind. The callers (poll.py, export.py) only read, decide and write."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connector.store.records import ExportState

NO_INVOICE = "the order has no invoice yet; it is exported once invoiced"
LEFT_FILTERS = "the order no longer matches the connection's filters (state, shop or tag changed)"


class Act(StrEnum):
    QUEUE = "queue"  # write the record PENDING (if it is not already) and send an export message
    SKIP = "skip"  # write the record SKIPPED with the reason
    UNCHANGED = "unchanged"  # nothing to send; ``write`` says whether the refreshed data is stored anyway
    GIVE_UP = "give_up"  # write the record NEEDS_ATTENTION with the reason; nothing to send


@dataclass(frozen=True)
class PollStep:
    act: Act
    write: bool  # store the record (its refreshed order data, and the state the act implies)
    reason: str | None = None


def listed_order(
    state: ExportState | None,
    *,
    has_invoice: bool,
    changed: bool,
    lease_expired: bool,
    enqueue_due: bool,
    attempts: int,
    max_attempts: int,
    last_error: str | None = None,
    excluded: str | None = None,
    reason: str | None = None,
) -> PollStep:
    """What the poll does with an order Billbee lists for the connection, given its record's state (None: none).

    ``changed``: the order's data differs from the record's; ``enqueue_due``: the record has waited long enough
    since it was last queued (a lost message); ``lease_expired``: an EXPORTING record's worker died; ``excluded``:
    why the connection's settings leave this kind of order to a person (a credit note with ``creditNotes: off``);
    ``reason``: the record's own. An order that waits unchanged (for its invoice, or in the queue) costs no write:
    the hourly poll's writes follow what changed, not how many orders wait (issue 12)."""
    if state is None:
        if excluded is not None:
            return PollStep(Act.SKIP, True, excluded)
        return PollStep(Act.QUEUE, True) if has_invoice else PollStep(Act.SKIP, True, NO_INVOICE)
    if state is ExportState.HANDLED or state is ExportState.EXPORTED:
        return PollStep(Act.UNCHANGED, False)  # booked: by this connector, or by hand
    if state is ExportState.EXPORTING:
        return PollStep(Act.QUEUE if lease_expired else Act.UNCHANGED, False)
    if state is ExportState.NEEDS_ATTENTION and not changed:
        return PollStep(Act.UNCHANGED, False)  # a bookkeeper must act; unchanged data would fail the same way
    skip = excluded if excluded is not None else None if has_invoice else NO_INVOICE
    if skip is not None:
        if state is ExportState.SKIPPED and reason == skip and not changed:
            return PollStep(Act.UNCHANGED, False)  # still waiting, and it says so already
        return PollStep(Act.SKIP, True, skip)
    if state is ExportState.PENDING and not enqueue_due:
        return PollStep(Act.UNCHANGED, changed)
    if state is ExportState.FAILED and attempts >= max_attempts and not changed:
        return PollStep(Act.GIVE_UP, True, f"gave up after {attempts} attempts; last error: {last_error}")
    return PollStep(Act.QUEUE, True)


def unlisted_order(
    origin: str, *, attempts: int, max_attempts: int, voucher_id: str | None, tagged: bool = False,
    lease_expired: bool = False, exporting: bool = False,
) -> PollStep:
    """An open (PENDING, FAILED, or EXPORTING) record whose order the poll no longer lists: the state *at the time
    of the transfer* counts (help text), so a polled order that left the filters is skipped; one a person chose (a
    manual export or a retry) is tried again while it has attempts left.

    Our own tag hides an order from the list once its export tagged it, so a record that is ``tagged`` is finished,
    never skipped; and an EXPORTING record whose worker died (``lease_expired``) is queued again, as when listed: its
    SQS message may be gone to the dead-letter queue, and nothing else would ever finish it."""
    if exporting:
        return PollStep(Act.QUEUE if lease_expired else Act.UNCHANGED, False)
    if tagged:
        return PollStep(Act.QUEUE, False)
    if origin == "poll":
        reason = LEFT_FILTERS + (f"; voucher {voucher_id} was already created in sevDesk" if voucher_id else "")
        return PollStep(Act.SKIP, True, reason)
    if attempts < max_attempts:
        return PollStep(Act.QUEUE, False)
    return PollStep(Act.UNCHANGED, False)


@dataclass(frozen=True)
class AttemptEnd:
    state: ExportState
    attempts: int
    reason: str | None


def failed_attempt(error: str, *, attempts: int, max_attempts: int, counts: bool) -> AttemptEnd:
    """What a retryable failure leaves: FAILED (the message comes back), or NEEDS_ATTENTION once the attempts are
    used up. ``counts=False``: waiting (a 429, a lost answer not settled yet, another export's lease) is no failed
    attempt, so a throttled or waiting order never runs out of attempts."""
    if not counts:
        return AttemptEnd(ExportState.FAILED, max(0, attempts - 1), None)
    if attempts >= max_attempts:
        return AttemptEnd(ExportState.NEEDS_ATTENTION, attempts, f"gave up after {attempts} attempts; last error: "
                                                                f"{error}")
    return AttemptEnd(ExportState.FAILED, attempts, None)
