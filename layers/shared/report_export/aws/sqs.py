"""Wake-up messages to the generator queue. The job item is the source of truth; a message only
says "look at this job", so a duplicate is harmless and a lost one can be re-sent from the table."""

from __future__ import annotations

from typing import Any

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
