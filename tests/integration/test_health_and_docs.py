import pytest

JOBS = "/api/v1/reports/jobs"
REEXPORTS = "/api/v1/report-reexports"
SCHEDULES = "/api/v1/reports/schedules"
SUBSCRIPTIONS = "/api/v1/reports/subscriptions"
REPORT_TYPES = "/api/v1/report-types"


def test_health_needs_no_token(api):
    response = api.call("GET", "/api/health", authenticated=False)

    assert (response.status, response.json) == (200, {"status": "ok"})


def test_ready_when_table_and_secret_answer(api):
    response = api.call("GET", "/api/ready", authenticated=False)

    assert (response.status, response.json) == (200, {"status": "ready"})


def test_not_ready_without_the_table(api, aws):
    aws.dynamodb.delete_table(TableName=aws.table_name)

    response = api.call("GET", "/api/ready", authenticated=False)

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert "ResourceNotFound" not in response.body


def test_not_ready_without_the_signing_secret(api, aws):
    aws.ssm.delete_parameter(Name="/report-export/signing-secret")

    response = api.call("GET", "/api/ready", authenticated=False)

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")


def test_openapi_document_describes_every_route_with_the_error_envelope(api):
    response = api.call("GET", "/api-docs/openapi.json", authenticated=False)

    assert response.status == 200
    document = response.json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/health",
        "/api/ready",
        JOBS,
        JOBS + "/{jobId}",
        JOBS + "/{jobId}/download",
        JOBS + "/{jobId}/file",
        JOBS + "/{jobId}/history",
        REEXPORTS,
        REEXPORTS + "/{reexport_id}",
        SCHEDULES,
        SCHEDULES + "/{schedule_id}",
        SUBSCRIPTIONS,
        SUBSCRIPTIONS + "/{subscription_id}",
        "/api/v1/reports/jobs/{jobId}/legal-hold",
        REPORT_TYPES,
        REPORT_TYPES + "/{job_type}",
    }
    assert set(document["paths"][JOBS]) == {"get", "post"}
    assert set(document["paths"][JOBS + "/{jobId}"]) == {"get", "delete"}
    assert set(document["paths"][REEXPORTS]) == {"get", "post"}
    assert set(document["paths"][REEXPORTS + "/{reexport_id}"]) == {"get", "put", "delete"}
    assert set(document["paths"][SCHEDULES]) == {"get", "post"}
    assert set(document["paths"][SCHEDULES + "/{schedule_id}"]) == {"get", "put", "delete"}
    assert "content" not in document["paths"][SCHEDULES + "/{schedule_id}"]["delete"]["responses"]["204"]
    assert set(document["paths"][SUBSCRIPTIONS]) == {"get", "post"}
    assert set(document["paths"][SUBSCRIPTIONS + "/{subscription_id}"]) == {"get", "delete"}
    link = document["paths"][JOBS + "/{jobId}/file"]["get"]
    assert "302" in link["responses"] and "security" not in link
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert [status for status in responses if status.startswith("2")] or path.endswith("/file"), (method, path)
            # The signed link answers with a redirect, and 204 No Content has no body: neither is described as JSON.
            successes = [entry for status, entry in responses.items() if status.startswith("2") and status != "204"]
            assert all("$ref" in entry["content"]["application/json"]["schema"] for entry in successes), (method, path)
            for status, entry in responses.items():
                schema = entry.get("content", {}).get("application/json", {}).get("schema")
                if status == "401":
                    # The gateway's authorizer answers with its own body; the function with the envelope.
                    rejection = {"$ref": "#/components/schemas/AuthorizerRejection"}
                    assert schema["anyOf"] == [envelope, rejection], (method, path)
                elif int(status) >= 400:
                    assert schema == envelope, (method, path, status)
    create = document["paths"][JOBS]["post"]
    assert {"201", "200", "400", "401", "403", "409"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateJobRequest"
    }
    assert create["security"] == [{"bearerAuth": []}]
    reexport = document["paths"][REEXPORTS]["post"]
    assert {"202", "200", "400", "401", "403", "404", "409"} <= set(reexport["responses"])
    assert reexport["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateReexportRequest"
    }
    update = document["paths"][REEXPORTS + "/{reexport_id}"]["put"]
    assert "if-match" in {parameter["name"].lower() for parameter in update["parameters"]}
    assert {"200", "409"} <= set(update["responses"])
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"Job", "JobPage", "ErrorEnvelope", "CreateJobRequest"} <= set(schemas)
    assert {"Reexport", "ReexportPage", "UpdateReexportRequest", "HistoryPage"} <= set(schemas)


def test_swagger_ui_renders_without_a_cdn(api):
    response = api.call("GET", "/api-docs", authenticated=False)

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in response.body
    assert "<script src=" not in response.body
    assert "stylesheet' type='text/css' href=" not in response.body
    assert '"/api/v1/reports/jobs"' in response.body


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v2/nothing"), ("PUT", JOBS), ("GET", "/"), ("PATCH", JOBS + "/x")]
)
def test_unknown_routes_answer_404_in_the_envelope(api, method, path):
    response = api.call(method, path)

    assert (response.status, response.error_code) == (404, "NOT_FOUND")
    assert response.json["error"]["traceId"].startswith("req-")


def test_an_unexpected_failure_is_500_internal_without_internals(api, aws):
    aws.dynamodb.delete_table(TableName=aws.table_name)

    response = api.create_job()

    assert (response.status, response.error_code) == (500, "INTERNAL")
    assert "ResourceNotFound" not in response.body
    assert "Traceback" not in response.body


def test_the_put_schema_of_a_reexport_says_it_needs_something_to_do(api):
    schema = api.call("GET", "/api-docs/openapi.json", authenticated=False).json["components"]["schemas"][
        "UpdateReexportRequest"
    ]

    assert schema["anyOf"] == [
        {"required": ["new_file"], "properties": {"new_file": {"type": "object"}}},
        {"required": ["notification_sent"], "properties": {"notification_sent": {"const": True}}},
    ]
    assert api.call("PUT", f"{REEXPORTS}/019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f", body={}).status == 400


def test_every_operation_that_reaches_aws_documents_its_503(api, aws):
    # rest.py answers 503 SERVICE_UNAVAILABLE on any route when AWS cannot be reached (or throttles).
    document = api.call("GET", "/api-docs/openapi.json", authenticated=False).json
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "401" in operation.get("responses", {}) and "503" not in operation["responses"]
    ]

    assert missing == []
