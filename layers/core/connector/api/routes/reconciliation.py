"""The reconciliation report of a period: Billbee's invoices and credit notes against sevDesk's revenue vouchers
(docs/reconciliation.md), as JSON or CSV.

A month with thousands of invoices takes longer to read than one request may last (API Gateway ends it at 30 s): the
request reads for ``RECONCILIATION_SECONDS`` (default 15), keeps what it read in the table and answers 202 with its
progress and ``Retry-After``; the same request again continues, and the one that finishes answers the report (200).
A small period is answered by the first request.

The report is gzip-compressed for a client that accepts it (``Accept-Encoding: gzip``; ``curl --compressed``): Lambda
answers at most 6 MB, and 5,000 invoices of two rates are about 3.9 MB of JSON (1.4 MB of CSV) uncompressed.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from connector.api.context import ApiContext, new_router
from connector.api.models import (
    ConnectionIdPath,
    ErrorBody,
    Problem,
    ReconciliationPeriod,
    ReconciliationReport,
    ReconciliationRunning,
)
from connector.api.problems import ERROR_TEXT, JSON, ApiProblem
from connector.errors import ApiError
from connector.pipeline.connection import BROKEN, broken_reason, interactive_clients
from connector.reconciliation.job import JobState, ReconciliationJob
from connector.reconciliation.jobs import JobStore
from connector.reconciliation.records import Records
from connector.reconciliation.render import report_csv, report_dict
from connector.reconciliation.report import EARLIEST_DAY, LATEST_DAY, MAX_PERIOD_DAYS, Period

CSV = "text/csv"
DEFAULT_BUDGET_SECONDS = 15.0  # reading per request; the rest of API Gateway's 30 s is for the slowest last call
LEASE_MARGIN_SECONDS = 15.0


def time_budget() -> float:
    return float(os.environ.get("RECONCILIATION_SECONDS") or DEFAULT_BUDGET_SECONDS)


def _documented() -> dict[int, Any]:
    error = {JSON: {"model": ErrorBody}}
    return {
        200: {"description": "The report: every line and the totals per tax rule and rate",
              "content": {JSON: {"model": ReconciliationReport},
                          CSV: {"schema": {"type": "string", "description": "one row per line and rate, then "
                                                                               "the totals"}}}},
        202: {"description": "Still reading: send the same request again after Retry-After seconds",
              "content": {JSON: {"model": ReconciliationRunning}}},
        400: {"description": ERROR_TEXT[400], "content": error},
        401: {"description": ERROR_TEXT[401], "content": error},
        404: {"description": ERROR_TEXT[404], "content": error},
        502: {"description": ERROR_TEXT[502], "content": error},
    }


def reconciliation_router(ctx: ApiContext) -> APIGatewayHttpRouter:
    router = new_router()

    @router.get(
        "/connections/<connectionId>/reconciliation",
        operation_id="getReconciliation",
        summary="Reconcile a period: Billbee's invoices and credit notes against sevDesk's revenue vouchers",
        description=(
            "Every Billbee invoice and credit note dated in the period (amounts recomputed from positions and fees) "
            "and every sevDesk revenue voucher dated in it (amounts from its positions), matched by invoice number "
            "(the voucher's description). Each line is `matched`, `open` (not paid although payments are "
            "reconciled in Billbee), `different` (gross per rate, tax rule, or dated in another period), `missing` "
            "(with the export record's state and reason) or `extra` (an unknown number, or a second voucher with "
            "one). Totals per tax rule and rate on both sides, and the difference. Read only. `format=csv` or "
            "`Accept: text/csv` answers CSV. A large period answers 202 with its progress until it is read: send "
            f"the request again. At most {MAX_PERIOD_DAYS} days."
        ),
        responses=_documented(),
    )
    def reconciliation(
        connection_id: ConnectionIdPath,
        first: Annotated[date, Query(alias="from", ge=EARLIEST_DAY, le=LATEST_DAY,
                                     description="first day of the period, e.g. 2026-11-01")],
        last: Annotated[date, Query(alias="to", ge=EARLIEST_DAY, le=LATEST_DAY,
                                    description="last day of the period (included), e.g. 2026-11-30")],
        answer_format: Annotated[Literal["json", "csv"] | None, Query(
            alias="format", description="json (default) or csv; Accept: text/csv works too")] = None,
    ) -> Response[Any]:
        try:
            period = Period(first, last)
        except ValueError as exc:
            raise ApiProblem(400, str(exc), problems=[Problem(field="query.to", problem=str(exc))]) from exc
        stored = ctx.connection(connection_id)
        credentials = ctx.credentials(stored)
        jobs = JobStore(ctx.runtime.table)
        owner = uuid.uuid4().hex
        budget = time_budget()
        claim = jobs.claim(connection_id, period, owner, budget + LEASE_MARGIN_SECONDS)
        if claim.busy:
            return _running(connection_id, period, "busy", 2, claim.progress,
                            "another request is reading this period right now")
        state = claim.state or JobState.new(period)
        with interactive_clients(ctx.runtime, connection_id, credentials) as clients:
            job = ReconciliationJob(
                state, billbee=clients.billbee, sevdesk=clients.sevdesk,
                records=lambda: Records(ctx.runtime.store, connection_id), settings=stored.settings,
                clock=ctx.clock,
            )
            try:
                progress = job.advance(ctx.started + budget)
                report = job.report() if progress.finished else None
            except BROKEN as exc:
                jobs.save(connection_id, period, state, owner)
                raise ApiProblem(502, broken_reason(exc)) from exc
            except ApiError as exc:
                jobs.save(connection_id, period, state, owner)
                raise ApiProblem(502, f"the reconciliation could not read on: {exc}; send the request again") from exc
        if report is None:
            jobs.save(connection_id, period, state, owner)
            wait = max(1, int(-(-(progress.retry_after or 1) // 1)))
            return _running(connection_id, period, "running", wait, state.progress(), progress.detail)
        jobs.finish(connection_id, period, owner)
        generated = datetime.now(UTC).replace(microsecond=0).isoformat()
        accept = router.current_event.headers.get("accept") or ""
        if answer_format == "csv" or (answer_format is None and CSV in accept.lower()):
            filename = f"reconciliation-{connection_id}-{period.first}-{period.last}.csv"
            return Response(200, content_type=f"{CSV}; charset=utf-8", body=report_csv(report), compress=True,
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        body = ReconciliationReport.model_validate(report_dict(report, connection_id=connection_id,
                                                               generated_at=generated))
        return Response(200, content_type=JSON, body=body.model_dump_json(by_alias=True), compress=True)

    return router


def _running(connection_id: str, period: Period, status: str, retry_after: int,
             progress: dict[str, Any] | None, detail: str | None) -> Response[Any]:
    body = ReconciliationRunning(
        connection_id=connection_id,
        period=ReconciliationPeriod.model_validate({"from": period.first.isoformat(), "to": period.last.isoformat()}),
        status=status, retry_after=retry_after, progress=progress, detail=detail,
    )
    return Response(202, content_type=JSON, body=body.model_dump_json(by_alias=True),
                    headers={"Retry-After": str(retry_after)})
