"""The DynamoDB store on moto: conditional creates, optimistic locking, export leases, the state index (GSI1) with
paging, and exclusive contact claims. Concurrency tests use a separate boto3 session per worker, as two Lambda
containers would."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support import FakeClock, new_table

from connector.store.dynamo import GSI, ConflictError, Store
from connector.store.records import ExportState, OrderRecord

LEASE = 150


def new_store(aws: Any, epoch: Callable[[], float] | None = None) -> Store:
    return Store(new_table(aws), epoch=epoch or FakeClock(1_800_000_000.0))


class Container:
    """One worker's table for the race tests, with DynamoDB's guarantees that moto's server lacks.

    moto checks a ConditionExpression and then writes without a lock, so two truly simultaneous conditional puts can
    both pass there (seen under load). DynamoDB applies each conditional write atomically; one lock shared by the
    racing containers stands in for that. The conditions are still evaluated by moto, so a store that wrote without
    them would still be caught. ``read_barrier`` makes every racer finish its read before any of them writes, the
    interleaving that breaks a read-modify-write without a version check.
    """

    def __init__(self, table: Any, atomic: threading.Lock, read_barrier: threading.Barrier | None = None) -> None:
        self._table = table
        self._atomic = atomic
        self.read_barrier = read_barrier

    def get_item(self, **kwargs: Any) -> Any:
        result = self._table.get_item(**kwargs)
        if self.read_barrier is not None:
            self.read_barrier.wait(timeout=10)
        return result

    def put_item(self, **kwargs: Any) -> Any:
        with self._atomic:
            return self._table.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def racing_stores(aws: Any, count: int = 2) -> list[Store]:
    atomic = threading.Lock()
    return [Store(Container(new_table(aws), atomic), epoch=FakeClock(1_800_000_000.0)) for _ in range(count)]


def record(connection_id: str, order_id: int, state: ExportState = ExportState.PENDING) -> OrderRecord:
    return OrderRecord(
        connection_id=connection_id,
        order_id=order_id,
        state=state,
        order={"BillBeeOrderId": order_id, "InvoiceNumber": 1000 + order_id},
        invoice_number=f"RE-{1000 + order_id}",
    )


def run_together(*workers: Callable[[], Any]) -> list[Any]:
    """Start the workers at the same moment in threads; their results in order (exceptions re-raised)."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


# -- creating and saving ---------------------------------------------------------------------------------------------


def test_an_order_record_is_created_only_once(aws: Any) -> None:
    store = new_store(aws)
    first = record("create-once", 1)
    assert store.create_order(first) is True
    second = record("create-once", 1, ExportState.SKIPPED)
    second.reason = "a concurrent poll"
    assert store.create_order(second) is False
    stored = store.get_order("create-once", 1)
    assert stored is not None
    assert (stored.state, stored.reason, stored.version) == (ExportState.PENDING, None, 1)  # the first one stands


def test_concurrent_creates_of_one_order_let_exactly_one_win(aws: Any) -> None:
    stores = racing_stores(aws)
    for order_id in range(1, 6):
        results = run_together(*(lambda s=s, o=order_id: s.create_order(record("create-race", o)) for s in stores))
        assert sorted(results) == [False, True]


def test_saving_a_stale_copy_raises_conflict_and_keeps_the_newer_write(aws: Any) -> None:
    store = new_store(aws)
    store.create_order(record("stale", 7))
    mine = store.get_order("stale", 7)
    theirs = store.get_order("stale", 7)
    assert mine is not None and theirs is not None
    theirs.reason = "written by the other worker"
    store.save(theirs)
    mine.reason = "written with an old version"
    with pytest.raises(ConflictError):
        store.save(mine)
    assert mine.version == 1  # unchanged, so the caller can re-read and retry
    stored = store.get_order("stale", 7)
    assert stored is not None and (stored.reason, stored.version) == ("written by the other worker", 2)


