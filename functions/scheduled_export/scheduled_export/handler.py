"""Scheduled-export Lambda: EventBridge Scheduler fires a schedule; its firing becomes a job."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_export.aws.deadline import deadline
from report_export.core.models.schedules import ScheduleFiring
from report_export.core.observability import logger, metrics, tracer
from report_export.schedules.exports import describe, firing_input, scheduled_exports


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # An input that is neither kind of firing raises: Lambda retries the asynchronous invocation, then keeps
    # the event in the function's dead-letter queue (ScheduledExportDeadLetterQueue).
    firing = firing_input(event)
    logger.append_keys(tenant_id=firing.tenant_id, schedule_id=firing.schedule_id)
    with deadline.of(context):
        if isinstance(firing, ScheduleFiring):
            return describe(scheduled_exports().fire_tenant_schedule(firing))
        return describe(scheduled_exports().fire(firing))
