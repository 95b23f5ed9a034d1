"""A real round trip (issue 3, N1/N2): a Celery worker on the local Redis takes a message from pending to
sent through the real Twilio SDK (faked at the HTTP transport), then a validly signed status callback makes
it delivered. Needs Redis; skipped without one unless REQUIRE_SERVICES=1."""

from __future__ import annotations

import time
from datetime import time as dt_time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from dunning_project.celery import app
from notifications.models import Channel, Kind, Message, NotificationSettings, State
from notifications.outbox import message_create
from notifications.providers import twilio
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN, FakeTwilio

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID = FAKE_ACCOUNT_SID
        settings.TWILIO_AUTH_TOKEN = FAKE_AUTH_TOKEN
        settings.TWILIO_API_BASE_URL = fake.base_url
        settings.TWILIO_FROM_NUMBER = "+15005550006"
        settings.TWILIO_ENABLED = True
        settings.PUBLIC_BASE_URL = "http://testserver"
        twilio.reset_client()
        yield fake
        twilio.reset_client()


@pytest.fixture
def worker():
    import notifications.tasks  # noqa: F401  (registers the tasks on the app)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_sends_a_message_and_a_signed_callback_delivers_it(fake_twilio, worker, client):
    patient = GuarantorFactory.create(
        organization=OrganizationFactory.create(timezone="UTC"), mobile_phone="+18015550100", timezone="UTC"
    )
    # No quiet hours for this organization (start == end), so the test passes at any hour of the day.
    NotificationSettings.objects.create(
        organization=patient.organization, quiet_start=dt_time(0), quiet_end=dt_time(0)
    )
    with transaction.atomic():
        message = message_create(
            Message(organization=patient.organization, patient=patient, channel=Channel.SMS, kind=Kind.REQUEST,
                    body="Smile: a payment of $50.00 is due. Reply STOP to opt out.", destination=patient.mobile_phone),
        )  # fmt: skip
    assert message.state == State.PENDING

    assert _wait_for(lambda: Message.objects.get(pk=message.pk).state == State.SENT), Message.objects.get(
        pk=message.pk
    ).state
    message.refresh_from_db()
    [sent] = fake_twilio.accepted()
    assert sent["To"] == "+18015550100"
    assert sent["StatusCallback"] == f"http://testserver/webhooks/twilio/status/{message.pk}/"
    assert message.provider_id == sent["sid"]

    data = {"MessageSid": message.provider_id, "MessageStatus": "delivered", "AccountSid": FAKE_ACCOUNT_SID}
    signature = twilio.compute_signature(url=sent["StatusCallback"], params=data)
    response = client.post(f"/webhooks/twilio/status/{message.pk}/", data, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    assert Message.objects.get(pk=message.pk).state == State.DELIVERED
