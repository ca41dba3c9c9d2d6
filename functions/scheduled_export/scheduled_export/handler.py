"""Scheduled-export Lambda: EventBridge Scheduler fires a schedule; its input becomes a job."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_export.core.observability import logger, metrics, tracer
from report_export.schedules.exports import ScheduledExport, describe, scheduled_exports


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # An input that is not a scheduled export raises: Lambda retries the asynchronous invocation, then keeps
    # the event in the function's dead-letter queue (ScheduledExportDeadLetterQueue).
    export = ScheduledExport.model_validate(event)
    logger.append_keys(tenant_id=export.tenant_id, schedule_id=export.schedule_id)
    return describe(scheduled_exports().fire(export))
