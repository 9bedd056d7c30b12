"""DynamoDB access for the one connector table (architecture.md §3).

| item                | PK / SK                                 | GSI1PK / GSI1SK                              |
|---------------------|-----------------------------------------|----------------------------------------------|
| connection settings | CONN#<id> / SETTINGS                    | CONNECTIONS / <id>                           |
| connection status   | CONN#<id> / STATUS                      |                                              |
| poll cursor         | CONN#<id> / CURSOR                      |                                              |
| order export record | CONN#<id> / ORDER#<BillBeeOrderId>      | CONN#<id>#STATE#<state> / <updatedAt>#<id>   |
| contact mapping     | CONN#<id> / CUSTOMER#<Billbee cust. id> |                                              |
| rate-limit slot     | RATE#<id> / <bucket>#<slot>             | (expires by TTL)                             |

Every write that changes an export record is conditional: on its version (optimistic locking) or on the lease of
the worker that claimed it, so two workers never both act on one order.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from connector.settings.model import ConnectionSettings
from connector.store.records import CLAIMABLE, ExportState, OrderRecord, Steps

GSI = "GSI1"
BATCH_GET = 100  # DynamoDB's limit of keys per BatchGetItem
BATCH_RETRIES = 8
CONNECTIONS_PK = "CONNECTIONS"
# DynamoDB items hold at most 400 KB. The order and invoice JSON of a record is compressed above this size (an order
# with a thousand lines is ~300 KB of JSON, ~30 KB compressed); fields the connector does not use are not stored.
COMPRESS_ABOVE = 32 * 1024


def _packed(name: str, value: Any) -> dict[str, Any]:
    """``<name>Json`` as text, or ``<name>Z``: zlib-compressed JSON (a Binary attribute) when it is large."""
    text = json.dumps(value, sort_keys=True)
    if len(text) <= COMPRESS_ABOVE:
        return {f"{name}Json": text}
    return {f"{name}Z": zlib.compress(text.encode(), 6)}


def _unpack(item: dict[str, Any], name: str) -> Any:
    packed = item.get(f"{name}Z")
    if packed is not None:
        raw = packed.value if hasattr(packed, "value") else packed
        return json.loads(zlib.decompress(bytes(raw)))
    text = item.get(f"{name}Json")
    return json.loads(text) if text else None


class ConflictError(Exception):
    """A conditional write lost: another worker changed the record first."""


class InvalidPageToken(ValueError):
    """A paging token this store did not issue for this list."""


MAX_ORDER_BYTES = 300 * 1024  # what an order's data may take in a record, compressed (the item limit is 400 KB)


def fitting(record: OrderRecord) -> OrderRecord:
    """The record with its order and invoice data in a form that fits a DynamoDB item: compressed when large, and
    when even that is too much (an order of thousands of lines), only the order's id and totals are kept with a note:
    the export reads the order from Billbee again anyway, and the reason says why it waits for a person."""
    size = sum(len(v) for k, v in _packed("order", record.order).items()) + (
        0 if record.invoice is None else sum(len(v) for v in _packed("invoice", record.invoice).values())
    )
    if size <= MAX_ORDER_BYTES:
        return record
    keep = ("BillBeeOrderId", "OrderNumber", "State", "InvoiceNumber", "InvoiceNumberPrefix", "InvoiceDate",
            "TotalCost", "Currency")
    record.order = {k: record.order.get(k) for k in keep if k in record.order}
    record.invoice = None
    record.state = ExportState.NEEDS_ATTENTION
    record.reason = (
        f"the order's data takes {size // 1024} KB even compressed, more than an export record can hold; book this "
        "invoice by hand and mark the order as handled"
    )
    return record


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def conn_pk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


def order_sk(order_id: int) -> str:
    return f"ORDER#{order_id}"


def _state_pk(connection_id: str, state: ExportState) -> str:
    return f"{conn_pk(connection_id)}#STATE#{state.value}"


def _decode_page_token(token: str, connection_id: str, state: ExportState) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidPageToken("not a paging token") from exc
    if not isinstance(key, dict) or set(key) != {"PK", "SK", "GSI1PK", "GSI1SK"}:
        raise InvalidPageToken("not a paging token of this list")
    if not all(isinstance(v, str) for v in key.values()):
        raise InvalidPageToken("not a paging token of this list")
    if key["PK"] != conn_pk(connection_id) or key["GSI1PK"] != _state_pk(connection_id, state):
        raise InvalidPageToken("not a paging token of this list")
    return key


@dataclass
class ConnectionStatus:
    state: str = "OK"  # OK | ERROR
    reason: str | None = None
    since: str | None = None


@dataclass
class StoredConnection:
    settings: ConnectionSettings
    secret_id: str
    status: ConnectionStatus


class Store:
    def __init__(self, table: Any, *, clock: Callable[[], str] = utc_now, epoch: Callable[[], float] = time.time):
        self.table = table
        self.clock = clock
        self.epoch = epoch
        self._conditional = table.meta.client.exceptions.ConditionalCheckFailedException

    # -- connections ---------------------------------------------------------------------------------------------
    def put_connection(self, settings: ConnectionSettings, secret_id: str) -> None:
        self.table.put_item(
            Item={
                "PK": conn_pk(settings.connection_id),
                "SK": "SETTINGS",
                "GSI1PK": CONNECTIONS_PK,
                "GSI1SK": settings.connection_id,
                "settings": json.dumps(settings.public_dict(), sort_keys=True),
                "secretId": secret_id,
                "updatedAt": self.clock(),
            }
        )

    def get_connection(self, connection_id: str) -> StoredConnection | None:
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "SETTINGS"}, ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            return None
        return StoredConnection(
            settings=ConnectionSettings.model_validate(json.loads(item["settings"])),
            secret_id=item["secretId"],
            status=self.get_connection_status(connection_id),
        )

    def list_connections(self) -> list[StoredConnection]:
        items = self._query_all(IndexName=GSI, KeyConditionExpression=Key("GSI1PK").eq(CONNECTIONS_PK))
        connections = []
        for item in items:
            found = self.get_connection(item["GSI1SK"])
            if found is not None:
                connections.append(found)
        return connections

    def delete_connection(self, connection_id: str) -> None:
        for sk in ("SETTINGS", "STATUS", "CURSOR", "LISTING"):
            self.table.delete_item(Key={"PK": conn_pk(connection_id), "SK": sk})

    def get_connection_status(self, connection_id: str) -> ConnectionStatus:
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "STATUS"}, ConsistentRead=True).get("Item")
        if item is None:
            return ConnectionStatus()
        return ConnectionStatus(item.get("state", "OK"), item.get("reason"), item.get("since"))

    def set_connection_status(self, connection_id: str, state: str, reason: str | None) -> None:
        current = self.get_connection_status(connection_id)
        since = current.since if current.state == state and current.since else self.clock()
        self.table.put_item(
            Item={"PK": conn_pk(connection_id), "SK": "STATUS", "state": state, "reason": reason, "since": since}
        )

    def set_cursor(self, connection_id: str, polled_at: str, summary: dict[str, Any]) -> None:
        """The last poll's outcome; ``okAt``: when a poll last finished, which the next one looks back from."""
        previous = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "CURSOR"}).get("Item") or {}
        # A poll that could not look up a credit note's order keeps the window open for the next one.
        # So does one that stopped its listing at its budget: the credit notes are looked for once it is complete.
        complete = (summary.get("status") == "OK" and summary.get("complete", True)
                    and not summary.get("creditNotesPending"))
        ok_at = polled_at if complete else previous.get("okAt")
        item = {"PK": conn_pk(connection_id), "SK": "CURSOR", "polledAt": polled_at, "summary": json.dumps(summary)}
        if ok_at:
            item["okAt"] = ok_at
        self.table.put_item(Item=item)

    def get_cursor(self, connection_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "CURSOR"}).get("Item")
        return None if item is None else {"polledAt": item["polledAt"], "summary": json.loads(item["summary"])}

    def last_ok_poll(self, connection_id: str) -> str | None:
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "CURSOR"}).get("Item") or {}
        return None if item.get("okAt") is None else str(item["okAt"])

    def get_listing(self, connection_id: str) -> dict[str, Any] | None:
        """Where an unfinished listing of the connection's orders stands (the poll continues it next time)."""
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "LISTING"}, ConsistentRead=True).get(
            "Item"
        )
        return None if item is None or not item.get("listing") else dict(json.loads(item["listing"]))

    def set_listing(self, connection_id: str, listing: dict[str, Any] | None) -> None:
        """None: the listing is complete (a put, not a delete: the poll may only write, never delete, items)."""
        item = {"PK": conn_pk(connection_id), "SK": "LISTING", "updatedAt": self.clock()}
        if listing is not None:
            item["listing"] = json.dumps(listing)
        self.table.put_item(Item=item)

    def get_open_cancellations(self, connection_id: str) -> set[int]:
        """Exported orders cancelled in Billbee without a credit note yet: the poll looks at each again every hour."""
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": "CANCELLED"}, ConsistentRead=True).get(
            "Item"
        ) or {}
        return {int(order_id) for order_id in item.get("orderIds") or []}

    def set_open_cancellations(self, connection_id: str, order_ids: set[int]) -> None:
        item = {"PK": conn_pk(connection_id), "SK": "CANCELLED", "updatedAt": self.clock(),
                "orderIds": sorted(order_ids)}
        self.table.put_item(Item=item)

    # -- order records -------------------------------------------------------------------------------------------
    def get_orders(self, connection_id: str, order_ids: Iterable[int]) -> dict[int, OrderRecord | None]:
        """Many records at once (``BatchGetItem``, 100 keys a request, strongly consistent); None where none is."""
        wanted = list(dict.fromkeys(order_ids))
        found: dict[int, OrderRecord | None] = dict.fromkeys(wanted)
        client = self.table.meta.client
        name = self.table.name
        for start in range(0, len(wanted), BATCH_GET):
            request: dict[str, Any] = {name: {
                # The table resource's client takes and gives plain values (boto3 injects the (de)serialiser).
                "Keys": [{"PK": conn_pk(connection_id), "SK": order_sk(i)} for i in wanted[start:start + BATCH_GET]],
                "ConsistentRead": True,
            }}
            for attempt in range(BATCH_RETRIES):
                answer = client.batch_get_item(RequestItems=request)
                for raw in answer.get("Responses", {}).get(name, []):
                    record = self._record(raw)
                    found[record.order_id] = record
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))  # DynamoDB's advice for unprocessed keys: back off
            else:
                raise RuntimeError(f"DynamoDB left keys unprocessed after {BATCH_RETRIES} tries")
        return found

    def get_order(self, connection_id: str, order_id: int) -> OrderRecord | None:
        item = self.table.get_item(
            Key={"PK": conn_pk(connection_id), "SK": order_sk(order_id)}, ConsistentRead=True
        ).get("Item")
        return None if item is None else self._record(item)

    def create_order(self, record: OrderRecord) -> bool:
        """Insert a new record; False if one exists already (a concurrent poll or manual export won)."""
        now = self.clock()
        record.created_at = record.created_at or now
        record.updated_at = now
        fitting(record)
        record.version = 1
        try:
            self.table.put_item(Item=self._item(record), ConditionExpression="attribute_not_exists(PK)")
        except self._conditional:
            return False
        return True

    def save(self, record: OrderRecord, *, owner: str | None = None) -> None:
        """Write the record if nobody changed it since it was read (and, for a worker, it still holds the lease)."""
        expected = record.version
        record.version = expected + 1
        record.updated_at = self.clock()
        fitting(record)
        condition = "#v = :expected"
        values: dict[str, Any] = {":expected": expected}
        if owner is not None:
            condition += " AND leaseOwner = :owner"
            values[":owner"] = owner
        try:
            self.table.put_item(
                Item=self._item(record),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues=values,
            )
        except self._conditional as exc:
            record.version = expected
            raise ConflictError(f"order {record.order_id} changed concurrently") from exc

    def claim(self, connection_id: str, order_id: int, owner: str, lease_seconds: int) -> OrderRecord | None:
        """Take the lease on a record that may be exported now; None if it is not claimable (done, or leased)."""
        record = self.get_order(connection_id, order_id)
        if record is None:
            return None
        now = int(self.epoch())
        lease_expired = record.state is ExportState.EXPORTING and record.lease_until < now
        if record.state not in CLAIMABLE and not lease_expired:
            return None
        record.state = ExportState.EXPORTING
        record.lease_owner = owner
        record.lease_until = now + lease_seconds
        record.attempts += 1
        try:
            self.save(record)
        except ConflictError:
            return None
        return record

    def list_by_state(
        self, connection_id: str, state: ExportState, *, limit: int = 100, start_key: dict[str, Any] | None = None
    ) -> tuple[list[OrderRecord], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "IndexName": GSI,
            "KeyConditionExpression": Key("GSI1PK").eq(_state_pk(connection_id, state)),
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        page = self.table.query(**kwargs)
        # GSI reads are eventually consistent: re-read (one batch) and drop records that have moved on.
        fresh = self.get_orders(connection_id, [int(item["orderId"]) for item in page.get("Items", [])])
        records = [r for r in fresh.values() if r is not None and r.state is state]
        return records, page.get("LastEvaluatedKey")

    def ids_by_state(self, connection_id: str, state: ExportState) -> list[int]:
        """The order ids the state index holds for a state (eventually consistent: re-read what you act on)."""
        kwargs: dict[str, Any] = {
            "IndexName": GSI,
            "KeyConditionExpression": Key("GSI1PK").eq(_state_pk(connection_id, state)),
            "ProjectionExpression": "orderId",
        }
        ids: list[int] = []
        while True:
            page = self.table.query(**kwargs)
            ids += [int(item["orderId"]) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return ids
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def page_by_state(
        self, connection_id: str, state: ExportState, *, limit: int, page_token: str | None
    ) -> tuple[list[OrderRecord], str | None]:
        """One page of a state's records for a caller outside (the HTTP API): the token is DynamoDB's key, checked
        before DynamoDB sees it, so a forged one cannot read another connection's records or fail the query."""
        start = _decode_page_token(page_token, connection_id, state) if page_token else None
        records, next_key = self.list_by_state(connection_id, state, limit=limit, start_key=start)
        token = None if not next_key else base64.urlsafe_b64encode(
            json.dumps(next_key, sort_keys=True).encode()).decode().rstrip("=")
        return records, token

    def count_by_state(self, connection_id: str) -> dict[str, int]:
        """How many records are in each state (counted on the state index, never a scan)."""
        counts: dict[str, int] = {}
        for state in ExportState:
            kwargs: dict[str, Any] = {"IndexName": GSI, "Select": "COUNT",
                                      "KeyConditionExpression": Key("GSI1PK").eq(_state_pk(connection_id, state))}
            total = 0
            while True:
                page = self.table.query(**kwargs)
                total += int(page.get("Count", 0))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            if total:
                counts[state.value] = total
        return counts

    def exported_since(self, connection_id: str, since: str) -> tuple[int, str | None]:
        """How many records became EXPORTED at or after ``since`` (an ISO time like ``clock()``'s) and the time of the
        oldest of them: the state index's sort key starts with the record's last change (a COUNT, never a scan)."""
        condition = Key("GSI1PK").eq(_state_pk(connection_id, ExportState.EXPORTED)) & Key("GSI1SK").gte(since)
        oldest = self.table.query(IndexName=GSI, KeyConditionExpression=condition, Limit=1).get("Items", [])
        if not oldest:
            return 0, None
        kwargs: dict[str, Any] = {"IndexName": GSI, "Select": "COUNT", "KeyConditionExpression": condition}
        total = 0
        while True:
            page = self.table.query(**kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total, str(oldest[0]["GSI1SK"]).split("#", 1)[0]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all_by_state(self, connection_id: str, state: ExportState) -> list[OrderRecord]:
        records: list[OrderRecord] = []
        start: dict[str, Any] | None = None
        while True:
            page, start = self.list_by_state(connection_id, state, limit=200, start_key=start)
            records += page
            if not start:
                return records

    def list_orders(self, connection_id: str) -> list[OrderRecord]:
        items = self._query_all(
            KeyConditionExpression=Key("PK").eq(conn_pk(connection_id)) & Key("SK").begins_with("ORDER#"),
            ConsistentRead=True,
        )
        return [self._record(i) for i in items]

    # -- credit notes ----------------------------------------------------------------------------------------------
    def link_credit_note(self, connection_id: str, original_id: int, credit_note_id: int) -> None:
        """Remember that a credit note (a Storno order) reverses this order's invoice."""
        self.table.put_item(Item={"PK": conn_pk(connection_id), "SK": f"CREDITNOTE#{original_id}#{credit_note_id}",
                                  "createdAt": self.clock()})

    def remember_credit_note(self, connection_id: str, invoice_number: str, order_id: int) -> None:
        """A credit note taken as a candidate, by its printed number: later polls need not look its order up."""
        self.table.put_item(Item={"PK": conn_pk(connection_id), "SK": f"CREDITNOTENO#{invoice_number}",
                                  "orderId": order_id, "createdAt": self.clock()})

    def credit_note_order(self, connection_id: str, invoice_number: str | None) -> int | None:
        if not invoice_number:
            return None
        item = self.table.get_item(
            Key={"PK": conn_pk(connection_id), "SK": f"CREDITNOTENO#{invoice_number}"}
        ).get("Item")
        return None if item is None else int(item["orderId"])

    def credit_notes_of(self, connection_id: str, original_id: int) -> list[int]:
        items = self._query_all(
            KeyConditionExpression=Key("PK").eq(conn_pk(connection_id))
            & Key("SK").begins_with(f"CREDITNOTE#{original_id}#"),
        )
        return [int(str(item["SK"]).rsplit("#", 1)[1]) for item in items]

    # -- contact mappings ----------------------------------------------------------------------------------------
    def get_contact(self, connection_id: str, customer_id: int) -> dict[str, Any] | None:
        item = self.table.get_item(
            Key={"PK": conn_pk(connection_id), "SK": f"CUSTOMER#{customer_id}"}, ConsistentRead=True
        ).get("Item")
        return None if item is None else dict(item)

    def claim_contact(self, connection_id: str, customer_id: int, owner: str, lease_seconds: int) -> bool:
        """Only one worker may create a customer's contact at a time: otherwise two would both find none and both
        create one (peers-and-user-pains.md §3.6). An update, so a lost create's marker on the item survives."""
        now = int(self.epoch())
        try:
            self.table.update_item(
                Key={"PK": conn_pk(connection_id), "SK": f"CUSTOMER#{customer_id}"},
                UpdateExpression="SET leaseOwner = :owner, leaseUntil = :until",
                ConditionExpression="attribute_not_exists(PK) OR (attribute_not_exists(contactId) AND "
                "(leaseUntil < :now OR leaseOwner = :owner))",
                ExpressionAttributeValues={":now": now, ":owner": owner, ":until": now + lease_seconds},
            )
        except self._conditional:
            return False
        return True

    def mark_contact_unknown(self, connection_id: str, customer_id: int, since: float, searches: int) -> None:
        """A contact create whose answer was lost: it may still commit, so nobody creates it again too soon."""
        self.table.update_item(
            Key={"PK": conn_pk(connection_id), "SK": f"CUSTOMER#{customer_id}"},
            UpdateExpression="SET unknownSince = :since, unknownSearches = :searches",
            ExpressionAttributeValues={":since": Decimal(str(since)), ":searches": searches},
        )

    def save_contact(
        self, connection_id: str, customer_id: int, contact_id: str, *, details_pending: bool = False
    ) -> None:
        """The mapping customer -> contact; ``details_pending``: a contact this connector created still needs its
        address and e-mail (added right after, or by the next export of the customer)."""
        self.table.put_item(
            Item={
                "PK": conn_pk(connection_id),
                "SK": f"CUSTOMER#{customer_id}",
                "contactId": contact_id,
                "detailsPending": details_pending,
                "createdAt": self.clock(),
            }
        )

    # -- helpers -------------------------------------------------------------------------------------------------
    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.table.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _item(record: OrderRecord) -> dict[str, Any]:
        return {
            "PK": conn_pk(record.connection_id),
            "SK": order_sk(record.order_id),
            "GSI1PK": _state_pk(record.connection_id, record.state),
            "GSI1SK": f"{record.updated_at}#{record.order_id}",
            "connectionId": record.connection_id,
            "orderId": record.order_id,
            "state": record.state.value,
            **_packed("order", record.order),
            **({} if record.invoice is None else _packed("invoice", record.invoice)),
            "invoiceNumber": record.invoice_number,
            "invoiceNumberSource": record.invoice_number_source,
            "steps": record.steps.to_item(),
            "attempts": record.attempts,
            "lastError": record.last_error,
            "reason": record.reason,
            "notes": list(record.notes),
            "setTag": record.set_tag,
            "origin": record.origin,
            "handled": record.handled,
            "creditNoteOf": None if record.credit_note_of is None else json.dumps(record.credit_note_of),
            "leaseOwner": record.lease_owner,
            "leaseUntil": record.lease_until,
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "enqueuedAt": record.enqueued_at,
            "dataHash": record.data_hash,
            "version": record.version,
        }

    @staticmethod
    def _record(item: dict[str, Any]) -> OrderRecord:
        return OrderRecord(
            connection_id=item["connectionId"],
            order_id=int(item["orderId"]),
            state=ExportState(item["state"]),
            order=_unpack(item, "order") or {},
            invoice=_unpack(item, "invoice"),
            invoice_number=item.get("invoiceNumber"),
            invoice_number_source=item.get("invoiceNumberSource"),
            steps=Steps.from_item(item.get("steps")),
            attempts=int(item.get("attempts") or 0),
            last_error=item.get("lastError"),
            reason=item.get("reason"),
            notes=list(item.get("notes") or []),
            set_tag=bool(item.get("setTag", True)),
            origin=item.get("origin") or "poll",
            handled=dict(item["handled"]) if item.get("handled") else None,
            credit_note_of=json.loads(item["creditNoteOf"]) if item.get("creditNoteOf") else None,
            lease_owner=item.get("leaseOwner"),
            lease_until=int(item.get("leaseUntil") or 0),
            created_at=item.get("createdAt") or "",
            updated_at=item.get("updatedAt") or "",
            enqueued_at=item.get("enqueuedAt"),
            data_hash=item.get("dataHash") or "",
            version=int(item.get("version") or 0),
        )
