"""Rate limits held across every concurrent function of one connection, not per process (architecture.md §5).

Billbee allows 2 requests/s per endpoint and 10/s per API key + user and answers 429 above that. A request first
claims a slot of its endpoint, then a place under the user's wider limit, each with a conditional write, so all
exporters and the poll of one connection share one schedule. The two limits are claimed differently:

- **paced** (the endpoint, 2/s): a grid of slots ``1 / (rate x PACED_SAFETY)`` seconds apart; a request takes the
  first free slot that has not started yet and goes out at its start. Any three requests of an endpoint are then at
  least ``2 / (2 x 0.98)`` = 1.020 s apart: Billbee's one-second window never holds three, even when one request
  arrives up to 20 ms later than the others (measured locally: under 5 ms). Each endpoint's grid starts at its own
  ``phase`` (billbee/client.py), a quarter slot apart for an export's three endpoints, so they never want the same
  place under the user's limit.
- **within** (the user, 10/s): slots ``1 / (rate x WINDOW_SAFETY)`` = 125 ms wide; a request takes the slot it
  falls in and may go out anywhere inside it. A one-second window touches at most 9 such slots, so it holds at most 9
  of the 10 requests allowed: one to spare for a late one. If that place is taken, the request does not wait for the
  next one (that would make it late for its endpoint's slot): it gives up its endpoint slot and tries the next.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from connector.errors import TransientError

PACED_SAFETY = 0.98  # of a narrow limit (2/s): 1.96 requests/s, 20 ms of slack per one-second window
WINDOW_SAFETY = 0.8  # of a wide limit (10/s): 8 slots/s, at most 9 requests in any second
LEAD_SECONDS = 0.01  # a slot that starts sooner is skipped: claiming it takes about that long


@dataclass(frozen=True)
class Limit:
    bucket: str
    per_second: float
    phase: float = 0.0  # where this bucket's grid starts, as a fraction of its slot (0 <= phase < 1)


class RateLimiter(Protocol):
    def acquire(self, paced: Limit, *within: Limit) -> None:
        """Wait until one request may go out under ``paced`` and every wider limit ``within``."""


class NoRateLimit:
    def acquire(self, paced: Limit, *within: Limit) -> None:
        return None


class _SlotLimiter:
    max_wait_seconds = 30.0
    max_probe = 200

    def __init__(self, scope: str, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.scope = scope
        self.clock = clock
        self.sleep = sleep

    def _claim(self, bucket: str, slot: int) -> bool:
        raise NotImplementedError

    def acquire(self, paced: Limit, *within: Limit) -> None:
        now = self.clock()
        rate = paced.per_second * PACED_SAFETY
        offset = paced.phase / rate
        # The first slot that has not started yet: claiming the current one late in its width would let the next
        # request follow almost at once, and Billbee would count both in one second.
        first = math.ceil((now + LEAD_SECONDS - offset) * rate - 1e-9)
        for candidate in range(first, first + self.max_probe):
            start = candidate / rate + offset
            if start - now > self.max_wait_seconds:
                break
            if not self._claim(paced.bucket, candidate):
                continue
            # Going out later than the slot's start would eat the paced slack, so the request needs a place under
            # each wider limit right at its start; where one has none, this slot is given up and a later one tried.
            if all(self._claim_place(wide, start) for wide in within):
                wait = start - self.clock()
                if wait > 0:
                    self.sleep(wait)
                return
        raise self._no_slot(paced)

    def _claim_place(self, limit: Limit, at: float) -> bool:
        return self._claim(limit.bucket, math.floor(at * limit.per_second * WINDOW_SAFETY))

    def _no_slot(self, limit: Limit) -> TransientError:
        wait = f"{self.max_wait_seconds:.0f} s"
        return TransientError("ratelimit", f"no free request slot for {limit.bucket} within {wait}")


class LocalRateLimiter(_SlotLimiter):
    """In-process slots (tests, single-process runs)."""

    def __init__(
        self, scope: str = "local", clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__(scope, clock, sleep)
        self._taken: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def _claim(self, bucket: str, slot: int) -> bool:
        with self._lock:
            if (bucket, slot) in self._taken:
                return False
            self._taken.add((bucket, slot))
            return True


class DynamoRateLimiter(_SlotLimiter):
    """Slots as items ``RATE#<scope>`` / ``<bucket>#<slot>`` in the connector table, expiring by TTL."""

    def __init__(
        self,
        table: Any,
        scope: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(scope, clock, sleep)
        self.table = table

    def _claim(self, bucket: str, slot: int) -> bool:
        try:
            self.table.put_item(
                Item={"PK": f"RATE#{self.scope}", "SK": f"{bucket}#{slot}", "expiresAt": int(self.clock()) + 120},
                ConditionExpression="attribute_not_exists(PK)",
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
