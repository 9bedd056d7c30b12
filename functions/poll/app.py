"""PollFunction: fired hourly by EventBridge Scheduler; lists candidates and queues one export per order."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.observability import logger, metrics
from connector.pipeline.poll import Poller
from connector.pipeline.runtime import Runtime

runtime = Runtime.from_env()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summaries = Poller(runtime).poll_all()
    for summary in summaries:
        metrics.add_metric(name="OrdersQueued", unit="Count", value=summary.queued)
        metrics.add_metric(name="ConnectionErrors", unit="Count", value=0 if summary.status == "OK" else 1)
    return {"connections": [s.as_dict() for s in summaries]}
