"""The reproducibility manifest a succeeded job keeps: everything a re-export needs to reproduce the
file and to explain a difference."""

from __future__ import annotations

import hashlib
from typing import Any

from report_export.core.models.common import FileReference, canonical_json
from report_export.core.models.jobs import Job
from report_export.reports import ReportDefinition


def manifest(job: Job, definition: ReportDefinition, file: FileReference, *, watermark: str | None) -> dict[str, Any]:
    parameters = {
        "job_type": job.job_type.value,
        "format": job.format.value,
        "compression": job.compression.value if job.compression else None,
        "farm_id": job.farm_id,
        "barn_id": job.barn_id,
        "batch_id": job.batch_id,
        "start_date": job.start_date.isoformat() if job.start_date else None,
        "end_date": job.end_date.isoformat() if job.end_date else None,
        "filters": job.filters,
    }
    return {
        "parameters": parameters,
        "parameters_sha256": hashlib.sha256(canonical_json(parameters).encode()).hexdigest(),
        "definition": {
            "job_type": definition.job_type.value,
            "version": definition.version,
            "columns": list(definition.column_names),
            "sort_key": list(definition.sort_key),
        },
        "time_zone": "UTC",
        "source_watermark": watermark,
        "output": {
            "sha256": file.sha256,
            "size_bytes": file.size_bytes,
            "row_count": file.row_count,
            "mime_type": file.mime_type,
        },
    }
