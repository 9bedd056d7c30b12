"""Rate limits held across every concurrent function of one connection, not per process (architecture.md §5).

Billbee allows 2 requests/s per endpoint and 10/s per API key + user and answers 429 above that. Each request claims
a time slot (``1 / rate`` seconds wide) with a conditional write to DynamoDB; a worker that finds its slot taken
claims the next free one and waits for it. So all exporters and the poll of one connection share one schedule.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from connector.errors import TransientError

# Claim a little below the published limit: slot boundaries of different hosts are not perfectly aligned.
SAFETY = 0.9


class RateLimiter(Protocol):
    def acquire(self, bucket: str, per_second: float) -> None: ...


class NoRateLimit:
    def acquire(self, bucket: str, per_second: float) -> None:
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

    def acquire(self, bucket: str, per_second: float) -> None:
        rate = per_second * SAFETY
        now = self.clock()
        # The first slot that has not started yet: claiming the current one late in its width would let the next
        # request follow almost at once, and Billbee would count both in one second.
        slot = math.ceil(now * rate - 1e-9)
        for probe in range(self.max_probe):
            candidate = slot + probe
            start = candidate / rate
            if start - now > self.max_wait_seconds:
                break
            if self._claim(bucket, candidate):
                wait = start - self.clock()
                if wait > 0:
                    self.sleep(wait)
                return
        raise TransientError("ratelimit", f"no free request slot for {bucket} within {self.max_wait_seconds:.0f} s")


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
