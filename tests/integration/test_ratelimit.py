"""The shared request-slot limiter: spacing on a fake clock, exclusive slots in DynamoDB (moto) across "Lambda
containers", and a Billbee client that stays under the sandbox's 2/s-per-endpoint throttle."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support import new_table

import connector.billbee.client as billbee_client_module
from connector.billbee.client import BillbeeClient
from connector.errors import TransientError
from connector.ratelimit import PACED_SAFETY, DynamoRateLimiter, Limit, LocalRateLimiter
from connector.transport import send
from local.aws import LocalAws
from local.sample_shop import sample_orders
from local.sandbox.billbee import BillbeeSandbox

RATE = 2.0  # Billbee's per-endpoint limit
SLOT = 1 / (RATE * PACED_SAFETY)  # the spacing the limiter promises


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def send_times(
    limiter: LocalRateLimiter, fake: FakeTime, count: int, bucket: str = "billbee:list_orders"
) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire(Limit(bucket, RATE))
        times.append(fake.now)
    return times


def phase_start(phase: float, base_slot: int = 1800) -> float:
    """A clock value ``phase`` (0..1) of the way into a slot. "Early" is 0.01, not 0.0: exactly on a boundary, float
    rounding could put the clock at the very end of the previous slot."""
    return (base_slot + phase) * SLOT


# -- LocalRateLimiter on a fake clock --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start", [0.0, phase_start(0.75)], ids=["starting-on-a-slot-boundary", "starting-late-in-a-slot"]
)
def test_requests_of_one_bucket_are_spaced_one_slot_apart(start: float) -> None:
    """Whenever the first request comes, no two requests of a bucket go out closer than 1/(rate x 0.97) seconds;
    otherwise three requests fit into one second and Billbee answers the third with 429."""
    fake = FakeTime(start)
    times = send_times(LocalRateLimiter(clock=fake.clock, sleep=fake.sleep), fake, 5)
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= SLOT - 1e-9 for gap in gaps), gaps
    # Any three consecutive requests of one endpoint span more than Billbee's one-second window.
    assert all(times[i + 2] - times[i] > 1.0 for i in range(len(times) - 2))


def test_the_limiter_does_not_wait_longer_than_needed() -> None:
    fake = FakeTime(phase_start(0.01))
    times = send_times(LocalRateLimiter(clock=fake.clock, sleep=fake.sleep), fake, 4)
    assert times[-1] - times[0] <= 3 * SLOT + 1e-9  # four requests, three slots: no wait beyond that


def wait_of(limiter: LocalRateLimiter | DynamoRateLimiter, sleeps: list[float], bucket: str, rate: float) -> float:
    """How long one acquire waited (0 when it did not sleep), on a clock that does not move."""
    before = len(sleeps)
    limiter.acquire(Limit(bucket, rate))
    return sleeps[-1] if len(sleeps) > before else 0.0


def test_buckets_do_not_hold_each_other_up() -> None:
    frozen = phase_start(0.5)
    sleeps: list[float] = []
    limiter = LocalRateLimiter(clock=lambda: frozen, sleep=sleeps.append)
    others = [wait_of(limiter, sleeps, bucket, RATE) for bucket in ("billbee:list_orders", "billbee:get_order", "x")]
    assert max(others) - min(others) < 1e-9  # each endpoint got the same, first free slot of its own
    again = wait_of(limiter, sleeps, "billbee:list_orders", RATE)
    assert again > max(others) + SLOT / 4  # while the same endpoint has to wait for a later one


def test_no_free_slot_within_the_maximum_wait_is_a_transient_error() -> None:
    fake = FakeTime(phase_start(0.01))
    limiter = LocalRateLimiter(clock=lambda: fake.now, sleep=lambda seconds: None)  # the clock never moves
    granted = 0
    with pytest.raises(TransientError, match="no free request slot"):
        for _ in range(1000):
            limiter.acquire(Limit("billbee:list_orders", RATE))
            granted += 1
    # The slots of the next 30 s (58 at 1.94/s) were handed out, then the limiter gave up instead of waiting longer.
    assert abs(granted - limiter.max_wait_seconds * RATE * PACED_SAFETY) <= 1


# -- DynamoRateLimiter on moto ---------------------------------------------------------------------------------------


class AtomicPuts:
    """A container's table whose conditional writes are atomic, as DynamoDB's are.

    moto's server checks a ConditionExpression and then writes without holding a lock, so under load two truly
    simultaneous conditional puts can both pass there (seen in this suite). DynamoDB never lets that happen; one lock
    shared by all "containers" stands in for that guarantee. The condition itself is still evaluated by moto, so a
    limiter that wrote without it would still be caught.
    """

    def __init__(self, table: Any, lock: threading.Lock) -> None:
        self._table = table
        self._lock = lock

    def put_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._table.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def slot_items(aws: LocalAws, scope: str) -> list[dict[str, Any]]:
    table = new_table(aws)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": f"RATE#{scope}"},
    }
    while True:
        page = table.query(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_two_containers_sharing_the_table_never_claim_the_same_slot(aws: LocalAws) -> None:
    scope, per_container = "shared-slots", 8
    frozen = phase_start(0.01)
    waits: list[float] = []
    lock = threading.Lock()

    def record_wait(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    dynamodb_atomicity = threading.Lock()
    limiters = [
        DynamoRateLimiter(
            AtomicPuts(new_table(aws), dynamodb_atomicity), scope, clock=lambda: frozen, sleep=record_wait
        )
        for _ in range(2)
    ]
    barrier = threading.Barrier(len(limiters))
    errors: list[BaseException] = []

    def container(limiter: DynamoRateLimiter) -> None:
        try:
            barrier.wait()
            for _ in range(per_container):
                limiter.acquire(Limit("billbee:get_order", RATE))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=container, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = per_container * len(limiters)
    slots = sorted(int(item["SK"].rsplit("#", 1)[1]) for item in slot_items(aws, scope))
    assert slots == list(range(slots[0], slots[0] + total))  # one slot per request, none given twice or skipped
    assert abs(slots[0] - frozen * RATE * PACED_SAFETY) <= 1  # starting at the slot of "now" (or the next one)
    # Every request after the first waited for its own slot: the waits are all different.
    assert len({round(w, 6) for w in waits}) == len(waits) >= total - 1
    items = slot_items(aws, scope)
    assert all(int(item["expiresAt"]) >= int(frozen) + 60 for item in items)  # cleaned up by the table's TTL


def test_limiters_of_different_connections_do_not_share_slots(aws: LocalAws) -> None:
    frozen = phase_start(0.5)
    sleeps: list[float] = []
    one = DynamoRateLimiter(new_table(aws), "conn-one", clock=lambda: frozen, sleep=sleeps.append)
    two = DynamoRateLimiter(new_table(aws), "conn-two", clock=lambda: frozen, sleep=sleeps.append)
    first, second = wait_of(one, sleeps, "billbee:user", RATE), wait_of(two, sleeps, "billbee:user", RATE)
    # Each connection has its own Billbee account and its own schedule: both get the same first slot ...
    assert abs(first - second) < 1e-9
    # ... while a second request of the same connection waits for the next one.
    assert wait_of(one, sleeps, "billbee:user", RATE) > first + SLOT / 4


# -- the Billbee client behind the shared limiter, against the throttling sandbox ------------------------------------
#
# One virtual clock drives the sandbox's throttle windows, the limiter and the transport's Retry-After waits, so the
# outcome does not depend on how busy the machine is and nothing really sleeps. Requests still go over HTTP to the
# sandbox and slots are still claimed in DynamoDB (moto).

API_KEY, USERNAME, PASSWORD = "test-developer-key", "merchant@example.com", "test-api-password"


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    shared = FakeTime(0.0)  # one clock for all parties; used from one thread at a time
    monkeypatch.setattr(billbee_client_module, "send", functools.partial(send, sleep=shared.sleep))
    return shared


@pytest.fixture
def throttling_billbee(virtual_time: FakeTime) -> Iterator[BillbeeSandbox]:
    box = BillbeeSandbox(
        orders=sample_orders()[:3],
        rate_limits=True,  # 2/s per endpoint, 10/s per user, sliding windows
        clock=virtual_time.clock,
        api_key=API_KEY,
        username=USERNAME,
        password=PASSWORD,
    )
    box.start()
    try:
        yield box
    finally:
        box.stop()


def billbee_client(box: BillbeeSandbox, limiter: DynamoRateLimiter) -> BillbeeClient:
    return BillbeeClient(base_url=box.base_url, limiter=limiter, timeout=5.0, api_key=API_KEY, username=USERNAME,
                         password=PASSWORD)


@pytest.mark.parametrize("phase", [0.01, 0.75], ids=["first-request-early-in-a-slot", "first-request-late-in-a-slot"])
def test_the_client_behind_the_shared_limiter_is_never_throttled(
    aws: LocalAws, throttling_billbee: BillbeeSandbox, virtual_time: FakeTime, phase: float
) -> None:
    virtual_time.now = phase_start(phase, base_slot=1_000_000)
    limiter = DynamoRateLimiter(new_table(aws), f"phase-{phase}", clock=virtual_time.clock, sleep=virtual_time.sleep)
    client = billbee_client(throttling_billbee, limiter)
    for _ in range(5):
        client.list_orders(page=1, page_size=10)
    client.close()
    assert [e.status for e in throttling_billbee.exchanges] == [200] * 5


def test_two_containers_behind_one_shared_limiter_stay_under_billbees_limit(
    aws: LocalAws, throttling_billbee: BillbeeSandbox, virtual_time: FakeTime
) -> None:
    """Two export functions of one connection, taking turns: their limiters only know of each other through
    DynamoDB, and together they must stay under Billbee's per-endpoint limit."""
    virtual_time.now = phase_start(0.01, base_slot=2_000_000)
    clients = [
        billbee_client(
            throttling_billbee,
            DynamoRateLimiter(new_table(aws), "two-containers", clock=virtual_time.clock, sleep=virtual_time.sleep),
        )
        for _ in range(2)
    ]
    for _ in range(3):
        for client in clients:
            client.list_orders(page=1, page_size=10)
    for client in clients:
        client.close()
    assert [e.status for e in throttling_billbee.exchanges] == [200] * 6
    # Without shared slots each container would keep its own schedule (six requests in about two slots of time);
    # with them the six requests take turns over five slots.
    assert virtual_time.now - phase_start(0.01, base_slot=2_000_000) > 4 * SLOT


