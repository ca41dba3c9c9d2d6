"""Announcing what happened outside the state machine: an EventBridge event and an SNS notification
(with the attributes subscribers filter on)."""

from __future__ import annotations

import json
from typing import Any

from report_export.core.models.common import canonical_json


class AnnouncementRefused(RuntimeError):
    """EventBridge accepted the request but not the event."""


class Publisher:
    def __init__(self, events: Any, sns: Any, *, event_bus_name: str, topic_arn: str) -> None:
        self._events = events
        self._sns = sns
        self._bus = event_bus_name
        self._topic = topic_arn

    def publish(
        self, *, detail_type: str, detail: dict[str, Any], subject: str, message: str, attributes: dict[str, str]
    ) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": "report-export",
                    "DetailType": detail_type,
                    "Detail": canonical_json(detail),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise AnnouncementRefused(f"EventBridge refused the event: {json.dumps(response.get('Entries'))}")
        self._sns.publish(
            TopicArn=self._topic,
            Subject=subject,
            Message=message,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
            },
        )
