"""PollFunction: fired hourly by EventBridge Scheduler; lists candidates and queues one export per order."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.observability import logger, metrics
from connector.pipeline.poll import Poller
from connector.pipeline.runtime import Runtime

runtime = Runtime.from_env()
# A poll uses at most this share of the time it has left; a listing that needs more continues in the next poll, so
# every poll finishes, however long the history (issue 12).
BUDGET_SHARE = 0.5


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 * BUDGET_SHARE
    summaries = Poller(runtime).poll_all(deadline)
    # The alarms watch these (template.yaml): a failed poll is caught per connection, so Lambda's Errors stay 0.
    metrics.add_metric(name="OrdersQueued", unit="Count", value=sum(s.queued for s in summaries))
    metrics.add_metric(name="ConnectionErrors", unit="Count", value=sum(1 for s in summaries if s.status != "OK"))
    metrics.add_metric(name="UnreadableOrders", unit="Count", value=sum(s.unreadable for s in summaries))
    return {"connections": [s.as_dict() for s in summaries]}
