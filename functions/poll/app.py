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
    # The alarms watch these (template.yaml): a failed poll is caught per connection, so Lambda's Errors stay 0.
    metrics.add_metric(name="OrdersQueued", unit="Count", value=sum(s.queued for s in summaries))
    metrics.add_metric(name="ConnectionErrors", unit="Count", value=sum(1 for s in summaries if s.status != "OK"))
    metrics.add_metric(name="UnreadableOrders", unit="Count", value=sum(s.unreadable for s in summaries))
    return {"connections": [s.as_dict() for s in summaries]}
