"""Generator Lambda: SQS wake-ups in, report files out. One bad job never fails the batch."""

# Imported before pydantic on purpose: Powertools' batch module loads every parser model (about a tenth
# of a second) when pydantic is already loaded. tests/unit/test_import_boundaries.py keeps it so.
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from report_export.core.models.common import ServiceModel
from report_export.core.models.jobs import GenerateJobMessage
from report_export.core.observability import logger, metrics, tracer
from report_export.generation.generator import generator


class RecordAttributes(ServiceModel):
    ApproximateReceiveCount: int


class GenerateRecord(ServiceModel):
    """The fields of an SQS record the generator reads (BatchProcessor reports failures by messageId)."""

    messageId: str  # noqa: N815 - SQS's field name
    body: Json[GenerateJobMessage]  # a body that is not a wake-up fails the record: retried, then dead-lettered
    attributes: RecordAttributes


processor = BatchProcessor(event_type=EventType.SQS, model=GenerateRecord)


@tracer.capture_method
def generate_report(record: GenerateRecord, lambda_context: LambdaContext | None = None) -> None:
    # BatchProcessor passes the invocation's context to a handler that takes one: a report too large for
    # the time left is handed to the next invocation.
    time_left = (lambda: lambda_context.get_remaining_time_in_millis() / 1000) if lambda_context else None
    try:
        generator().generate(record.body, receive_count=record.attributes.ApproximateReceiveCount, time_left=time_left)
    finally:
        logger.remove_keys(["tenant_id", "job_id", "attempt"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=generate_report, processor=processor, context=context)
