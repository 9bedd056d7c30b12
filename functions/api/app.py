"""ApiFunction: the HTTP API for manual export, connection setup and status (routes in connector.api)."""

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.api import ApiApp
from connector.observability import logger
from connector.pipeline.manual import DEFAULT_TIME_BUDGET_SECONDS
from connector.pipeline.runtime import Runtime

# MANUAL_EXPORT_SECONDS: how long one manual-export request may spend asking Billbee (see connector.pipeline.manual).
api = ApiApp(
    Runtime.from_env(),
    export_time_budget=float(os.environ.get("MANUAL_EXPORT_SECONDS") or DEFAULT_TIME_BUDGET_SECONDS),
)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
