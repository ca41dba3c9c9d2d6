"""The SQS event source mapping, locally: poll the template's queues and deliver batches to the functions.

As Lambda does: up to BatchSize messages become one SQS event; with ReportBatchItemFailures,
the items the handler reports as failed stay on the queue (visible again after the queue's
visibility timeout) and the rest are deleted; an invocation that fails returns the whole batch.
Redrive to the dead-letter queue is the queue's own doing (moto applies the RedrivePolicy on
receive), so a poison message ends there after maxReceiveCount deliveries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local.runtime import FunctionError, LocalFunction
from local.template import Template

POLL_INTERVAL_SEC = 0.2
DEFAULT_CONCURRENCY = 2  # Lambda's own default is far higher; two show concurrency without many processes
_SQS_RECEIVE_MAX = 10


@dataclass(frozen=True)
class QueueSource:
    function: str  # logical id
    event: str
    queue_arn: str
    batch_size: int
    report_item_failures: bool
    concurrency: int
    enabled: bool


def sqs_sources(template: Template) -> list[QueueSource]:
    sources = []
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        for event_name, event in template.function_properties(logical_id).get("Events", {}).items():
            if event.get("Type") != "SQS":
                continue
            props = template.resolve(event.get("Properties", {}))
            sources.append(
                QueueSource(
                    function=logical_id,
                    event=event_name,
                    queue_arn=str(props["Queue"]),
                    batch_size=int(props.get("BatchSize", 10)),
                    report_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    concurrency=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", DEFAULT_CONCURRENCY)),
                    enabled=str(props.get("Enabled", True)).lower() != "false",
                )
            )
    return sources


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from received messages."""
    records = []
    for message in messages:
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


class QueuePoller:
    """Delivers one queue's messages to one function until stopped."""

    def __init__(
        self,
        source: QueueSource,
        *,
        queue_url: str,
        sqs: Any,
        function: LocalFunction,
        region: str,
        log: Callable[[str], None] = print,
    ) -> None:
        self.source = source
        self._queue_url = queue_url
        self._sqs = sqs
        self._function = function
        self._region = region
        self._log = log
        self._stopping = threading.Event()
        # A batch is received only when an invocation slot is free, so no message waits invisible for a slot.
        self._slots = threading.BoundedSemaphore(max(1, source.concurrency))
        self._pool = ThreadPoolExecutor(max_workers=max(1, source.concurrency), thread_name_prefix=source.function)
        self._thread = threading.Thread(target=self._run, name=f"poll-{source.function}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=POLL_INTERVAL_SEC):
                continue
            try:
                messages = self._receive()
            except Exception as error:  # the endpoint is going away, or a transient error: say so, retry
                if not self._stopping.is_set():
                    self._log(f"[worker] receiving from {self.source.queue_arn} failed: {error}")
                messages = []
            if not messages:
                self._slots.release()
                self._stopping.wait(POLL_INTERVAL_SEC)
                continue
            self._pool.submit(self._deliver, messages)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.source.batch_size:
            # WaitTimeSeconds=0: the local AWS endpoint handles one request at a time, and a long poll would hold it.
            batch = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(_SQS_RECEIVE_MAX, self.source.batch_size - len(messages)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return messages

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        try:
            event = lambda_sqs_event(messages, self.source.queue_arn, self._region)
            try:
                response = self._function.invoke(event)
            except FunctionError as error:
                reason = str(error).splitlines()[0]  # the function's own log has the details
                self._log(
                    f"[worker] {self.source.function} failed ({reason}); {len(messages)} message(s) "
                    "come back after the queue's visibility timeout"
                )
                return
            failed = settle(self._sqs, self._queue_url, messages, response, self.source.report_item_failures)
            self._log(f"[worker] {self.source.function}: batch of {len(messages)}, {len(failed)} failed")
        finally:
            self._slots.release()


def settle(
    sqs: Any, queue_url: str, messages: list[dict[str, Any]], response: Any, report_item_failures: bool
) -> set[str]:
    """Delete what succeeded; return the ids of what stays on the queue for a retry."""
    failed: set[str] = set()
    if report_item_failures and isinstance(response, Mapping):
        failed = {str(item.get("itemIdentifier")) for item in response.get("batchItemFailures") or []}
    done = [message for message in messages if message["MessageId"] not in failed]
    for start in range(0, len(done), _SQS_RECEIVE_MAX):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(done[start : start + _SQS_RECEIVE_MAX])
            ],
        )
    return failed