def test_a_save_by_a_worker_without_the_lease_is_refused(aws: Any) -> None:
    store = new_store(aws)
    store.create_order(record("lease-owner", 8))
    claimed = store.claim("lease-owner", 8, "worker-a", LEASE)
    assert claimed is not None
    impostor = store.get_order("lease-owner", 8)
    assert impostor is not None
    impostor.state = ExportState.EXPORTED
    with pytest.raises(ConflictError):
        store.save(impostor, owner="worker-b")
    claimed.state = ExportState.EXPORTED
    store.save(claimed, owner="worker-a")
    stored = store.get_order("lease-owner", 8)
    assert stored is not None and stored.state is ExportState.EXPORTED


# -- claiming --------------------------------------------------------------------------------------------------------


def test_of_two_concurrent_claimers_only_one_gets_the_lease(aws: Any) -> None:
    """Both workers read the PENDING record before either writes: only the version check keeps one of them out."""
    stores = racing_stores(aws)
    for order_id in range(1, 6):
        stores[0].create_order(record("claim-race", order_id))
        barrier = threading.Barrier(len(stores))
        for store in stores:
            store.table.read_barrier = barrier
        results = run_together(
            functools.partial(stores[0].claim, "claim-race", order_id, "worker-a", LEASE),
            functools.partial(stores[1].claim, "claim-race", order_id, "worker-b", LEASE),
        )
        for store in stores:
            store.table.read_barrier = None
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, order_id
        stored = stores[0].get_order("claim-race", order_id)
        assert stored is not None
        assert stored.state is ExportState.EXPORTING
        assert stored.lease_owner == winners[0].lease_owner
        assert stored.attempts == 1


def test_a_claimed_order_cannot_be_claimed_again_while_the_lease_runs(aws: Any) -> None:
    epoch = FakeClock(1_800_000_000.0)
    store = new_store(aws, epoch)
    store.create_order(record("lease-runs", 1))
    assert store.claim("lease-runs", 1, "worker-a", LEASE) is not None
    epoch.now += LEASE - 1
    assert store.claim("lease-runs", 1, "worker-b", LEASE) is None


def test_an_expired_exporting_lease_can_be_claimed_again(aws: Any) -> None:
    epoch = FakeClock(1_800_000_000.0)
    store = new_store(aws, epoch)
    store.create_order(record("lease-expired", 1))
    dead_worker = store.claim("lease-expired", 1, "worker-a", LEASE)
    assert dead_worker is not None
    epoch.now += LEASE + 1  # worker-a died mid-export
    taken_over = store.claim("lease-expired", 1, "worker-b", LEASE)
    assert taken_over is not None
    assert (taken_over.lease_owner, taken_over.attempts) == ("worker-b", 2)
    assert taken_over.lease_until == int(epoch.now) + LEASE
    dead_worker.state = ExportState.EXPORTED  # the old worker wakes up: its write must not land
    with pytest.raises(ConflictError):
        store.save(dead_worker, owner="worker-a")


@pytest.mark.parametrize("state", [ExportState.EXPORTED, ExportState.SKIPPED, ExportState.NEEDS_ATTENTION])
def test_records_that_are_done_or_need_a_person_are_not_claimable(aws: Any, state: ExportState) -> None:
    store = new_store(aws)
    store.create_order(record(f"not-claimable-{state.value.lower()}", 1, state))
    assert store.claim(f"not-claimable-{state.value.lower()}", 1, "worker-a", LEASE) is None


def test_a_failed_record_is_claimable_for_a_retry(aws: Any) -> None:
    store = new_store(aws)
    store.create_order(record("failed-retry", 1, ExportState.FAILED))
    claimed = store.claim("failed-retry", 1, "worker-a", LEASE)
    assert claimed is not None and claimed.state is ExportState.EXPORTING


def test_claiming_an_unknown_order_gives_nothing(aws: Any) -> None:
    assert new_store(aws).claim("unknown-order", 404, "worker-a", LEASE) is None


# -- the state index -------------------------------------------------------------------------------------------------


