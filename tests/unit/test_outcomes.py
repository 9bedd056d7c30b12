"""Lost answers (issue 8, item 9): a write whose answer was lost is never written again at once; it is searched for
after a minute and written again only after searches spread over a longer window found nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.pipeline.outcomes import LostWrite, Timing, after_lost_answer, after_search_found_nothing

AWS = Timing(recheck=60, settle=900, min_searches=3)


def test_a_write_never_lost_is_written() -> None:
    decision = after_search_found_nothing(None, 1000.0, AWS)
    assert decision.write and decision.lost is None


def test_a_lost_answer_means_look_again_after_a_minute_never_write_now() -> None:
    decision = after_lost_answer(1000.0, AWS)
    assert not decision.write
    assert decision.lost == LostWrite(1000.0, 0)
    assert decision.wait == 60


@pytest.mark.parametrize(
    ("elapsed", "searches_before", "write", "wait"),
    [
        (60, 0, False, 420),  # first search after a minute: two more, spread over the rest of the window
        (480, 1, False, 420),  # second search
        (900, 2, True, 0),  # third search at the end of the window found nothing: write again
        (900, 0, False, 60),  # the window is over, but only one search so far: search again first
        (3600, 1, False, 60),
        (3600, 2, True, 0),
        (30, 5, False, 870),  # duplicate deliveries count searches, but the window still has to pass
    ],
)
def test_the_search_schedule(elapsed: float, searches_before: int, write: bool, wait: float) -> None:
    decision = after_search_found_nothing(LostWrite(1000.0, searches_before), 1000.0 + elapsed, AWS)
    assert decision.write is write
    assert decision.wait == pytest.approx(wait)
    assert (decision.lost is None) is write
    if not write:
        assert decision.lost == LostWrite(1000.0, searches_before + 1)


@given(
    since=st.floats(0, 1e9), elapsed=st.floats(0, 1e5), searches=st.integers(0, 50),
    recheck=st.floats(1, 600), settle=st.floats(1, 7200), minimum=st.integers(1, 10),
)
def test_writing_again_needs_both_the_window_and_the_searches(
    since: float, elapsed: float, searches: int, recheck: float, settle: float, minimum: int
) -> None:
    timing = Timing(recheck, settle, minimum)
    decision = after_search_found_nothing(LostWrite(since, searches), since + elapsed, timing)
    if decision.write:
        assert elapsed >= settle and searches + 1 >= minimum
    else:
        assert decision.wait >= recheck  # never a hot loop of searches


def test_the_marker_survives_a_round_trip_through_the_record() -> None:
    lost = LostWrite(1234.5, 2)
    assert LostWrite.from_item(lost.as_item()) == lost
    assert LostWrite.from_item(None) is None
