"""The generator's part in a re-export: a job that regenerates a report is generated like any job;
around it this module marks the re-export running, ends it when the job is cancelled, and turns the
store-and-notify input into one transaction that ends the job and the re-export together (job
succeeded with its file, the re-export's lineage, the original released, a history entry).

Lineage: whether the new file is byte-identical to the original (by sha256, which works even when
the original file is gone), and when it is not and the original is still there, a row-by-row
comparison of both files streamed from S3.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from botocore.exceptions import ClientError

from report_export.aws.dynamo.store import (
    JobStore,
    JobUpdate,
    StaleWrite,
    StoredJob,
    StoredReexport,
    reexport_end_items,
    reexport_key,
    reexport_update,
)
from report_export.core.history import SERVICE_ACTOR, HistoryEvent, HistoryEventType, new_event
from report_export.core.models import ExportFormat, FileReference, format_timestamp, now_utc
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings
from report_export.generation.reports import definition_for
from report_export.jobs.models import Job
from report_export.reexports.comparison import ReportStream, compare_reports
from report_export.reexports.lineage import lineage_summary, lineage_text, success_changes
from report_export.reexports.models import ChangedInputs, ComparisonSummary, Reexport, ReexportStatus

GZIP_MIME_TYPE = "application/gzip"
_NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")
# Ending a job with its re-export: a refused transaction is read again and retried while the record is active.
_END_ATTEMPTS = 4
_END_BACKOFF_SECONDS = 0.05


class ReexportLineage:
    def __init__(self, settings: Settings, store: JobStore, s3: Any) -> None:
        self._settings = settings
        self._store = store
        self._s3 = s3

    def started(self, claimed: StoredJob) -> None:
        """pending → running, once the job is claimed. Informational: a failure here stops nothing."""
        job = claimed.job
        if not job.reexport_id:
            return
        try:
            self._store.mark_reexport_running(job.tenant_id, job.reexport_id, now=_now())
        except Exception:
            logger.warning("Could not mark the re-export running", exc_info=True)

    def cancel(self, claimed: StoredJob, job_change: JobUpdate) -> bool:
        """The job's cancel and its re-export's end in one transaction; False when there is no active
        re-export (the caller then cancels the job alone, if it still can)."""

        def cancelled(record: Reexport, now: str) -> tuple[dict[str, Any], HistoryEvent]:
            return (
                {"status": ReexportStatus.CANCELLED, "completed_at": now, "updated_at": now},
                new_event(
                    record.report_id,
                    HistoryEventType.REEXPORT_CANCELLED,
                    actor=SERVICE_ACTOR,
                    details={"reexport_id": record.id, "job_id": record.job_id, "while": "running"},
                ),
            )

        ended = self._end_with_job(claimed, job_change, cancelled)
        if ended:
            logger.info("Re-export cancelled while running", extra={"reexport_id": claimed.job.reexport_id})
        return ended

    def fail(self, claimed: StoredJob, job_change: JobUpdate, code: str, message: str) -> bool:
        """The job failed without the state machine (its hand-over failed): the re-export ends failed with it,
        and the original is released, in one transaction. False as for `cancel`."""

        def failed(record: Reexport, now: str) -> tuple[dict[str, Any], HistoryEvent]:
            changes = _failure_changes(code, message, now)
            return changes, _completed(_with_changes(record, changes))

        return self._end_with_job(claimed, job_change, failed)

    def _end_with_job(
        self,
        claimed: StoredJob,
        job_change: JobUpdate,
        ending: Callable[[Reexport, str], tuple[dict[str, Any], HistoryEvent]],
    ) -> bool:
        """A refused transaction is tried again while the record is still active (a conflicting write to it,
        such as DELETE's note of cancel_requested, is no reason to leave it active); False only once the
        record has verifiably ended (or there is none), or the job itself keeps refusing the change."""
        for attempt in range(_END_ATTEMPTS):
            current = self._active(claimed.job)
            if current is None:
                return False
            changes, event = ending(current.record, _now())
            try:
                self._store.end_reexport_with_job(job_change, current.record, changes, event)
            except StaleWrite:
                time.sleep(random.uniform(0, _END_BACKOFF_SECONDS * 2**attempt))
                continue
            return True
        logger.warning("The job and its re-export could not be ended together", extra={"job_id": claimed.job.id})
        return False

    def augment(
        self,
        claimed: StoredJob,
        execution_input: dict[str, Any],
        *,
        new_file: FileReference | None,
        manifest: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The store-and-notify input for a job that regenerates a report; any other input unchanged.

        Adds `store_transaction` (success) or `fail_transaction` (failure): the job's own update plus
        the items that end the re-export; `rollback.lineage`: the items that fail the re-export when
        the result cannot be stored, with the event and notified-update that go with them;
        `reexport_key`, to read the record again when a transaction is refused; `job_event` and
        `job_notification` (failure): the job's own announcement, for when the record ended otherwise;
        `reexport_notified`: the record's notification_sent_at, only while it has the status announced.
        The event and the notification carry the lineage summary.
        """
        job = claimed.job
        current = self._active(job)
        if current is None:
            return execution_input
        record = current.record
        table = self._settings.table_name
        now = _now()
        result = dict(execution_input)
        if result["outcome"] == "succeeded" and new_file is not None:
            changes = self._success_changes(current, job, new_file, manifest, now)
            final = _with_changes(record, changes)
            result["store_transaction"] = {
                "items": [
                    _transact_update(table, result["store"]),
                    *reexport_end_items(table, record, changes, _completed(final)),
                ],
                "token": _token(job, claimed.attempt, "succeeded"),
            }
            store_failed = _failure_changes("STORE_FAILED", "The report was generated but could not be stored", now)
            rolled_back = _with_changes(record, store_failed)
            # The rollback's own event stays the job's: it is what is announced when the re-export could not be
            # failed with the job (it ended meanwhile, e.g. an internal service stored a result), so the
            # announcement never claims a lineage the record does not have.
            result["rollback"] = {
                **result["rollback"],
                "lineage": {
                    "items": reexport_end_items(table, record, store_failed, _completed(rolled_back)),
                    "event": _with_lineage_event(result["rollback"]["event"], rolled_back),
                    "reexport_notified": _notified_update(record, ReexportStatus.FAILED, now),
                },
            }
            result["event"] = _with_lineage_event(result["event"], final)
            result["notification"] = self._notification(job, result["notification"], final, succeeded=True)
        else:
            detail = result["event"]["detail"]
            failed = _failure_changes(detail.get("error_code", "INTERNAL"), detail.get("error_message", ""), now)
            final = _with_changes(record, failed)
            # Announced instead when the re-export cannot be ended with the job (it verifiably ended otherwise).
            result["job_event"], result["job_notification"] = result["event"], result["notification"]
            result["fail_transaction"] = {
                "items": [
                    _transact_update(table, result["fail"]),
                    *reexport_end_items(table, record, failed, _completed(final)),
                ],
                "token": _token(job, claimed.attempt, "failed"),
            }
            result["event"] = _with_lineage_event(result["event"], final)
            result["notification"] = self._notification(job, result["notification"], final, succeeded=False)
        result["reexport_key"] = reexport_key(record.tenant_id, record.id)
        result["reexport_notified"] = _notified_update(record, final.status, now)
        return result

    def _active(self, job: Job) -> StoredReexport | None:
        if not job.reexport_id:
            return None
        current = self._store.get_reexport(job.tenant_id, job.reexport_id, consistent=True)
        if current is None or not current.record.status.is_active:
            logger.warning("The job's re-export is not active: the job is finished on its own")
            return None
        return current

    def _success_changes(
        self,
        current: StoredReexport,
        job: Job,
        new_file: FileReference,
        manifest: dict[str, Any] | None,
        now: str,
    ) -> dict[str, Any]:
        record = current.record
        changes = success_changes(record, new_file, now)
        matches = changes["matches_original"]
        if not matches:
            changes["comparison"] = self._compare(record, job, new_file)
        changed_inputs = _changed_inputs(current.original_manifest, manifest)
        if changed_inputs is not None:
            changes["changed_inputs"] = changed_inputs
        metrics.add_metric(name="ReexportsMatchingOriginal" if matches else "ReexportsDiffering", unit="Count", value=1)
        return changes

    def _compare(self, record: Reexport, job: Job, new_file: FileReference) -> ComparisonSummary:
        original = record.original_file
        if original is None:
            return ComparisonSummary(compared=False, reason="the original has no file reference")
        bucket = self._settings.reports_bucket
        try:
            original_body = self._s3.get_object(Bucket=bucket, Key=original.key)["Body"]
        except ClientError as error:
            if error.response["Error"]["Code"] in _NOT_FOUND_CODES:
                return ComparisonSummary(compared=False, reason="the original file no longer exists")
            # Never fail the job over its summary: matches_original already says the files differ.
            logger.exception("Reading the original file for the comparison failed")
            return ComparisonSummary(compared=False, reason="the files could not be read for comparison")
        try:
            new_body = self._s3.get_object(Bucket=bucket, Key=new_file.key)["Body"]
            try:
                return compare_reports(
                    ReportStream(
                        original_body,
                        ExportFormat(record.original_parameters.get("format", ExportFormat.CSV.value)),
                        _is_gzip(original),
                        "original",
                    ),
                    ReportStream(new_body, job.format, _is_gzip(new_file), "new"),
                    definition_for(job.job_type),
                )
            finally:
                new_body.close()
        except Exception:
            # The lineage stays correct without the summary: matches_original already says they differ.
            logger.exception("Comparing the re-export with the original failed")
            return ComparisonSummary(compared=False, reason="the files could not be read for comparison")
        finally:
            original_body.close()

    def _notification(
        self, job: Job, notification: dict[str, Any], final: Reexport, *, succeeded: bool
    ) -> dict[str, Any]:
        definition = definition_for(job.job_type)
        period = (
            f" {job.start_date.isoformat()} to {job.end_date.isoformat()}" if job.start_date and job.end_date else ""
        )
        subject = f"{'Report re-exported' if succeeded else 'Re-export failed'}: {definition.title}{period}"
        return {**notification, "subject": subject, "message": f"{notification['message']}\n{lineage_text(final)}"}


def _now() -> str:
    return format_timestamp(now_utc())


def _notified_update(record: Reexport, announced: ReexportStatus, now: str) -> dict[str, Any]:
    """notification_sent_at, only while the record has the status that was announced: a record another writer
    ended otherwise (an internal service's result) keeps its own announcement to make."""
    return reexport_update(
        record.tenant_id,
        record.id,
        {"notification_sent_at": now},
        condition="#status = :announced",
        condition_names={"#status": "status"},
        condition_values={":announced": announced.value},
    ).as_task_input()


def _token(job: Job, attempt: int, outcome: str) -> str:
    """TransactWriteItems' ClientRequestToken (36 characters at most): a retried store is applied once."""
    return str(uuid5(NAMESPACE_URL, f"report-export:{job.id}:{attempt}:{outcome}"))


def _transact_update(table_name: str, task_input: dict[str, Any]) -> dict[str, Any]:
    """The generator's own job update (as the single-item store takes it) as a transaction item."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": task_input["key"],
            "UpdateExpression": task_input["update_expression"],
            "ConditionExpression": task_input["condition_expression"],
            "ExpressionAttributeNames": task_input["names"],
            "ExpressionAttributeValues": task_input["values"],
        }
    }


def _failure_changes(code: str, message: str, now: str) -> dict[str, Any]:
    return {
        "status": ReexportStatus.FAILED,
        "error_code": code,
        "error_message": message,
        "completed_at": now,
        "updated_at": now,
    }


def _with_changes(record: Reexport, changes: dict[str, Any]) -> Reexport:
    return Reexport.model_validate({**record.model_dump(), **changes})


def _completed(record: Reexport) -> HistoryEvent:
    return new_event(
        record.report_id,
        HistoryEventType.REEXPORT_COMPLETED,
        actor=record.requested_by,
        details={
            "reexport_id": record.id,
            "job_id": record.job_id,
            "outcome": record.status.value,
            "matches_original": record.matches_original,
            "sha256": record.new_file.sha256 if record.new_file else None,
            "requested_by": record.requested_by,
            "reason": record.reason,
            "error_code": record.error_code,
        },
    )


def _with_lineage_event(event: dict[str, Any], record: Reexport) -> dict[str, Any]:
    return {**event, "detail": {**event["detail"], "reexport": lineage_summary(record)}}


def _changed_inputs(original: dict[str, Any] | None, new: dict[str, Any] | None) -> ChangedInputs | None:
    if not original or not new:
        return None

    def differs(first: Any, second: Any) -> bool | None:
        return None if first is None or second is None else first != second

    return ChangedInputs(
        definition_version=differs(
            original.get("definition", {}).get("version"), new.get("definition", {}).get("version")
        ),
        parameters=differs(original.get("parameters_sha256"), new.get("parameters_sha256")),
        source_watermark=differs(original.get("source_watermark"), new.get("source_watermark")),
    )


def _is_gzip(file: FileReference) -> bool:
    return file.mime_type == GZIP_MIME_TYPE or file.key.endswith(".gz")
