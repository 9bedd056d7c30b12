"""ExportFunction: exports the orders of an SQS batch; failed ones go back to the queue (ReportBatchItemFailures)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.observability import logger, metrics
from connector.pipeline.export import Exporter, ExportRequest, Outcome
from connector.pipeline.messages import ExportMessage, RetryLater, delay_message
from connector.pipeline.runtime import Runtime

runtime = Runtime.from_env()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def export_record(record: SQSRecord) -> str:
    try:
        # A malformed message raises here: it is reported as failed and reaches the dead-letter queue, never dropped.
        message = ExportMessage.model_validate_json(record.body)
        exporter = Exporter(runtime)
        outcome = exporter.export(ExportRequest(message.connectionId, message.orderId, message.reason))
    except Exception:
        delay_message(runtime, record, None)
        raise
    metrics.add_metric(name=f"Export{outcome.value.title().replace('_', '')}", unit="Count", value=1)
    if outcome is Outcome.RETRY_LATER:
        delay_message(runtime, record, exporter.retry_after)
        raise RetryLater(f"order {message.orderId} of {message.connectionId} will be retried")
    return outcome.value


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=export_record, processor=processor, context=context)
