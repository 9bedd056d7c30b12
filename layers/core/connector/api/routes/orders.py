"""Routes of the orders: export chosen orders now, read export records, retry one, mark one as booked by hand, and
the export messages that reached the dead-letter queue."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from connector.api.context import ApiContext, new_router
from connector.api.models import (
    BillbeeOrderSummary,
    ConnectionIdPath,
    DeadLetterList,
    DeadLetterView,
    ExportAnswer,
    ExportBody,
    HandledBody,
    OrderExplanation,
    OrderIdPath,
    OrderOutcomeView,
    OrderPage,
    OrderStatus,
    Problem,
    RetryAnswer,
)
from connector.api.problems import JSON, ApiProblem, responses
from connector.billbee.client import BillbeeClient
from connector.billbee.models import Order
from connector.errors import ApiError, NotFoundError, UnreadableData
from connector.pipeline import orders
from connector.pipeline.connection import interactive_clients
from connector.pipeline.deadletters import peek_dead_letters
from connector.pipeline.explain import explain_record, explain_unrecorded
from connector.pipeline.manual import (
    DEFAULT_TIME_BUDGET_SECONDS,
    MAX_ORDERS_PER_REQUEST,
    ManualOutcome,
    request_manual_export,
)
from connector.secrets import CredentialsUnavailable
from connector.store.dynamo import ConflictError, InvalidPageToken
from connector.store.records import ExportState


def orders_router(ctx: ApiContext) -> APIGatewayHttpRouter:  # noqa: C901 - the routes of one subject
    router = new_router()

    @router.post(
        "/connections/<connectionId>/exports",
        operation_id="exportOrders",
        summary="Export chosen orders now",
        description=(
            "Manual export, independent of the hourly run: the connection's start date, shop and state filters "
            "do not apply (the user chose the orders); `onlyUntagged` skips orders that carry the export tag; "
            "`setTag: false` exports without tagging. Orders this connector exported before are never exported "
            f"again. At most {MAX_ORDERS_PER_REQUEST} ids. Billbee allows 2 requests/s, so the request checks "
            f"orders for up to {DEFAULT_TIME_BUDGET_SECONDS:g} s and answers `notChecked` for the rest, listed "
            "in `resend`: send those again. `queued` orders are exported by the export worker; follow them with "
            "GET .../orders/{orderId}."
        ),
        responses=responses({202: (ExportAnswer, "An outcome per order")}, 404, 409, 413, 502),
    )
    def export_orders(connection_id: ConnectionIdPath, body: ExportBody) -> Response[ExportAnswer]:
        stored = ctx.connection(connection_id)
        if stored.status.state == "ERROR":
            raise ApiProblem(409, f"the connection is in error ({stored.status.reason}); fix it with PUT first")
        try:
            result = request_manual_export(
                ctx.runtime, stored, body.order_ids, set_tag=body.set_tag, only_untagged=body.only_untagged,
                time_budget=ctx.export_time_budget, started=ctx.started, clock=ctx.clock,
            )
        except CredentialsUnavailable as exc:
            raise ApiProblem(502, f"the connection's credentials are unavailable ({exc}); PUT them again") from exc
        answer = ExportAnswer(
            connection_id=connection_id,
            orders=[OrderOutcomeView.model_validate(o.as_dict()) for o in result.outcomes],
            counts=result.counts(),
            resend=result.ids(ManualOutcome.NOT_CHECKED),
        )
        return Response(202, content_type=JSON, body=answer)

    @router.get(
        "/connections/<connectionId>/orders/<orderId>",
        operation_id="getOrder",
        summary="One order's export record",
        responses=responses({200: (OrderStatus, "The export record")}, 404),
    )
    def get_order(connection_id: ConnectionIdPath, order_id: OrderIdPath) -> Response[OrderStatus]:
        return Response(200, content_type=JSON, body=OrderStatus.of(ctx.record(connection_id, order_id)))

    @router.get(
        "/connections/<connectionId>/orders/<orderId>/explanation",
        operation_id="explainOrder",
        summary="Why was this order not exported?",
        description=(
            "For any order id, with or without an export record: exported, in progress, or not exported with the "
            "reason in plain words and what to do. An order without a record is read from Billbee and checked "
            "against the connection's filters, as the hourly poll does. The order's customer, shop and tags as "
            "Billbee has them come along when Billbee can be asked."
        ),
        responses=responses({200: (OrderExplanation, "The explanation")}, 404, 502),
    )
    def explain_order(connection_id: ConnectionIdPath, order_id: OrderIdPath) -> Response[OrderExplanation]:
        stored = ctx.connection(connection_id)
        record = ctx.runtime.store.get_order(connection_id, order_id)
        order: Order | None = None
        state_names: dict[int, str | None] = {}
        unreadable: str | None = None
        billbee_error: str | None = None
        try:
            with interactive_clients(ctx.runtime, connection_id, ctx.credentials(stored)) as clients:
                order = clients.billbee.get_order(order_id)
                state_names = _state_names(clients.billbee)
        except NotFoundError:
            order = None
        except UnreadableData as exc:
            unreadable = exc.detail
        except (ApiError, ApiProblem) as exc:
            if record is None:  # nothing to explain without Billbee
                raise ApiProblem(502, f"Billbee could not be asked about order {order_id}: {exc}") from exc
            billbee_error = str(exc)
        if record is not None:
            explanation = explain_record(record, max_attempts=ctx.runtime.config.max_attempts)
        else:
            explanation = explain_unrecorded(order, stored.settings, unreadable=unreadable)
        answer = OrderExplanation(
            connection_id=connection_id, order_id=order_id, verdict=explanation.verdict, reason=explanation.reason,
            what_to_do=explanation.what_to_do, record=OrderStatus.of(record) if record else None,
            order=BillbeeOrderSummary.of(order, state_names) if order else None,
            billbee_error=billbee_error or (f"Billbee's data cannot be read: {unreadable}" if unreadable else None),
        )
        return Response(200, content_type=JSON, body=answer)

    @router.get(
        "/connections/<connectionId>/orders",
        operation_id="listOrders",
        summary="Export records in one state",
        description="Newest changes last; paged with `next` (a query on the state index, never a table scan).",
        responses=responses({200: (OrderPage, "A page of records")}, 404),
    )
    def list_orders(
        connection_id: ConnectionIdPath,
        state: Annotated[ExportState, Query(description="the export state to list")],
        limit: Annotated[int, Query(ge=1, le=200, description="records per page")] = 50,
        next_page: Annotated[str | None, Query(alias="next", max_length=2000,
                                               description="the previous page's `next`")] = None,
    ) -> Response[OrderPage]:
        ctx.connection(connection_id)
        try:
            records, token = ctx.runtime.store.page_by_state(connection_id, state, limit=limit, page_token=next_page)
        except InvalidPageToken as exc:
            raise ApiProblem(400, "next is not a paging token of this list", problems=[
                Problem(field="query.next", problem="not issued by this API for this list")]) from exc
        return Response(200, content_type=JSON, body=OrderPage(orders=[OrderStatus.of(r) for r in records], next=token))

    @router.get(
        "/connections/<connectionId>/dead-letters",
        operation_id="listDeadLetters",
        summary="Export messages that reached the dead-letter queue",
        description="A poison message lands here after the queue's maximum receives; it stays in the queue "
        "(this only looks) until it is redriven or expires.",
        responses=responses({200: (DeadLetterList, "The dead letters of this connection")}, 404),
    )
    def dead_letters(connection_id: ConnectionIdPath) -> Response[DeadLetterList]:
        ctx.connection(connection_id)
        queue_url = ctx.runtime.config.export_dlq_url
        approximate, letters = (0, []) if not queue_url else peek_dead_letters(ctx.runtime.sqs, queue_url)
        views = [
            DeadLetterView.model_validate(letter.__dict__)
            for letter in letters
            if letter.connection_id in (connection_id, None)
        ]
        answer = DeadLetterList(connection_id=connection_id, approximate_count=approximate, messages=views)
        return Response(200, content_type=JSON, body=answer)

    @router.post(
        "/connections/<connectionId>/orders/<orderId>/retry",
        operation_id="retryOrder",
        summary="Retry a FAILED or NEEDS_ATTENTION order",
        description="Resets the attempts and queues the order again; it resumes at the step it had reached.",
        responses=responses({202: (RetryAnswer, "Queued")}, 404, 409),
    )
    def retry_order(connection_id: ConnectionIdPath, order_id: OrderIdPath) -> Response[RetryAnswer]:
        record = ctx.record(connection_id, order_id)
        try:
            orders.retry(ctx.runtime, record)
        except orders.NotAllowed as exc:
            raise ApiProblem(409, str(exc)) from exc
        except ConflictError as exc:
            raise ApiProblem(409, f"order {order_id} changed while it was being retried; try again") from exc
        return Response(202, content_type=JSON, body=RetryAnswer(order_id=record.order_id, outcome="queued"))

    @router.post(
        "/connections/<connectionId>/orders/<orderId>/handled",
        operation_id="markOrderHandled",
        summary="Mark an order as booked by hand",
        description=(
            "For an order a bookkeeper booked in sevDesk by hand (NEEDS_ATTENTION, FAILED or SKIPPED): it becomes "
            "HANDLED with who, when and why, is never exported, and stops coming back every hour. An exported "
            "order cannot be marked (409)."
        ),
        responses=responses({200: (OrderStatus, "Marked")}, 404, 409),
    )
    def mark_handled(
        connection_id: ConnectionIdPath, order_id: OrderIdPath, body: HandledBody
    ) -> Response[OrderStatus]:
        record = ctx.record(connection_id, order_id)
        try:
            orders.mark_handled(ctx.runtime, record, by=body.by, note=body.note)
        except orders.NotAllowed as exc:
            raise ApiProblem(409, str(exc)) from exc
        except ConflictError as exc:
            raise ApiProblem(409, f"order {order_id} changed while it was being marked; try again") from exc
        return Response(200, content_type=JSON, body=OrderStatus.of(record))

    return router


def _state_names(billbee: BillbeeClient) -> dict[int, str | None]:
    """Billbee's names of its order states, so the answer says "Versendet", not 4; without them, the id alone."""
    try:
        return {entry.id: entry.name for entry in billbee.order_states()}
    except ApiError:
        return {}
