"""Fixtures every layer of the suite shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aws import LocalAws


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    """The moto server with the template's own resources (table, queues, token secret), one per test module."""
    with LocalAws() as local_aws:
        yield local_aws
