"""The table's repositories, built by their constructors on the same client the services use (so a test
that wraps a client call sees the services' calls too)."""

from __future__ import annotations

from report_export.aws import clients
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.reexports import ReexportRepository
from report_export.aws.dynamo.table import Table
from report_export.core.settings import get_settings


def table() -> Table:
    return Table(clients.dynamodb(), get_settings().table_name)


def job_repository() -> JobRepository:
    return JobRepository(table())


def reexport_repository() -> ReexportRepository:
    return ReexportRepository(table())
