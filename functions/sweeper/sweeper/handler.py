"""Sweeper Lambda: fired by EventBridge Scheduler every few minutes; finishes what nothing else will."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from report_export.aws.deadline import deadline
from report_export.core.observability import logger, metrics, tracer
from report_export.sweeping.sweeper import sweeper


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with deadline.of(context):
        report = sweeper().sweep()
    return {
        "requeued": report.requeued,
        "failed": report.failed,
        "woken": report.woken,
        "dead_letters": report.dead_letters,
        "schedules_repaired": report.schedules_repaired,
    }
