from conftest import valid_job_request


def test_create_then_get(api, aws):
    created = api.create_job(valid_job_request())
    assert created.status == 201, created.body
    fetched = api.call("GET", f"/api/v1/reports/jobs/{created.json['id']}")
    assert fetched.status == 200, fetched.body
    print(created.body)
