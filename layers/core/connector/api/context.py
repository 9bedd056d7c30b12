"""What every route needs: the runtime, the clock of the current request, and the lookups that answer 404/502."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from connector.api.models import ConnectionStatusView
from connector.api.problems import ApiProblem
from connector.pipeline.manual import DEFAULT_TIME_BUDGET_SECONDS
from connector.pipeline.runtime import Runtime
from connector.secrets import CredentialsUnavailable
from connector.settings.model import Credentials
from connector.store.dynamo import StoredConnection
from connector.store.records import OrderRecord


@dataclass
class ApiContext:
    runtime: Runtime
    export_time_budget: float = DEFAULT_TIME_BUDGET_SECONDS
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)  # when the current request began, on ``clock``'s scale

    def connection(self, connection_id: str) -> StoredConnection:
        stored = self.runtime.store.get_connection(connection_id)
        if stored is None:
            raise ApiProblem(404, f"no connection {connection_id!r}")
        return stored

    def record(self, connection_id: str, order_id: int) -> OrderRecord:
        self.connection(connection_id)
        record = self.runtime.store.get_order(connection_id, order_id)
        if record is None:
            raise ApiProblem(404, f"connection {connection_id!r} has no export record of order {order_id}")
        return record

    def credentials(self, stored: StoredConnection) -> Credentials:
        try:
            return self.runtime.secrets.get(stored.secret_id)
        except CredentialsUnavailable as exc:
            raise ApiProblem(502, f"the connection's credentials are unavailable ({exc}); PUT them again") from exc

    @staticmethod
    def status(stored: StoredConnection) -> ConnectionStatusView:
        return ConnectionStatusView(state=stored.status.state, reason=stored.status.reason, since=stored.status.since)


def new_router() -> APIGatewayHttpRouter:
    """A router for one subject's routes (powertools' own split-route pattern), joined by ``ApiApp``."""
    return APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
