"""Writes whose answer was lost: when to look again, and when writing again is safe. Pure rules, no I/O.

sevDesk may apply a write and still answer 500, time out or drop the connection (sevdesk-pitfalls #18), and a write
the server is still working on when the client gives up can commit seconds later. So after a lost answer the
connector never writes again in the same invocation: it comes back after ``recheck`` seconds and searches, and writes
again only when searches spread over ``settle`` seconds (at least ``min_searches`` of them) found nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LostWrite:
    since: float  # epoch seconds when the answer was lost
    searches: int = 0  # searches since then that found nothing

    def as_item(self) -> dict[str, float | int]:
        return {"since": self.since, "searches": self.searches}

    @classmethod
    def from_item(cls, item: Mapping[str, object] | None) -> LostWrite | None:
        if not item:
            return None
        since = item.get("since")
        searches = item.get("searches")
        return cls(float(str(since)), int(str(searches or 0)))


@dataclass(frozen=True)
class Timing:
    recheck: float = 60.0
    settle: float = 900.0
    min_searches: int = 3


@dataclass(frozen=True)
class Decision:
    write: bool  # True: nothing lost, or searched long enough: write (again)
    lost: LostWrite | None  # the marker to keep (None: clear it)
    wait: float = 0.0  # when not writing: seconds until the next search


def after_search_found_nothing(lost: LostWrite | None, now: float, timing: Timing) -> Decision:
    """A search for the write's result found nothing: write, or wait and search again."""
    if lost is None:
        return Decision(write=True, lost=None)
    searched = LostWrite(lost.since, lost.searches + 1)
    elapsed = now - lost.since
    if elapsed >= timing.settle and searched.searches >= timing.min_searches:
        return Decision(write=True, lost=None)
    remaining_searches = max(1, timing.min_searches - searched.searches)
    wait = max(timing.recheck, (timing.settle - elapsed) / remaining_searches)
    return Decision(write=False, lost=searched, wait=wait)


def after_lost_answer(now: float, timing: Timing) -> Decision:
    """The answer of a write was just lost: never write again now; look first after ``recheck``."""
    return Decision(write=False, lost=LostWrite(now, 0), wait=timing.recheck)
