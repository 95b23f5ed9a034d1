"""K2 for paper: a letter over the frequency cap of its guarantor or household waits, with its reason, for the
first batch after it fits; it is never dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifications.letters.batch import letter_batch_render
from notifications.models import Channel, Kind, Message, NotificationSettings, Reason, State
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

NIGHT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # the nightly batch, 02:00 in Denver


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_a_letter_over_the_household_cap_waits_for_the_first_batch_after_it_fits():
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", return_address_line1="1 Main St",
                                     return_address_city="Salt Lake City", return_address_state="UT",
                                     return_address_zip="84101")  # fmt: skip
    NotificationSettings.objects.create(organization=org, frequency_cap="2/7d")
    ana = GuarantorFactory.create(organization=org, mobile_phone="+18015550100", address_line1="2 Elm St",
                                  address_city="Salt Lake City", address_state="UT", address_zip="84101")  # fmt: skip
    ben = GuarantorFactory.create(organization=org, mobile_phone="+18015550100", address_line1="2 Elm St",
                                  address_city="Salt Lake City", address_state="UT", address_zip="84101")  # fmt: skip
    AccountFactory.create(guarantor=ben)
    for days in (3, 1):  # two texts to the shared number this week
        Message.objects.create(organization=org, patient=ana, channel=Channel.SMS, kind=Kind.REMINDER,
                               destination=ana.mobile_phone, state=State.SENT, sent_at=NIGHT - timedelta(days=days))  # fmt: skip
    letter = Message.objects.create(organization=org, patient=ben, channel=Channel.PAPER, kind=Kind.STATEMENT,
                                    body="Your statement", postal_address={})  # fmt: skip

    assert letter_batch_render(organization=org, now=NIGHT) is None
    letter.refresh_from_db()
    assert (letter.state, letter.reason) == (State.SCHEDULED, Reason.HOUSEHOLD_CAP)
    assert letter.scheduled_for == NIGHT + timedelta(days=4)  # the older text leaves the 7 days
    assert letter_batch_render(organization=org, now=NIGHT + timedelta(days=3)) is None

    batch = letter_batch_render(organization=org, now=NIGHT + timedelta(days=4))
    assert batch is not None and batch.letter_count == 1
    letter.refresh_from_db()
    assert (letter.state, letter.batch_id, letter.reason) == (State.SENDING, batch.pk, "")
