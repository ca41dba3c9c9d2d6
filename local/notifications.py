"""See what the service announces: a queue subscribed to every SNS topic of the template, as an e-mail
subscriber would be, whose notifications are printed as they arrive and kept for GET /_local/notifications."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

POLL_INTERVAL_SEC = 0.5
KEPT = 200


class NotificationFeed:
    def __init__(self, sqs: Any, sns: Any, topics: dict[str, str], *, log: Callable[[str], None] = print) -> None:
        """topics: logical id -> topic ARN."""
        self._sqs = sqs
        self._log = log
        self._names = {arn: logical_id for logical_id, arn in topics.items()}
        self._received: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._queue_url = sqs.create_queue(QueueName="local-stack-notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"]
        for arn in topics.values():
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._received)

    def _run(self) -> None:
        while not self._stopping.wait(POLL_INTERVAL_SEC):
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
            except Exception as error:  # the endpoint is going away, or a transient error: say so, retry
                if not self._stopping.is_set():
                    self._log(f"[notification] receiving failed: {error}")
                continue
            for message in messages:
                self._show(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _show(self, envelope: dict[str, Any]) -> None:
        notification = {
            "topic": self._names.get(envelope.get("TopicArn", ""), envelope.get("TopicArn")),
            "subject": envelope.get("Subject"),
            "message": envelope.get("Message", ""),
            "attributes": {name: item.get("Value") for name, item in (envelope.get("MessageAttributes") or {}).items()},
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        with self._lock:
            self._received.append(notification)
        body = "\n".join(f"    {line}" for line in str(notification["message"]).splitlines())
        self._log(f"[notification] {notification['topic']}: {notification['subject']}\n{body}")
