"""Issue 15's Done-when (Q3): no message leaves inside quiet hours in any zone its recipient may be in, for real
places at US time-zone borders, around both DST nights of 2026 (Sunday March 8 and Sunday November 1).

Each place is a real ZIP (with its town) or a real area code for a phone-only patient, with the zones a person
there may actually be in (the truth, from 49 CFR Part 71, the IANA tzdata zone comments and the Navajo Nation's
DST, see practices/zone_corrections.py). Patients are stored as the importer stores them (``derive_timezone``),
with no ``timezone`` in the feed. Messages are created every 50 minutes for 36 hours across each DST night, then
the outbox tick runs every 10 minutes through the real SMS channel to the local fake of Twilio; the time each one
reached the fake provider is checked against 21:00-08:00 in every true zone, and it must not be held longer than
the first tick at which every true zone allows it plus the cautious set's extra zones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from notifications.models import Channel, Kind, Message, Reason, State
from notifications.outbox import message_create, messages_send_due, recipient_zones
from notifications.providers.twilio import reset_client
from notifications.quiet_hours import in_quiet_hours
from practices.timezones import derive_timezone
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

QUIET = (time(21), time(8))

# (place, ZIP, mobile number, the zones a person there may be in)
PLACES = [
    ("Tuba City AZ, Navajo Nation (DST) and Moenkopi, Hopi (no DST)", "86045", "", {"America/Denver", "America/Phoenix"}),
    ("Kayenta AZ, Navajo Nation", "86033", "", {"America/Denver"}),
    ("Kykotsmovi AZ, Hopi Reservation", "86039", "", {"America/Phoenix"}),
    ("phone-only 928: Flagstaff or the Navajo Nation", "", "+19285550143", {"America/Phoenix", "America/Denver"}),
    ("Gary IN, Lake County (Central)", "46402", "", {"America/Chicago"}),
    ("phone-only 219, NW Indiana", "", "+12195550143", {"America/Chicago"}),
    ("Pensacola FL, west of the Apalachicola (Central)", "32501", "", {"America/Chicago"}),
    ("Tallahassee FL (Eastern)", "32301", "", {"America/New_York"}),
    ("phone-only 850, Florida panhandle", "", "+18505550143", {"America/Chicago", "America/New_York"}),
    ("El Paso TX (Mountain)", "79901", "", {"America/Denver"}),
    ("phone-only 915, El Paso", "", "+19155550143", {"America/Denver"}),
    ("Paducah KY (Central)", "42001", "", {"America/Chicago"}),
    ("Elizabethtown KY, Hardin County (Eastern, area code 270)", "42701", "", {"America/New_York"}),
    ("phone-only 270, western Kentucky", "", "+12705550143", {"America/Chicago", "America/New_York"}),
    ("Ironwood MI, Gogebic County (Central)", "49938", "", {"America/Menominee"}),
    ("Iron Mountain MI, Dickinson County (Central)", "49801", "", {"America/Menominee"}),
    ("phone-only 906, Upper Peninsula", "", "+19065550143", {"America/Detroit", "America/Menominee"}),
    ("Adak AK (Hawaii-Aleutian)", "99546", "", {"America/Adak"}),
    ("phone-only 907, Alaska", "", "+19075550143", {"America/Anchorage", "America/Adak"}),
    ("Hagatna, Guam (Chamorro time)", "96910", "", {"Pacific/Guam"}),
    ("phone-only 671, Guam", "", "+16715550143", {"Pacific/Guam"}),
    ("San Juan PR (Atlantic, no DST)", "00901", "", {"America/Puerto_Rico"}),
    ("phone-only 787, Puerto Rico", "", "+17875550143", {"America/Puerto_Rico"}),
    ("Charlotte Amalie, St Thomas USVI (Atlantic, no DST)", "00802", "", {"America/St_Thomas"}),
    ("phone-only 340, USVI", "", "+13405550143", {"America/St_Thomas"}),
    ("phone-only 701, North Dakota", "", "+17015550143", {"America/Chicago", "America/Denver"}),
]  # fmt: skip

DST_NIGHTS = [datetime(2026, 3, 7, 18, 0, tzinfo=UTC), datetime(2026, 10, 31, 18, 0, tzinfo=UTC)]
CREATE_EVERY, HOURS, TICK = timedelta(minutes=50), 36, timedelta(minutes=10)


@pytest.fixture
def fake_twilio(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        reset_client()
        yield fake
        reset_client()


def quiet_somewhere(moment: datetime, zones: set[str]) -> list[str]:
    return [
        z
        for z in zones
        if in_quiet_hours(moment.astimezone(ZoneInfo(z)).time(), start=QUIET[0], end=QUIET[1])
    ]


def guarantors(org):
    patients = []
    for index, (place, zip_code, phone, truth) in enumerate(PLACES):
        tz, source = derive_timezone(explicit="", zip_code=zip_code, phone=phone)
        patient = GuarantorFactory.create(
            organization=org, external_id=f"B{index:02d}", last_name=place[:100], address_zip=zip_code,
            mobile_phone=phone or f"+1801555{index:04d}", timezone=tz, timezone_source=source,
        )  # fmt: skip
        patients.append((patient, truth))
    return patients


@pytest.mark.parametrize("start", DST_NIGHTS, ids=["spring-forward-2026-03-08", "fall-back-2026-11-01"])
def test_no_message_leaves_inside_quiet_hours_in_any_true_zone_of_a_border_place(fake_twilio, start):
    # The practice is in New York: a fallback to its zone would text Guam, Adak and Arizona at night.
    org = OrganizationFactory.create(slug="border", timezone="America/New_York")
    people = guarantors(org)
    created_at: dict[int, datetime] = {}
    truth_of: dict[int, set[str]] = {}
    moment, end = start, start + timedelta(hours=HOURS)
    next_create = start
    while moment <= end + timedelta(hours=30):  # the last ones need the following morning
        if moment >= next_create and next_create <= end:
            with time_machine.travel(moment, tick=False):
                for patient, truth in people:
                    message = message_create(
                        Message(organization=org, patient=patient, channel=Channel.SMS, kind=Kind.REMINDER,
                                body="Border Dental: your balance is due. Reply STOP to opt out.",
                                destination=patient.mobile_phone),
                        now=moment,
                    )  # fmt: skip
                    created_at[message.pk], truth_of[message.pk] = moment, truth
                    if message.state == State.SCHEDULED:
                        assert message.reason == Reason.QUIET_HOURS and message.hold_detail
            next_create += CREATE_EVERY
        with time_machine.travel(moment, tick=False):
            messages_send_due(organization=org, now=moment)
        moment += TICK

    sent = dict(Message.objects.filter(organization=org).values_list("pk", "sent_at"))
    assert len(sent) == len(created_at) and all(sent.values()), (
        "every message is sent in the end, none dropped"
    )
    assert len(fake_twilio.messages) == len(sent)
    for pk, at in sent.items():
        assert at is not None
        assert not quiet_somewhere(at, truth_of[pk]), (pk, at, truth_of[pk])
        # Not held past the first tick at which every candidate zone allows it (the latest end of the window).
        created = created_at[pk]
        due = created
        zones = set(recipient_zones(Message.objects.get(pk=pk).patient))
        while quiet_somewhere(due, zones):
            due += timedelta(minutes=1)
        first_tick = start + ((due - start + TICK - timedelta(microseconds=1)) // TICK) * TICK
        assert at <= max(first_tick, created), (pk, created, at, due)


@pytest.mark.parametrize(("place", "zip_code", "phone", "truth"), PLACES, ids=[p[0][:40] for p in PLACES])
def test_each_border_places_candidate_zones_cover_its_true_zones(place, zip_code, phone, truth):
    org = OrganizationFactory.build(timezone="America/New_York")
    tz, source = derive_timezone(explicit="", zip_code=zip_code, phone=phone)
    patient = GuarantorFactory.build(organization=org, address_zip=zip_code, mobile_phone=phone, timezone=tz,
                                     timezone_source=source)  # fmt: skip
    assert truth <= set(recipient_zones(patient)), place
