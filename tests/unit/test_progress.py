"""A backfill's progress and estimate (pipeline/progress.py): pure, from counts, the listing item and the rate."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.pipeline.progress import ExportRate, listing_left, progress, read_progress

LISTING: dict[str, Any] = {"listed": 750, "pages": 3, "pages_left": 4, "page_size": 250}


def test_a_backfill_half_listed_estimates_what_is_queued_failed_and_left_to_list_at_the_measured_rate() -> None:
    counts = {"PENDING": 90, "EXPORTING": 10, "FAILED": 20, "EXPORTED": 600, "SKIPPED": 25, "NEEDS_ATTENTION": 5}
    found = progress(counts, LISTING, ExportRate(exported=600, seconds=600.0))  # one export a second
    assert (found.listing_complete, found.listed, found.left_to_list) == (False, 750, 1000)
    assert (found.queued, found.failed, found.exported, found.waiting) == (100, 20, 600, 30)
    assert found.exports_per_hour == 3600.0
    assert found.seconds_left == 100 + 20 + 1000
    assert not found.done
    assert "about 19 min left" in found.sentence() and "at most 1000 to go" in found.sentence()


def test_a_finished_backfill_is_done_with_nothing_left_whatever_the_rate() -> None:
    found = progress({"EXPORTED": 5000, "NEEDS_ATTENTION": 3}, None, None)
    assert found.done and found.seconds_left == 0 and found.exports_per_hour is None
    assert found.waiting == 3  # waiting orders wait for Billbee or a person: they do not hold the estimate up
    assert "nothing left to export" in found.sentence()


def test_without_a_measured_rate_there_is_no_estimate() -> None:
    for rate in (None, ExportRate(exported=1, seconds=30.0), ExportRate(exported=5, seconds=0.0)):
        found = progress({"PENDING": 40}, None, rate)
        assert found.seconds_left is None and found.exports_per_hour is None
        assert "left" not in found.sentence().split("; ")[-1]


@pytest.mark.parametrize(("listing", "left"), [
    (None, None),
    ({"listed": 250}, None),  # Billbee sent no paging: unknown
    ({"pages_left": 0, "page_size": 250}, 0),
    ({"pages_left": 3, "page_size": 100}, 300),
    ({"pages_left": -1, "page_size": 100}, 0),
])
def test_what_is_left_to_list_comes_from_the_pages_billbee_says_are_left(listing: Any, left: int | None) -> None:
    assert listing_left(listing) == left


@given(
    counts=st.dictionaries(st.sampled_from(["PENDING", "EXPORTING", "FAILED", "EXPORTED", "SKIPPED",
                                            "NEEDS_ATTENTION", "HANDLED"]), st.integers(0, 10**6)),
    pages_left=st.none() | st.integers(0, 1000),
    exported=st.integers(0, 10**5),
    seconds=st.floats(0.5, 3600.0),
)
def test_the_estimate_is_what_is_left_over_the_rate_and_grows_with_what_is_left(
        counts: dict[str, int], pages_left: int | None, exported: int, seconds: float) -> None:
    listing = None if pages_left is None else {"listed": 1, "pages_left": pages_left, "page_size": 250}
    rate = ExportRate(exported, seconds)
    found = progress(counts, listing, rate)
    left = counts.get("PENDING", 0) + counts.get("EXPORTING", 0) + counts.get("FAILED", 0) + (pages_left or 0) * 250
    if listing is None and left == 0:
        assert found.seconds_left == 0 and found.done
    elif rate.per_second is None:
        assert found.seconds_left is None
    else:
        assert found.seconds_left == round(left / rate.per_second)
        more = progress({**counts, "PENDING": counts.get("PENDING", 0) + 1}, listing, rate)
        assert more.seconds_left is not None and more.seconds_left >= found.seconds_left


class FakeStore:
    def __init__(self, exported: tuple[int, str | None]) -> None:
        self.exported = exported
        self.asked_since: list[str] = []

    def clock(self) -> str:
        return "2026-12-01T10:00:00.000000Z"

    def count_by_state(self, connection_id: str) -> dict[str, int]:
        return {"PENDING": 360, "EXPORTED": 720}

    def get_listing(self, connection_id: str) -> dict[str, Any] | None:
        return None

    def exported_since(self, connection_id: str, since: str) -> tuple[int, str | None]:
        self.asked_since.append(since)
        return self.exported


def test_the_rate_is_measured_from_the_oldest_export_of_the_last_hour() -> None:
    store = FakeStore((720, "2026-12-01T09:30:00.000000Z"))  # 720 in the last half hour: 1,440 an hour
    found = read_progress(store, "shop")
    assert store.asked_since == ["2026-12-01T09:00:00.000000Z"]
    assert found.exports_per_hour == 1440.0 and found.seconds_left == 900
    assert read_progress(FakeStore((0, None)), "shop").seconds_left is None
