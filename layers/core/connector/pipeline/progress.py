"""Where a connection's exports stand, and when a backfill will be done: the status API and ``make run`` show it.

Pure: the counts per export state, the poll's unfinished listing (``poll.Listing``, None once a listing is complete)
and the exports finished lately (``ExportRate``, from the state index) in; the figures a merchant reads out.

- **listed**: orders the unfinished listing has listed so far (None: the last listing is complete);
- **left to list**: at most this many more, from the pages Billbee says are left (its ``TotalPages`` of the query from
  the last id seen) times the page size; an estimate from above, None when Billbee sent no paging;
- **queued** (PENDING, EXPORTING), **exported**, **waiting** (SKIPPED: no invoice yet, no longer wanted;
  NEEDS_ATTENTION: a person must act), **failed** (FAILED: retried by the queue and the next poll);
- **rate**: exports finished per hour, measured from the oldest export of the last hour to now;
- **estimate**: what is left to export (queued, failed, left to list) divided by the rate; None while no rate is
  measured. Waiting orders are not counted: they wait for Billbee or for a person, not for the connector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

RATE_WINDOW = timedelta(hours=1)
MIN_EXPORTS_FOR_A_RATE = 2  # one export alone says nothing about a rate


@dataclass(frozen=True)
class ExportRate:
    exported: int  # exports finished within the window
    seconds: float  # from the oldest of them to now

    @property
    def per_second(self) -> float | None:
        if self.exported < MIN_EXPORTS_FOR_A_RATE or self.seconds <= 0:
            return None
        return self.exported / self.seconds


@dataclass(frozen=True)
class Progress:
    listing_complete: bool
    listed: int | None
    left_to_list: int | None
    queued: int
    exported: int
    waiting: int
    failed: int
    exports_per_hour: float | None
    seconds_left: int | None

    @property
    def done(self) -> bool:
        return self.listing_complete and self.queued == 0 and self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "listingComplete": self.listing_complete,
            "ordersListed": self.listed,
            "ordersLeftToList": self.left_to_list,
            "queued": self.queued,
            "exported": self.exported,
            "waiting": self.waiting,
            "failed": self.failed,
            "exportsPerHour": self.exports_per_hour,
            "estimatedSecondsLeft": self.seconds_left,
            "done": self.done,
        }

    def sentence(self) -> str:
        """One line for a person: what is done, what is left, and when it will be."""
        listed = "listing complete" if self.listing_complete else (
            f"listing: {self.listed} listed" + (f", at most {self.left_to_list} to go" if self.left_to_list else ""))
        parts = [listed, f"{self.exported} exported", f"{self.queued} queued", f"{self.failed} failed",
                 f"{self.waiting} waiting"]
        if self.exports_per_hour is not None:
            parts.append(f"{self.exports_per_hour:.0f} exports/hour")
        if self.done:
            parts.append("nothing left to export")
        elif self.seconds_left is not None:
            parts.append(f"about {_duration(self.seconds_left)} left")
        return "; ".join(parts)


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def listing_left(listing: Mapping[str, Any] | None) -> int | None:
    """At most this many orders are left to list (pages left times the page size); None: unknown or complete."""
    if not listing:
        return None
    pages_left, page_size = listing.get("pages_left"), listing.get("page_size")
    if not isinstance(pages_left, int) or not isinstance(page_size, int):
        return None
    return max(0, pages_left) * page_size


def progress(counts: Mapping[str, int], listing: Mapping[str, Any] | None, rate: ExportRate | None) -> Progress:
    queued = counts.get("PENDING", 0) + counts.get("EXPORTING", 0)
    failed = counts.get("FAILED", 0)
    left_to_list = listing_left(listing)
    per_second = rate.per_second if rate is not None else None
    remaining = queued + failed + (left_to_list or 0)
    seconds_left: int | None = None
    if remaining == 0 and listing is None:
        seconds_left = 0
    elif per_second is not None:
        seconds_left = round(remaining / per_second)
    return Progress(
        listing_complete=listing is None,
        listed=int(listing.get("listed", 0)) if listing else None,
        left_to_list=left_to_list,
        queued=queued,
        exported=counts.get("EXPORTED", 0),
        waiting=counts.get("SKIPPED", 0) + counts.get("NEEDS_ATTENTION", 0),
        failed=failed,
        exports_per_hour=round(per_second * 3600, 1) if per_second is not None else None,
        seconds_left=seconds_left,
    )


class ProgressSource(Protocol):
    """What ``read_progress`` needs of the store (``store.dynamo.Store``)."""

    def clock(self) -> str: ...
    def count_by_state(self, connection_id: str) -> dict[str, int]: ...
    def get_listing(self, connection_id: str) -> dict[str, Any] | None: ...
    def exported_since(self, connection_id: str, since: str) -> tuple[int, str | None]: ...


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_progress(store: ProgressSource, connection_id: str) -> Progress:
    """The connection's progress from the table: counts on the state index, the listing item, and the exports of the
    last hour (two queries on the index); nothing else is read."""
    now = _time(store.clock())
    since = (now - RATE_WINDOW).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    exported, oldest = store.exported_since(connection_id, since)
    rate = ExportRate(exported, (now - _time(oldest)).total_seconds()) if oldest else None
    return progress(store.count_by_state(connection_id), store.get_listing(connection_id), rate)
