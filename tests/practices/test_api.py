"""POST /api/v1/feeds (I5) and the API tokens behind it."""

from __future__ import annotations

import pytest

from practices.models import ApiToken, FeedImport, Patient
from practices.services import api_token_issue, api_token_revoke
from tests.factories import OrganizationFactory, feed_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory(slug="smile-dental")


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
        client, feed_bytes(patients=[feed_patient("P1"), feed_patient("P2", first_name="")]), token
    )
    assert response.status_code == 207
    assert response.json()["errors"] == [{"pointer": "/patients/1/first_name", "message": "is required"}]
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
    OrganizationFactory(slug="other-practice")
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
