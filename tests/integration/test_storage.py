import hashlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import orjson
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from report_export.aws.multipart import (
    MAX_OBJECT_BYTES,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    MultipartUpload,
    UploadState,
    planned_part_size,
)
from report_export.aws.s3 import (
    attachment_disposition,
    object_exists,
    presigned_download_url,
)

BUCKET = "report-export-files-test"
REGION = "eu-west-1"
PART = 5 * MIB  # S3's smallest allowed part; moto enforces it on completion as S3 does


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def upload(client: Any, key: str = "tenant-a/job-1/report.csv", **overrides: Any) -> MultipartUpload:
    options = {
        "bucket": BUCKET,
        "key": key,
        "content_type": "text/csv",
        "content_disposition": 'attachment; filename="report.csv"',
        "part_size": PART,
    }
    options.update(overrides)
    return MultipartUpload(client, **options)


def payload(size: int, seed: int = 7) -> bytes:
    # Incompressible and seeded: a byte in the wrong place changes the digest.
    return random.Random(seed).randbytes(size)


def chunks(data: bytes, size: int = 300_007) -> Iterator[bytes]:
    # An odd chunk size, so part boundaries fall inside chunks.
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_bytes(client: Any, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def unfinished_uploads(client: Any) -> list[dict[str, Any]]:
    return client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


class ObservedS3:
    """Passes calls to the emulated S3, recording concurrent part uploads and failing on demand."""

    def __init__(self, client: Any, *, part_delay: float = 0.0, fail_part: int | None = None) -> None:
        self._client = client
        self._part_delay = part_delay
        self._fail_part = fail_part
        self._lock = threading.Lock()
        self._uploading = 0
        self.max_concurrent_parts = 0
        self.part_sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_part(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            self._uploading += 1
            self.max_concurrent_parts = max(self.max_concurrent_parts, self._uploading)
            self.part_sizes.append(len(request["Body"]))
        try:
            time.sleep(self._part_delay)
            if request["PartNumber"] == self._fail_part:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")
            return self._client.upload_part(**request)
        finally:
            with self._lock:
                self._uploading -= 1


def test_given_more_than_three_parts_of_data_when_completed_then_the_object_matches_the_returned_digest(s3):
    data = payload(3 * PART + 123_456)
    sink = upload(s3)

    for chunk in chunks(data):
        sink.write(chunk)
    stored = sink.complete()

    body = stored_bytes(s3, "tenant-a/job-1/report.csv")
    assert body == data
    assert stored.parts == 4
    assert stored.size_bytes == len(body) == len(data)
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert (stored.bucket, stored.key) == (BUCKET, "tenant-a/job-1/report.csv")
    head = s3.head_object(Bucket=BUCKET, Key="tenant-a/job-1/report.csv")
    assert head["ETag"].endswith('-4"')  # S3's multipart ETag: digest of part digests, then the part count


def test_given_a_multipart_object_then_its_headers_are_set_and_content_encoding_is_not(s3):
    sink = upload(
        s3, key="k.csv.gz", content_type="application/gzip", content_disposition='attachment; filename="k.csv.gz"'
    )
    for chunk in chunks(payload(2 * PART)):
        sink.write(chunk)
    sink.complete()

    head = s3.head_object(Bucket=BUCKET, Key="k.csv.gz")
    assert head["ContentType"] == "application/gzip"
    assert head["ContentDisposition"] == 'attachment; filename="k.csv.gz"'
    assert head["ServerSideEncryption"] == "AES256"
    assert "ContentEncoding" not in head


def test_given_exactly_two_parts_of_data_when_completed_then_no_empty_third_part_is_sent(s3):
    observed = ObservedS3(s3)
    data = payload(2 * PART)
    sink = upload(observed)

    for chunk in chunks(data):
        sink.write(chunk)
    stored = sink.complete()

    assert observed.part_sizes == [PART, PART]
    assert stored.parts == 2
    assert stored_bytes(s3, "tenant-a/job-1/report.csv") == data


def test_given_less_than_one_part_when_completed_then_one_put_stores_it_with_its_headers(s3):
    data = b"farm_id,day\r\nfarm-1,2025-01-01\r\n"
    sink = upload(s3)

    sink.write(data[:10])
    sink.write(data[10:])
    stored = sink.complete()

    assert stored.parts == 1
    assert sink.upload_id is None  # no multipart upload was started for a small file
    assert stored_bytes(s3, "tenant-a/job-1/report.csv") == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    head = s3.head_object(Bucket=BUCKET, Key="tenant-a/job-1/report.csv")
    assert head["ContentType"] == "text/csv"
    assert head["ContentDisposition"] == 'attachment; filename="report.csv"'
    assert "ContentEncoding" not in head


def test_given_no_bytes_when_completed_then_an_empty_object_is_stored(s3):
    sink = upload(s3)

    sink.write(b"")
    stored = sink.complete()

    assert stored.size_bytes == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert stored_bytes(s3, "tenant-a/job-1/report.csv") == b""
    assert unfinished_uploads(s3) == []


def test_given_parts_upload_slowly_then_no_more_than_max_parts_in_flight_upload_at_once(s3):
    observed = ObservedS3(s3, part_delay=0.2)
    data = payload(5 * PART)
    sink = upload(observed, max_parts_in_flight=2)

    for chunk in chunks(data):
        sink.write(chunk)
    stored = sink.complete()

    # Two at once shows the overlap with writing; never three keeps memory bounded.
    assert observed.max_concurrent_parts == 2
    assert stored.parts == 5
    assert stored_bytes(s3, "tenant-a/job-1/report.csv") == data


def test_given_a_part_upload_fails_then_a_later_call_raises_it_and_abort_leaves_nothing(s3):
    observed = ObservedS3(s3, fail_part=2)
    sink = upload(observed)

    with pytest.raises(ClientError, match="injected"):
        for chunk in chunks(payload(4 * PART)):
            sink.write(chunk)
        sink.complete()
    with pytest.raises(ClientError, match="injected"):
        sink.complete()  # the failure sticks: nothing can complete a broken upload
    sink.abort()

    assert not object_exists(s3, bucket=BUCKET, key="tenant-a/job-1/report.csv")
    assert unfinished_uploads(s3) == []


def test_given_parts_were_uploaded_when_aborted_then_no_object_and_no_unfinished_upload_remain(s3):
    sink = upload(s3)
    for chunk in chunks(payload(2 * PART + 10)):
        sink.write(chunk)
    assert len(unfinished_uploads(s3)) == 1

    sink.abort()
    sink.abort()  # a second abort is harmless

    assert unfinished_uploads(s3) == []
    assert not object_exists(s3, bucket=BUCKET, key="tenant-a/job-1/report.csv")
    with pytest.raises(RuntimeError, match="aborted"):
        sink.write(b"more")


def test_given_an_exception_inside_the_block_then_the_upload_is_aborted_and_the_exception_propagates(s3):
    class Cancelled(Exception):
        pass

    with pytest.raises(Cancelled), upload(s3) as sink:
        for chunk in chunks(payload(PART + 1)):
            sink.write(chunk)
        raise Cancelled

    assert sink.upload_id is not None  # a part had gone, so there was an upload to abort
    assert unfinished_uploads(s3) == []
    assert not object_exists(s3, bucket=BUCKET, key="tenant-a/job-1/report.csv")


def test_given_the_block_is_left_without_complete_then_the_upload_is_aborted(s3):
    with upload(s3) as sink:
        for chunk in chunks(payload(PART + 1)):
            sink.write(chunk)

    assert sink.upload_id is not None
    assert unfinished_uploads(s3) == []
    assert not object_exists(s3, bucket=BUCKET, key="tenant-a/job-1/report.csv")


def test_given_complete_inside_the_block_then_leaving_it_keeps_the_object(s3):
    with upload(s3) as sink:
        sink.write(b"a,b\r\n")
        stored = sink.complete()

    assert object_exists(s3, bucket=BUCKET, key=stored.key)
    with pytest.raises(RuntimeError, match="completed"):
        sink.write(b"late")


@pytest.mark.parametrize("part_size", [5 * MIB - 1, 6 * 1024 * MIB])
def test_given_a_part_size_outside_s3_limits_then_the_upload_is_refused(s3, part_size):
    with pytest.raises(ValueError, match="part_size"):
        upload(s3, part_size=part_size)


def test_given_a_stored_file_when_presigned_then_the_url_forces_an_attachment_and_expires(s3):
    s3.put_object(Bucket=BUCKET, Key="tenant-a/job-1/report.csv", Body=b"a,b\r\n")

    url = presigned_download_url(
        s3, bucket=BUCKET, key="tenant-a/job-1/report.csv", file_name="feed_intake_export.csv", ttl_seconds=900
    )

    query = parse_qs(urlsplit(url).query)
    assert query["response-content-disposition"] == ['attachment; filename="feed_intake_export.csv"']
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "X-Amz-Signature" in query
    response = requests.get(url, timeout=5)  # moto answers this in process
    assert response.status_code == 200
    assert response.content == b"a,b\r\n"
    assert response.headers["Content-Disposition"] == 'attachment; filename="feed_intake_export.csv"'


def test_given_a_client_without_explicit_sigv4_when_presigning_then_it_is_refused_rather_than_signed_with_sigv2(s3):
    default_client = boto3.client("s3", region_name=REGION)

    with pytest.raises(RuntimeError, match="s3v4"):
        presigned_download_url(default_client, bucket=BUCKET, key="k", file_name="k.csv", ttl_seconds=60)


@pytest.mark.parametrize("ttl", [0, 7 * 24 * 3600 + 1])
def test_given_a_ttl_outside_sigv4_limits_when_presigning_then_it_is_refused(s3, ttl):
    with pytest.raises(ValueError, match="ttl_seconds"):
        presigned_download_url(s3, bucket=BUCKET, key="k", file_name="k.csv", ttl_seconds=ttl)


@pytest.mark.parametrize(
    ("file_name", "disposition"),
    [
        ("report-2025.csv.gz", 'attachment; filename="report-2025.csv.gz"'),
        ('a"b\\c\r\n.csv', "attachment; filename=\"a_b_c__.csv\"; filename*=UTF-8''a%22b%5Cc%0D%0A.csv"),
        ("rapport é.csv", "attachment; filename=\"rapport__.csv\"; filename*=UTF-8''rapport%20%C3%A9.csv"),
    ],
)
def test_given_a_file_name_then_the_disposition_quotes_it_safely(file_name, disposition):
    assert attachment_disposition(file_name) == disposition


# --- an upload carried on by another sink (another invocation) ------------------------------------


def carried_over(state: UploadState) -> UploadState:
    """The state as the next invocation gets it: the JSON part through a database item, the pending bytes apart."""
    return UploadState.from_json(orjson.loads(orjson.dumps(state.as_json())), bytes(state.pending))


@pytest.mark.parametrize("cut", [0, 1_000, PART - 1, PART, 2 * PART + 12_345])
def test_given_an_upload_suspended_and_resumed_by_a_new_sink_then_the_object_is_one_uninterrupted_write(s3, cut):
    data = payload(3 * PART + 4_321)
    first = upload(s3)
    for chunk in chunks(data[:cut]):
        first.write(chunk)
    state = first.suspend()
    with pytest.raises(RuntimeError, match="suspended"):
        first.write(b"late")

    second = upload(s3, resume=carried_over(state))
    for chunk in chunks(data[cut:]):
        second.write(chunk)
    stored = second.complete()

    assert stored_bytes(s3, stored.key) == data
    assert (stored.size_bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert stored.parts == 4
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_given_a_writer_that_went_on_past_its_last_state_and_died_then_a_resume_from_that_state_makes_the_object(s3):
    data = payload(3 * PART + 99)
    writer = upload(s3, key="a.csv")
    for chunk in chunks(data[: PART + 10]):
        writer.write(chunk)
    state = writer.state()  # a checkpoint, after which the writer goes on
    for chunk in chunks(data[PART + 10 : 3 * PART]):
        writer.write(chunk)
    writer.suspend()  # its process dies here: parts after the checkpoint are in S3, the upload is open

    resumed = upload(s3, key="a.csv", resume=carried_over(state))
    for chunk in chunks(data[PART + 10 :]):
        resumed.write(chunk)  # the same bytes again: the parts after the checkpoint are replaced
    stored = resumed.complete()

    assert stored_bytes(s3, "a.csv") == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert unfinished_uploads(s3) == []


def test_given_a_resumed_upload_that_lacks_an_earlier_part_then_completing_it_is_refused(s3):
    data = payload(PART + 10)
    first = upload(s3)
    for chunk in chunks(data):
        first.write(chunk)
    state = first.suspend()
    other = s3.create_multipart_upload(Bucket=BUCKET, Key=state.key)["UploadId"]  # an upload with no parts
    resumed = upload(s3, resume=replace(carried_over(state), upload_id=other))

    with pytest.raises(RuntimeError, match="0 of its 1 earlier parts"):
        resumed.complete()
    resumed.abort()


def test_given_a_resume_under_another_key_then_it_is_refused(s3):
    state = upload(s3).suspend()
    with pytest.raises(ValueError, match="its own key"):
        upload(s3, key="elsewhere.csv", resume=state)


def test_the_part_plan_keeps_to_s3_limits_and_reaches_the_largest_supported_object():
    sizes = [planned_part_size(number) for number in range(1, MAX_PARTS + 1)]

    assert all(MIN_PART_SIZE <= size <= MAX_PART_SIZE for size in sizes)
    assert sizes == sorted(sizes)  # parts grow with the file
    assert sum(sizes) == MAX_OBJECT_BYTES > 400 * 1024 * MIB
    assert sizes[0] == 8 * MIB and max(sizes) == 64 * MIB
    with pytest.raises(ValueError):
        planned_part_size(MAX_PARTS + 1)
