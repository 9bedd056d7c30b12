"""An unfinished reconciliation kept in the connector table between two requests of the HTTP API.

- the job, ``CONN#<id>`` / ``RECONCILIATION#<first>#<last>``: ``version``, ``parts``, ``progress``, the lease
  (``leaseOwner``, ``leaseUntil``), ``expiresAt``;
- its data, ``CONN#<id>`` / ``RECONCILIATION#<first>#<last>#<version>#<n>``: ``data``, part n of the zlib-compressed
  ``JobState`` JSON.

A request takes the job's lease (a conditional put; the ApiFunction may get, put, delete and query, nothing else), reads
on, writes the data under the next version and then the job item, conditional on still holding the lease: two
requests for one period never both read the same pages, and a request that lost its lease never overwrites newer
data. The data is split in parts below DynamoDB's 400 KB per item (5,000 invoices are about 150 KB compressed). The job
holds numbers, dates, amounts and ids, never names or credentials, and expires by the table's TTL (``expiresAt``) an
hour after its last request; a finished job is deleted once its report is answered.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from connector.reconciliation.job import JobState
from connector.reconciliation.report import Period
from connector.store.dynamo import conn_pk

PART_BYTES = 300 * 1024
KEEP_SECONDS = 3600


def _job_sk(period: Period) -> str:
    return f"RECONCILIATION#{period.first.isoformat()}#{period.last.isoformat()}"


@dataclass(frozen=True)
class Claim:
    state: JobState | None  # None: no job yet (or it is someone else's right now)
    busy: bool  # another request holds the lease
    progress: dict[str, Any] | None = None


class JobStore:
    def __init__(self, table: Any, *, epoch: Callable[[], float] = time.time) -> None:
        self.table = table
        self.epoch = epoch
        self._conditional = table.meta.client.exceptions.ConditionalCheckFailedException

    def _job(self, connection_id: str, period: Period) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"PK": conn_pk(connection_id), "SK": _job_sk(period)},
                                   ConsistentRead=True).get("Item")
        return None if item is None else dict(item)

    def claim(self, connection_id: str, period: Period, owner: str, lease_seconds: float) -> Claim:
        """Take the job's lease (creating the job), or say who holds it; returns what was read so far."""
        now = self.epoch()
        job = self._job(connection_id, period)
        if job is not None and float(job.get("leaseUntil") or 0) > now and job.get("leaseOwner") != owner:
            return Claim(None, True, _progress(job))
        version = int(job["version"]) if job is not None else 0
        item = {
            **(job or {"PK": conn_pk(connection_id), "SK": _job_sk(period), "version": 0, "parts": 0}),
            "leaseOwner": owner,
            "leaseUntil": int(now + lease_seconds),
            "expiresAt": int(now + KEEP_SECONDS),
        }
        condition = "attribute_not_exists(PK)" if job is None else "version = :version AND leaseUntil <= :now"
        values: dict[str, Any] = {} if job is None else {":version": version, ":now": int(now)}
        if job is not None and job.get("leaseOwner") == owner:
            condition, values = "version = :version AND leaseOwner = :owner", {":version": version, ":owner": owner}
        try:
            self.table.put_item(Item=item, ConditionExpression=condition,
                                **({"ExpressionAttributeValues": values} if values else {}))
        except self._conditional:
            return Claim(None, True, _progress(self._job(connection_id, period) or {}))
        if version == 0:
            return Claim(None, False)
        return Claim(self._load(connection_id, period, version, int(job["parts"] if job else 0)), False)

    def _load(self, connection_id: str, period: Period, version: int, parts: int) -> JobState | None:
        prefix = f"{_job_sk(period)}#{version}#"
        items = self.table.query(
            KeyConditionExpression=Key("PK").eq(conn_pk(connection_id)) & Key("SK").begins_with(prefix),
            ConsistentRead=True,
        ).get("Items", [])
        chunks = sorted((int(str(i["SK"]).rsplit("#", 1)[1]), _bytes(i["data"])) for i in items)
        if len(chunks) != parts:
            return None  # a part expired or was never written: start over rather than report on half the data
        return JobState.from_json(json.loads(zlib.decompress(b"".join(chunk for _, chunk in chunks))))

    def save(self, connection_id: str, period: Period, state: JobState, owner: str) -> bool:
        """Keep ``state`` as the job's next version and give up the lease; False: the lease was lost meanwhile."""
        job = self._job(connection_id, period)
        if job is None or job.get("leaseOwner") != owner:
            return False
        version = int(job["version"]) + 1
        data = zlib.compress(json.dumps(state.to_json(), separators=(",", ":")).encode(), 6)
        chunks = [data[i:i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
        expires = int(self.epoch() + KEEP_SECONDS)
        for number, chunk in enumerate(chunks):
            self.table.put_item(Item={"PK": conn_pk(connection_id), "SK": f"{_job_sk(period)}#{version}#{number}",
                                      "data": chunk, "expiresAt": expires})
        item = {**job, "version": version, "parts": len(chunks), "progress": json.dumps(state.progress()),
                "leaseOwner": None, "leaseUntil": 0, "expiresAt": expires}
        try:
            self.table.put_item(Item=item, ConditionExpression="leaseOwner = :owner",
                                ExpressionAttributeValues={":owner": owner})
        except self._conditional:
            self._delete_parts(connection_id, period, version)
            return False
        self._delete_parts(connection_id, period, version - 1)
        return True

    def release(self, connection_id: str, period: Period, owner: str) -> None:
        """Give up the lease without a new version (nothing new was read)."""
        job = self._job(connection_id, period)
        if job is None or job.get("leaseOwner") != owner:
            return
        try:
            self.table.put_item(Item={**job, "leaseOwner": None, "leaseUntil": 0},
                                ConditionExpression="leaseOwner = :owner",
                                ExpressionAttributeValues={":owner": owner})
        except self._conditional:
            return

    def finish(self, connection_id: str, period: Period, owner: str) -> None:
        """The report was answered: the job and its data go."""
        job = self._job(connection_id, period)
        if job is None or job.get("leaseOwner") != owner:
            return
        try:
            self.table.delete_item(Key={"PK": conn_pk(connection_id), "SK": _job_sk(period)},
                                   ConditionExpression="leaseOwner = :owner",
                                   ExpressionAttributeValues={":owner": owner})
        except self._conditional:
            return
        self._delete_parts(connection_id, period, int(job["version"]))

    def _delete_parts(self, connection_id: str, period: Period, version: int) -> None:
        if version <= 0:
            return
        prefix = f"{_job_sk(period)}#{version}#"
        items = self.table.query(
            KeyConditionExpression=Key("PK").eq(conn_pk(connection_id)) & Key("SK").begins_with(prefix),
            ProjectionExpression="PK, SK",
        ).get("Items", [])
        for item in items:
            self.table.delete_item(Key={"PK": item["PK"], "SK": item["SK"]})


def _bytes(value: Any) -> bytes:
    return bytes(value.value if hasattr(value, "value") else value)


def _progress(job: dict[str, Any]) -> dict[str, Any] | None:
    text = job.get("progress")
    return json.loads(text) if isinstance(text, str) else None
