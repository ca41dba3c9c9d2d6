"""Signed download tokens: genuine, unexpired and for this job, or refused with the right code."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from api.paging import CursorCodec
from report_export.aws.secrets import secret_source
from report_export.core.errors import Forbidden, Unauthorized
from report_export.core.signing import Signer, b64url_decode, b64url_encode
from report_export.jobs.links import DOWNLOAD_TOKEN_PURPOSE, DownloadGrant, DownloadTokens, LinkExpired

SECRET_PARAMETER = "/report-export/signing-secret"
TENANT = "tenant-a"
JOB_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"
OTHER_JOB_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e90"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


@pytest.fixture
def tokens(aws):
    return DownloadTokens(Signer(secret_source(SECRET_PARAMETER), purpose=DOWNLOAD_TOKEN_PURPOSE))


def issue(tokens, *, tenant=TENANT, job_id=JOB_ID, expires_at=LATER):
    return tokens.issue(DownloadGrant(tenant_id=tenant, job_id=job_id, expires_at=expires_at))


def resign_claims(token, **changes):
    """The token with its claims edited and the original signature kept."""
    payload, signature = token.split(".")
    claims = {**json.loads(b64url_decode(payload)), **changes}
    return f"{b64url_encode(json.dumps(claims, sort_keys=True, separators=(',', ':')).encode())}.{signature}"


def test_a_token_round_trips_to_its_grant(tokens):
    token = issue(tokens)

    grant = tokens.verify(token, job_id=JOB_ID, now=NOW)

    assert grant == DownloadGrant(tenant_id=TENANT, job_id=JOB_ID, expires_at=LATER)


def test_a_token_is_url_safe_and_carries_only_tenant_job_and_expiry(tokens):
    token = issue(tokens)

    payload, signature = token.split(".")
    assert all(character.isalnum() or character in "-_" for character in payload + signature)
    assert json.loads(b64url_decode(payload)) == {"tenant": TENANT, "job": JOB_ID, "exp": int(LATER.timestamp())}


def test_the_expiry_is_kept_to_the_whole_second(tokens):
    token = issue(tokens, expires_at=LATER + timedelta(milliseconds=999))

    assert tokens.verify(token, job_id=JOB_ID, now=NOW).expires_at == LATER


def test_a_token_is_valid_until_the_second_before_its_expiry(tokens):
    token = issue(tokens)

    assert tokens.verify(token, job_id=JOB_ID, now=LATER - timedelta(seconds=1)).job_id == JOB_ID


@pytest.mark.parametrize("after", [timedelta(0), timedelta(seconds=1), timedelta(days=30)])
def test_an_expired_token_is_link_expired(tokens, after):
    token = issue(tokens)

    with pytest.raises(LinkExpired) as raised:
        tokens.verify(token, job_id=JOB_ID, now=LATER + after)

    assert (raised.value.status, raised.value.code) == (401, "LINK_EXPIRED")
    assert isinstance(raised.value, Unauthorized)


def test_a_token_for_another_job_is_forbidden(tokens):
    token = issue(tokens, job_id=OTHER_JOB_ID)

    with pytest.raises(Forbidden) as raised:
        tokens.verify(token, job_id=JOB_ID, now=NOW)

    assert (raised.value.status, raised.value.code) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": int((LATER + timedelta(days=365)).timestamp())},
        {"job": OTHER_JOB_ID},
        {"tenant": "tenant-b"},
        {"extra": True},
    ],
)
def test_edited_claims_are_refused(tokens, changes):
    token = resign_claims(issue(tokens), **changes)
    job_id = changes.get("job", JOB_ID)

    with pytest.raises(Unauthorized) as raised:
        tokens.verify(token, job_id=job_id, now=NOW)

    assert raised.value.code == "UNAUTHORIZED"


def test_an_edited_signature_is_refused(tokens):
    payload, signature = issue(tokens).split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    with pytest.raises(Unauthorized) as raised:
        tokens.verify(f"{payload}.{flipped}", job_id=JOB_ID, now=NOW)

    assert raised.value.code == "UNAUTHORIZED"


def test_an_expired_token_with_an_edited_expiry_is_still_refused_as_forged(tokens):
    token = resign_claims(issue(tokens, expires_at=NOW - timedelta(days=1)), exp=int(LATER.timestamp()))

    with pytest.raises(Unauthorized) as raised:
        tokens.verify(token, job_id=JOB_ID, now=NOW)

    assert raised.value.code == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b.c", ".", "..", "!!!.???", "eyJ9.xx", "é.é", "eyJ9.é", "eyJ9.\x00", "a" * 1024],
)
def test_garbage_is_unauthorized_never_another_error(tokens, garbage):
    with pytest.raises(Unauthorized) as raised:
        tokens.verify(garbage, job_id=JOB_ID, now=NOW)

    assert raised.value.code == "UNAUTHORIZED"


def test_a_value_signed_for_another_purpose_is_refused(tokens, aws):
    genuine = issue(tokens)
    payload = b64url_decode(genuine.split(".")[0])
    cursor_signer = Signer(secret_source(SECRET_PARAMETER), purpose="list-cursor")
    cursor = CursorCodec(cursor_signer).encode(after=JOB_ID, fingerprint="f")

    with pytest.raises(Unauthorized):
        tokens.verify(f"{b64url_encode(payload)}.{cursor_signer.sign(payload)}", job_id=JOB_ID, now=NOW)
    with pytest.raises(Unauthorized):
        tokens.verify(cursor, job_id=JOB_ID, now=NOW)


def test_a_token_signed_with_another_secret_is_refused(tokens, aws):
    aws.ssm.put_parameter(Name="/other/secret", Type="SecureString", Value="another-secret")
    foreign = DownloadTokens(Signer(secret_source("/other/secret"), purpose=DOWNLOAD_TOKEN_PURPOSE))

    with pytest.raises(Unauthorized):
        tokens.verify(issue(foreign), job_id=JOB_ID, now=NOW)


def respellings(token: str) -> list[str]:
    """The same token with characters a lenient base64 decoder skips or tolerates slipped in."""
    payload, signature = token.split(".")
    middle = len(payload) // 2
    return [
        f"{payload[:middle]}\x00{payload[middle:]}.{signature}",
        f"{payload}==.{signature}",
        f"{payload}.{signature}==",
        f"{payload[:middle]},{payload[middle:]}.{signature}",
        f"{payload[:middle]} {payload[middle:]}.{signature}",
        f"{payload}\n.{signature}",
        f"{payload}.{signature}\n",
        f"{payload[:middle]}+{payload[middle:]}.{signature}",
        f"{payload}.{signature}.",
        f".{payload}.{signature}",
        f"{payload.replace('-', '+').replace('_', '/')}.{signature.replace('-', '+').replace('_', '/')}",
    ]


def test_a_token_has_exactly_one_spelling(tokens):
    genuine = issue(tokens)

    assert tokens.verify(genuine, job_id=JOB_ID, now=NOW).job_id == JOB_ID
    for respelled in respellings(genuine):
        if respelled == genuine:
            continue  # a token without - or _ has no standard-alphabet twin
        with pytest.raises(Unauthorized):
            tokens.verify(respelled, job_id=JOB_ID, now=NOW)


def test_a_payload_spelled_with_unused_trailing_bits_is_refused(tokens):
    # The last base64 character of a payload whose length is not a multiple of 3 carries bits that decode
    # to nothing: changing them gives the same bytes under another text.
    genuine = issue(tokens)
    payload, signature = genuine.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twins = [
        f"{payload[:-1]}{char}.{signature}"
        for char in alphabet
        if char != payload[-1] and b64url_decode(payload[:-1] + char) == b64url_decode(payload)
    ]
    signature_twins = [
        f"{payload}.{signature[:-1]}{char}"
        for char in alphabet
        if char != signature[-1] and b64url_decode(signature[:-1] + char) == b64url_decode(signature)
    ]

    assert signature_twins  # a 16-byte signature always leaves 4 bits unused
    for twin in twins + signature_twins:
        with pytest.raises(Unauthorized):
            tokens.verify(twin, job_id=JOB_ID, now=NOW)


def test_claims_signed_as_non_canonical_json_are_refused(aws):
    signer = Signer(secret_source(SECRET_PARAMETER), purpose=DOWNLOAD_TOKEN_PURPOSE)
    sealed = signer.seal({"a": 1, "b": 2})
    spaced = b'{"b": 2, "a": 1}'

    assert signer.open(sealed) == {"a": 1, "b": 2}
    assert signer.open(f"{b64url_encode(spaced)}.{signer.sign(spaced)}") is None