# -- the limits scaled K times faster (BILLBEE_RATE_SCALE, the sandbox's rate_scale) ---------------------------------


def test_a_scaled_sandbox_keeps_the_shape_of_billbees_limits_k_times_faster(
    aws: LocalAws, virtual_time: FakeTime
) -> None:
    """K = 10: the third request within a tenth of a second is refused with Retry-After in tenths of a second, and a
    client scaled alike, behind the shared limiter, is never refused."""
    box = BillbeeSandbox(orders=sample_orders()[:3], rate_scale=10.0, clock=virtual_time.clock, api_key=API_KEY,
                         username=USERNAME, password=PASSWORD)
    box.start()
    try:
        virtual_time.now = 5_000.0
        bare = BillbeeClient(base_url=box.base_url, timeout=5.0, api_key=API_KEY, username=USERNAME,
                             password=PASSWORD)
        for _ in range(3):  # no limiter, no time passing: the third is over "2 per 0.1 s"
            bare.list_orders(page=1, page_size=10)
        bare.close()
        refused = [e for e in box.exchanges if e.status == 429]
        assert len(refused) == 1
        assert refused[0].response_headers.get("Retry-After") == "0.1"
        assert refused[0].response_body == "API calls quota exceeded! maximum admitted 2 per Second."
        assert box.throttled["list_orders"] == 1

        virtual_time.now += 1.0  # the unpaced requests out of the window
        limiter = DynamoRateLimiter(new_table(aws), "scaled", clock=virtual_time.clock, sleep=virtual_time.sleep)
        scaled = BillbeeClient(base_url=box.base_url, limiter=limiter, timeout=5.0, api_key=API_KEY,
                               username=USERNAME, password=PASSWORD, rate_scale=10.0)
        before, started = len(box.exchanges), virtual_time.now
        for _ in range(10):
            scaled.list_orders(page=1, page_size=10)
        scaled.close()
        assert [e.status for e in box.exchanges[before:]] == [200] * 10
        # Ten requests over nine slots of 1 / (20 x 0.98) s: about 0.46 s, not the 4.6 s of the real limits.
        assert 9 / (20 * PACED_SAFETY) - 1e-6 <= virtual_time.now - started < 0.6
    finally:
        box.stop()
