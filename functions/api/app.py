"""ApiFunction: the HTTP API for manual export, connection setup and status (routes in connector.api)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.api import ApiApp
from connector.observability import logger
from connector.pipeline.runtime import Runtime

api = ApiApp(Runtime.from_env())


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
