"""POST /api/v1/feeds (I5) and the API tokens behind it."""

from __future__ import annotations

from typing import Any

import pytest

from practices.models import ApiToken, FeedImport, Patient
from practices.services import api_token_issue, api_token_revoke
from tests.factories import OrganizationFactory, feed_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental")


@pytest.fixture
def token(org):
    return api_token_issue(organization=org, name="PMS sync")[1]


def post(client, body: bytes, token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/feeds", data=body, content_type="application/json", **headers)


def test_a_good_feed_answers_200_with_the_command_summary(client, token, feed_bytes):
    response = post(client, feed_bytes(patients=[feed_patient("P1")]), token)
    assert response.status_code == 200
    assert response.json() == {"applied": 1, "rejected": 0, "errors": [], "warnings": []}
    assert FeedImport.objects.get().source == "api"


def test_rejected_records_answer_207_with_pointers(client, token, feed_bytes):
    response = post(
        client,
        feed_bytes(patients=[feed_patient("P1"), feed_patient("P2", first_name="", last_name="")]),
        token,
    )
    assert response.status_code == 207
    assert response.json()["errors"] == [{"pointer": "/patients/1/last_name", "message": "is required"}]
    assert Patient.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"generated_at": "2026-11-24T06:00:00Z", "patients": {}}',
        b'{"patients": []}',
        b"\xff\xfe",
    ],
)
def test_a_document_that_is_not_a_feed_answers_400_with_a_reason(client, token, body):
    response = post(client, body, token)
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert message and "\n" not in message and "Traceback" not in message


def test_a_stale_feed_answers_409(client, token, feed_bytes):
    assert (
        post(
            client, feed_bytes(generated_at="2026-11-24T06:00:00Z", patients=[feed_patient("P1")]), token
        ).status_code
        == 200
    )
    response = post(
        client, feed_bytes(generated_at="2026-11-20T06:00:00Z", patients=[feed_patient("P1")]), token
    )
    assert response.status_code == 409


@pytest.mark.parametrize("token_value", [None, "dun_wrong"])
def test_a_missing_or_unknown_token_answers_401(client, token, feed_bytes, token_value):
    response = post(client, feed_bytes(patients=[feed_patient("P1")]), token_value)
    assert response.status_code == 401
    assert not Patient.objects.exists()


def test_a_revoked_token_answers_401(client, org, feed_bytes):
    issued, plaintext = api_token_issue(organization=org, name="old")
    api_token_revoke(token=issued)
    assert post(client, feed_bytes(patients=[feed_patient("P1")]), plaintext).status_code == 401


def test_a_token_cannot_import_for_another_organization(client, token, feed_bytes):
    OrganizationFactory.create(slug="other-practice")
    response = post(client, feed_bytes(organization="other-practice", patients=[feed_patient("P1")]), token)
    assert response.status_code == 403
    assert not Patient.objects.exists()


def test_tokens_are_stored_hashed(org):
    issued, plaintext = api_token_issue(organization=org, name="PMS sync")
    stored = ApiToken.objects.get(pk=issued.pk)
    assert plaintext not in (stored.token_hash, stored.prefix)
    assert len(stored.token_hash) == 64
    assert plaintext.startswith(stored.prefix)


def test_the_openapi_schema_is_published(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/feeds" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/feeds"]


def _balance(**buckets: Any) -> dict[str, Any]:
    return {"0_30": "10.00", "31_60": "0", "61_90": "0", "over_90": "0", "insurance_estimate": "0", **buckets}


# Issue 11's hand-made triggers; each answered 500 and lost the whole feed. A bad record is a 207 with its
# pointer (the rest applied), a bad document a 400; never a 500.
BAD_RECORDS = [
    ({"first_name": "A\u0000na"}, "/patients/1/first_name"),
    ({"last_name": "Di\ud800az"}, "/patients/1/last_name"),
    ({"open_claims": 2147483648}, "/patients/1/open_claims"),
    ({"balance": _balance(**{"0_30": "9999999999.99", "31_60": "9999999999.99"})}, "/patients/1/balance"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "at"), BAD_RECORDS, ids=[at for _, at in BAD_RECORDS])
def test_a_record_the_database_cannot_hold_is_rejected_with_its_pointer_and_the_rest_applied(
    client, token, feed_bytes, overrides, at
):
    raw = feed_bytes(patients=[feed_patient("P1"), feed_patient("P2", **overrides)])
    response = post(client, raw, token)
    assert response.status_code == 207, response.content
    body = response.json()
    assert (body["applied"], body["rejected"], body["errors"][0]["pointer"]) == (1, 1, at)
    assert Patient.objects.get().external_id == "P1"


def test_a_state_that_upper_cases_past_two_letters_is_a_warning_and_the_patient_is_kept(
    client, token, feed_bytes
):
    # "ßß" upper-cases to "SSSS" (it once failed the whole feed); it names no state (I1a: a warning).
    address = {"line1": "1 Main St", "city": "Provo", "state": "\u00df\u00df", "zip": "84601"}
    response = post(
        client, feed_bytes(patients=[feed_patient("P1"), feed_patient("P2", address=address)]), token
    )
    assert response.status_code == 200, response.content
    assert response.json()["warnings"] == [
        {
            "pointer": "/patients/1/address/state",
            "message": "unknown state 'ßß': stored as missing, the address is invalid",
        }
    ]
    assert Patient.objects.get(external_id="P2").address_status == "invalid"


@pytest.mark.parametrize(
    "body",
    [
        b'{"generated_at": "2026-11-24T06:00:00Z", "patients": [' + b"[" * 1000 + b"]" * 1000 + b"]}",
        b'{"generated_at": "2026-11-24T06:00:00Z", "patients": [{"id": ' + b"9" * 5001 + b"}]}",
        b'{"generated_at": "2026-11-24T06:00:00Z", "patients": [{"id": "P1\x00"}]}',
        b'{"organization": "smile\\u0000", "generated_at": "2026-11-24T06:00:00Z", "patients": []}',
        b'{"generated_at": "2026-02-30T06:00:00Z", "patients": []}',
    ],
    ids=["nested 1000 deep", "5001-digit integer", "raw NUL byte", "NUL in organization", "no such date"],
)
def test_a_document_that_cannot_be_read_answers_400_not_500(client, token, body):
    response = post(client, body, token)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["pointer"] == ""


def test_an_unknown_field_with_a_nul_in_its_name_is_a_warning_not_a_failure(client, token, feed_bytes):
    patient = feed_patient("P1")
    patient["x\u0000y"] = 1
    response = post(client, feed_bytes(patients=[patient]), token)
    assert response.status_code == 200, response.content
    assert response.json()["warnings"][0]["pointer"] == "/patients/0/x\ufffdy"


def test_organization_null_is_refused(client, token):
    body = b'{"organization": null, "generated_at": "2026-11-24T06:00:00Z", "patients": []}'
    assert post(client, body, token).status_code == 400


def test_a_feed_from_the_far_future_answers_409_and_later_feeds_still_apply(client, token, feed_bytes):
    """I0: a PMS clock in the year 9845 is the feed's time conflicting with ours, not a bad document."""
    assert post(client, feed_bytes(generated_at="9845-01-01T00:00:00Z"), token).status_code == 409
    assert post(client, feed_bytes(patients=[feed_patient("P1")]), token).status_code == 200
