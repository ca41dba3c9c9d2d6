import pytest

from api.paging import CursorCodec, query_fingerprint
from report_export.aws.secrets import secret_source
from report_export.core.errors import InvalidCursor
from report_export.core.signing import Signer, b64url_decode, b64url_encode

JOB_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"


@pytest.fixture
def codec(aws):
    return CursorCodec(Signer(secret_source("/report-export/signing-secret"), purpose="list-cursor"))


def test_a_cursor_round_trips_for_the_same_query(codec):
    fingerprint = query_fingerprint(tenant="t1", status="queued", job_type=None)

    cursor = codec.encode(after=JOB_ID, fingerprint=fingerprint)

    assert codec.decode(cursor, fingerprint=fingerprint) == JOB_ID


def test_a_cursor_is_refused_for_another_query(codec):
    cursor = codec.encode(after=JOB_ID, fingerprint=query_fingerprint(tenant="t1", status=None, job_type=None))

    with pytest.raises(InvalidCursor, match="different query"):
        codec.decode(cursor, fingerprint=query_fingerprint(tenant="t2", status=None, job_type=None))


def test_an_edited_cursor_is_refused(codec):
    fingerprint = query_fingerprint(tenant="t1", status=None, job_type=None)
    payload, signature = codec.encode(after=JOB_ID, fingerprint=fingerprint).split(".")
    edited = b64url_decode(payload).replace(b"019a8f0e", b"019a8f0f")

    with pytest.raises(InvalidCursor):
        codec.decode(f"{b64url_encode(edited)}.{signature}", fingerprint=fingerprint)


def test_a_cursor_signed_for_another_purpose_is_refused(aws):
    fingerprint = query_fingerprint(tenant="t1", status=None, job_type=None)
    other = CursorCodec(Signer(secret_source("/report-export/signing-secret"), purpose="download-token"))
    codec = CursorCodec(Signer(secret_source("/report-export/signing-secret"), purpose="list-cursor"))

    with pytest.raises(InvalidCursor):
        codec.decode(other.encode(after=JOB_ID, fingerprint=fingerprint), fingerprint=fingerprint)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "!!!.???", "eyJ9.xx", "." * 3])
def test_garbage_is_refused(codec, garbage):
    with pytest.raises(InvalidCursor):
        codec.decode(garbage, fingerprint="f")


@pytest.mark.parametrize("payload", [b"[1, 2]", b"not json", b'"a string"', b"42"])
def test_a_genuinely_signed_cursor_that_is_no_position_is_refused_not_a_crash(payload):
    from api.paging import CursorCodec
    from report_export.core.errors import InvalidCursor
    from report_export.core.signing import Signer, b64url_encode

    signer = Signer(lambda: b"a shared key", purpose="list-cursor")
    cursor = f"{b64url_encode(payload)}.{signer.sign(payload)}"

    with pytest.raises(InvalidCursor):
        CursorCodec(signer).decode(cursor, fingerprint="f")
