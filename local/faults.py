"""Switchable faults for the sandboxes.

A fault plan is a list of rules; each request a sandbox serves asks the plan whether a fault applies to it. The
command line form (``--faults SPEC``) is a comma-separated list of ``api.operation=kind[*times][@after]``:

    sevdesk.save_voucher=saved500*1      the first saveVoucher is saved, then answered with HTTP 500
    billbee.add_tags=503*2@1             the 2nd and 3rd tag calls get HTTP 503
    billbee.*=429*5                      the next five Billbee calls of any operation get 429 + Retry-After
    sevdesk.book_amount=timeout          every bookAmount is applied but answered only after the client gave up

``times`` defaults to 1; ``*inf`` means always. ``after`` skips that many matching requests first.

Kinds:
- ``500``, ``502``, ``503``: the request is not applied, the server answers with that status and the API's error body;
- ``429``: not applied, answered 429 with ``Retry-After`` (seconds, ``retry_after`` of the rule);
- ``429bare``: not applied, answered 429 without ``Retry-After`` (Billbee does this: ERRATA Billbee 5);
- ``timeout``: not applied; the server holds the request longer than the client's timeout;
- ``drop``: not applied; the connection is closed without an answer;
- ``saved500``: applied, then answered 500 (sevDesk does this: "a 400/500 may still have written the data");
- ``savedtimeout``: applied, but the answer comes only after the client's timeout;
- ``saveddrop``: applied, then the connection is closed without an answer;
- ``latecommit``: held past the client's timeout and closed without an answer; the write is applied ``delay``
  seconds (default 3) after it arrived, as a server still working on a request the client gave up on would.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

KINDS = frozenset(
    {"500", "502", "503", "429", "429bare", "timeout", "drop", "saved500", "savedtimeout", "saveddrop", "latecommit"}
)
APPLIED_KINDS = frozenset({"saved500", "savedtimeout", "saveddrop"})
LATE_KINDS = frozenset({"latecommit"})  # applied, but only later
DEFAULT_LATE_COMMIT_SECONDS = 3.0


class FaultSpecError(ValueError):
    """A --faults SPEC that cannot be parsed."""


@dataclass
class FaultRule:
    api: str
    operation: str
    kind: str
    times: float = 1
    after: int = 0
    retry_after: int = 1
    delay: float = DEFAULT_LATE_COMMIT_SECONDS  # latecommit: seconds after the request until the write is applied
    probability: float = 1.0
    seen: int = 0
    fired: int = 0

    def matches(self, api: str, operation: str) -> bool:
        return self.api in (api, "*") and self.operation in (operation, "*")


@dataclass
class FaultPlan:
    """Thread-safe set of fault rules shared by a sandbox's request handlers."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def fault_for(self, api: str, operation: str) -> FaultRule | None:
        """The rule that fires for this request, if any (counts the request against every matching rule)."""
        with self._lock:
            chosen: FaultRule | None = None
            for rule in self.rules:
                if not rule.matches(api, operation):
                    continue
                rule.seen += 1
                if chosen is not None or rule.seen <= rule.after or rule.fired >= rule.times:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                chosen = rule
            return chosen


def parse_fault_spec(spec: str | None) -> list[FaultRule]:
    rules: list[FaultRule] = []
    if not spec:
        return rules
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            target, action = item.split("=", 1)
            api, operation = target.split(".", 1)
        except ValueError as exc:
            raise FaultSpecError(f"fault {item!r}: expected api.operation=kind[*times][@after]") from exc
        after = 0
        if "@" in action:
            action, after_text = action.split("@", 1)
            after = _int(after_text, item)
        times: float = 1
        if "*" in action:
            action, times_text = action.split("*", 1)
            times = float("inf") if times_text in ("inf", "always") else _int(times_text, item)
        if action not in KINDS:
            raise FaultSpecError(f"fault {item!r}: unknown kind {action!r}; known: {', '.join(sorted(KINDS))}")
        if api not in ("billbee", "sevdesk", "*"):
            raise FaultSpecError(f"fault {item!r}: api must be billbee, sevdesk or *")
        rules.append(FaultRule(api=api, operation=operation, kind=action, times=times, after=after))
    return rules


def _int(text: str, item: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise FaultSpecError(f"fault {item!r}: {text!r} is not a whole number") from exc
    if value < 0:
        raise FaultSpecError(f"fault {item!r}: {text!r} must not be negative")
    return value
