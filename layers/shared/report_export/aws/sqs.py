"""Wake-up messages to the generator queue. The job item is the source of truth; a message only
says "look at this job", so a duplicate is harmless and a lost one can be re-sent from the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from report_export.core.models.jobs import GenerateJobMessage, Job


class GenerateQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def wake_generator(self, job: Job) -> None:
        message = GenerateJobMessage(tenant_id=job.tenant_id, job_id=job.id)
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=message.model_dump_json(),
            MessageAttributes={"tenant_id": {"DataType": "String", "StringValue": job.tenant_id}},
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    receipt_handle: str
    # None when the body is not a wake-up at all (nothing to end; the letter is only removed).
    message: GenerateJobMessage | None
    body: str


class DeadLetterQueue:
    """The wake-ups that failed every allowed delivery, read so that their jobs can be ended."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def receive(self, *, visibility_timeout: int) -> list[DeadLetter]:
        response = self._client.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, VisibilityTimeout=visibility_timeout, WaitTimeSeconds=0
        )
        return [_dead_letter(message) for message in response.get("Messages", [])]

    def remove(self, letter: DeadLetter) -> None:
        self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=letter.receipt_handle)


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    try:
        wake_up = GenerateJobMessage.model_validate_json(message.get("Body", ""))
    except ValidationError:
        wake_up = None
    return DeadLetter(receipt_handle=message["ReceiptHandle"], message=wake_up, body=message.get("Body", ""))