class QuerySpy:
    """The table, recording the arguments of every query (to see that the state lookup goes through GSI1)."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self.queries: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> Any:
        self.queries.append(kwargs)
        return self._table.query(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def test_list_by_state_reads_the_state_index_page_by_page(aws: Any) -> None:
    spy = QuerySpy(new_table(aws))
    store = Store(spy, epoch=FakeClock(1_800_000_000.0))
    for order_id in range(1, 8):
        store.create_order(record("by-state", order_id, ExportState.PENDING))
    for order_id in range(8, 11):
        store.create_order(record("by-state", order_id, ExportState.FAILED))
    store.create_order(record("by-state-other-connection", 1, ExportState.PENDING))

    first, start = store.list_by_state("by-state", ExportState.PENDING, limit=3)
    assert len(first) == 3 and start is not None
    seen = [r.order_id for r in first]
    while start:
        page, start = store.list_by_state("by-state", ExportState.PENDING, limit=3, start_key=start)
        assert len(page) <= 3
        seen += [r.order_id for r in page]
    assert sorted(seen) == list(range(1, 8))  # every PENDING record once, no FAILED, no other connection's
    assert spy.queries and all(q["IndexName"] == GSI for q in spy.queries)
    assert spy.queries[1]["ExclusiveStartKey"]  # the second page continued where the first stopped
    assert sorted(r.order_id for r in store.all_by_state("by-state", ExportState.FAILED)) == [8, 9, 10]


def test_a_record_moves_between_states_in_the_index(aws: Any) -> None:
    store = new_store(aws)
    store.create_order(record("moves", 1))
    claimed = store.claim("moves", 1, "worker-a", LEASE)
    assert claimed is not None
    assert store.all_by_state("moves", ExportState.PENDING) == []
    assert [r.order_id for r in store.all_by_state("moves", ExportState.EXPORTING)] == [1]
    claimed.state = ExportState.EXPORTED
    store.save(claimed, owner="worker-a")
    assert store.all_by_state("moves", ExportState.EXPORTING) == []
    assert [r.order_id for r in store.all_by_state("moves", ExportState.EXPORTED)] == [1]


# -- contacts --------------------------------------------------------------------------------------------------------


def test_a_customers_contact_claim_is_exclusive_until_its_lease_ends(aws: Any) -> None:
    epoch = FakeClock(1_800_000_000.0)
    store = new_store(aws, epoch)
    assert store.claim_contact("contacts", 42, "worker-a", 60) is True
    assert store.claim_contact("contacts", 42, "worker-b", 60) is False
    assert store.claim_contact("contacts", 42, "worker-a", 60) is True  # the holder may renew
    assert store.claim_contact("contacts", 43, "worker-b", 60) is True  # another customer is independent
    epoch.now += 61  # worker-a died before creating the contact
    assert store.claim_contact("contacts", 42, "worker-b", 60) is True


def test_once_the_contact_is_saved_nobody_claims_it_again(aws: Any) -> None:
    epoch = FakeClock(1_800_000_000.0)
    store = new_store(aws, epoch)
    assert store.claim_contact("contact-saved", 7, "worker-a", 60) is True
    store.save_contact("contact-saved", 7, "138000001")
    epoch.now += 3600
    assert store.claim_contact("contact-saved", 7, "worker-b", 60) is False
    assert store.claim_contact("contact-saved", 7, "worker-a", 60) is False
    mapping = store.get_contact("contact-saved", 7)
    assert mapping is not None and mapping["contactId"] == "138000001"


def test_concurrent_contact_claims_let_exactly_one_worker_create_the_contact(aws: Any) -> None:
    stores = racing_stores(aws)
    for customer_id in range(1, 6):
        results = run_together(
            functools.partial(stores[0].claim_contact, "contact-race", customer_id, "worker-a", 60),
            functools.partial(stores[1].claim_contact, "contact-race", customer_id, "worker-b", 60),
        )
        assert sorted(results) == [False, True]
