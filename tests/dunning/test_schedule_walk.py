"""Every send decision of every shipped preset ends in a message that left us (D11, N1, L1).

A few bills are walked day by day through each preset the data migration ships
(``dunning/migrations/0002_presets.py``), doing each day what production does: the feed import in the morning
(day 0), the daily dunning run at the organization's ``run_at`` (``run_dunning``), the outbox tick through the
real channels right after it and again at noon (``messages_send_due``, the ``send_due`` service: quiet hours
hold what was decided at 07:00 for a recipient still before 08:00 and the noon tick lets it go), a payment
request from the front desk (``send_request``, B4), the nightly letter batch (``letter_batch_render``) and ops
marking it mailed (``letter_batch_mark_mailed``). Then the test reads what left us, not what the engine decided:

- SMS: the real twilio SDK posts to the local fake of Twilio's Messages API (``tests/fakes/twilio_server.py``:
  ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with Twilio's form fields To, From, Body,
  StatusCallback and its 201 reply carrying the message ``sid``); the fake's log holds each request.
- Email: anymail's test backend (``anymail.backends.test.EmailBackend``), which puts each message the ESP would
  have received in ``django.core.mail.outbox`` with ``anymail_test_params`` (our ``message_id`` metadata).
- Paper: the mailed ``LetterBatch``: its messages, its PDF (pages counted with pypdf) and its CSV manifest.

The guarantors are PMS records imported through the feed importer (§3): E.164 mobiles in the 555-01xx range,
emails, valid US addresses and their IANA zones (Denver, New York, Los Angeles). The walk starts on Monday
2026-10-12 and crosses the end of daylight saving time (2026-11-01).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from pypdf import PdfReader

from dunning.engine import run_dunning
from dunning.models import Action, DunningDecision, Preset, SkipReason
from dunning.selectors import dunning_settings_get
from notifications import paylinks
from notifications.letters.batch import letter_batch_mark_mailed, letter_batch_render
from notifications.models import BatchState, Channel, Kind, LetterBatch, Message, State
from notifications.outbox import messages_send_due
from notifications.providers.twilio import reset_client
from payments.campaigns import send_request
from payments.links import payment_link_lookup
from practices.importer import feed_import
from practices.models import Bill, BillSource, BillState, Organization
from practices.org_settings import org_settings_update
from practices.services import organization_create
from tests.factories import UserFactory
from tests.fakes.anymail import sent_params
from tests.fakes.twilio_server import FAKE_FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.django_db

# Collected before the test database exists, so read from the data migration; the last test checks that the
# migrated database holds exactly these presets, so a preset shipped another way fails until it is walked.
SHIPPED = sorted(importlib.import_module("dunning.migrations.0002_presets").PRESETS)
EXPECTED_PRESETS = {"standard-30", "accelerated-14", "electronic-only"}

D0 = date(2026, 10, 12)  # a Monday; daylight saving time ends on 2026-11-01
ZONE = "America/Denver"
LATE_BY = 40  # the late bill's statement is 40 days old when it is first imported (D2 catch-up)
AFTER_LAST_STEP = 5  # days walked past the preset's last step
LEFT = (State.SENT, State.DELIVERED)


@pytest.fixture
def providers(settings: Any, tmp_path: Path) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = fake.account_sid, fake.auth_token
        settings.TWILIO_API_BASE_URL, settings.TWILIO_ENABLED = fake.base_url, True
        settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER = "", FAKE_FROM_NUMBER
        settings.EMAIL_BACKEND, settings.EMAIL_ENABLED = "anymail.backends.test.EmailBackend", True
        settings.MEDIA_ROOT = tmp_path / "media"
        reset_client()
        yield fake
        reset_client()


def _guarantor(pid: str, first: str, last: str, mobile: str, address: dict[str, str], zone: str,
               balance: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    return {
        "id": pid, "guarantor_id": pid, "first_name": first, "last_name": last, "date_of_birth": "1981-03-14",
        "email": f"{first}.{last}@example.com".lower(), "mobile_phone": mobile, "address": {"line2": "", **address},
        "timezone": zone, "last_visit_date": "2026-08-20", "on_payment_plan": False,
        "balance": {"0_30": "0", "31_60": "0", "61_90": "0", "over_90": "0", "insurance_estimate": "0", **balance},
    }  # fmt: skip


def _feed(slug: str) -> bytes:
    """Day 0's PMS feed: a statement of today, a statement 40 days old (imported late) and a guarantor with a
    balance but no statement, who gets a payment request."""
    late = D0 - timedelta(days=LATE_BY)
    patients = [
        _guarantor("P1042", "Ana", "Diaz", "+18015550142",
                   {"line1": "1420 S State St", "city": "Salt Lake City", "state": "UT", "zip": "84115"},
                   "America/Denver", {"0_30": "185.40"}),
        _guarantor("P2087", "Kwame", "Mensah", "+17185550187",
                   {"line1": "77 Court St Apt 4B", "city": "Brooklyn", "state": "NY", "zip": "11201"},
                   "America/New_York", {"31_60": "420.00"}),
        _guarantor("P3133", "Mei", "Chen", "+12135550133",
                   {"line1": "350 S Grand Ave", "city": "Los Angeles", "state": "CA", "zip": "90071"},
                   "America/Los_Angeles", {"0_30": "116.75", "insurance_estimate": "20.00"}),
    ]  # fmt: skip
    statements = [
        {"bill_id": "S-24017", "guarantor_id": "P1042", "statement_date": D0.isoformat(),
         "due_date": (D0 + timedelta(days=20)).isoformat(), "amount_due": "185.40", "reset_bill": False},
        {"bill_id": "S-23871", "guarantor_id": "P2087", "statement_date": late.isoformat(),
         "due_date": (late + timedelta(days=20)).isoformat(), "amount_due": "420.00", "reset_bill": False},
    ]  # fmt: skip
    generated = datetime.combine(D0, time(6), tzinfo=ZoneInfo(ZONE)).isoformat()
    return json.dumps(
        {"organization": slug, "generated_at": generated, "patients": patients, "statements": statements}
    ).encode()


@contextmanager
def _clock(day: date, at: time) -> Iterator[datetime]:
    """The organization's local ``at`` on ``day``, for the clock and for the services' ``now``."""
    moment = datetime.combine(day, at, tzinfo=ZoneInfo(ZONE))
    with time_machine.travel(moment, tick=False):
        yield moment


def _walk(preset: Preset) -> Organization:
    """Onboard a practice on ``preset`` (every other setting its default), import day 0's feed, send the
    request, and walk every day until a few days past the preset's last step."""
    with _clock(D0 - timedelta(days=1), time(9)):
        org = organization_create(
            slug=f"walk-{preset.slug}", name="Wasatch Family Dental", timezone_name=ZONE
        )
        Organization.objects.filter(pk=org.pk).update(
            phone="(801) 555-0199", email_from="billing@wasatch-dental.example", return_address_line1="100 S Main St",
            return_address_city="Salt Lake City", return_address_state="UT", return_address_zip="84101",
        )  # fmt: skip
        org.refresh_from_db()
        org_settings_update(organization=org, assignments=[f"preset={preset.slug}"], actor_label="test")
    ops = UserFactory.create(username=f"ops-{preset.slug}", is_superuser=True)
    run_at = dunning_settings_get(organization=org).run_at
    days = max(preset.steps.values_list("bill_age_days", flat=True)) + AFTER_LAST_STEP

    with _clock(D0, time(6)):
        summary = feed_import(raw=_feed(org.slug), organization=org)
    assert (summary.applied, summary.rejected, summary.errors) == (5, 0, [])

    for day in (D0 + timedelta(days=offset) for offset in range(days + 1)):
        with _clock(day, run_at) as now:  # the daily run (beat), then the outbox tick
            run_dunning(organization=org, on=day, now=now)
            messages_send_due(organization=org, now=now)
        if day == D0:
            with _clock(day, time(10)) as now:  # the front desk sends a payment request (B4)
                send_request(organization=org, guarantor_id="P3133", at=now)
        with _clock(day, time(12)) as now:  # a later tick: what quiet hours held at run_at goes now
            messages_send_due(organization=org, now=now)
        with _clock(day, time(22)) as now:  # the nightly letter batch; ops hand it to the mail house
            batch = letter_batch_render(organization=org, batch_date=day, now=now)
            if batch is not None:
                assert letter_batch_mark_mailed(batch=batch, user=ops, now=now) == batch.letter_count
    return org


def _mailed_letters(org: Organization) -> dict[int, LetterBatch]:
    """Message id → the mailed batch it went in, after checking each batch's PDF and manifest hold it."""
    mailed: dict[int, LetterBatch] = {}
    for batch in LetterBatch.objects.filter(organization=org, state=BatchState.MAILED):
        with batch.pdf.open("rb") as pdf:
            pages = len(PdfReader(io.BytesIO(pdf.read())).pages)
        with batch.manifest.open("rb") as manifest:
            listed = {int(row["message_id"]) for row in csv.DictReader(io.StringIO(manifest.read().decode()))}
        ids = set(batch.messages.values_list("pk", flat=True))
        assert batch.letter_count == len(ids) > 0
        assert pages >= batch.letter_count
        assert listed == ids
        mailed.update(dict.fromkeys(ids, batch))
    return mailed


def _left_us(message: Message | None, twilio: FakeTwilio, emails: dict[str, list[Any]],
             letters: dict[int, LetterBatch]) -> bool:  # fmt: skip
    """The message reached its provider exactly once, to its recipient, carrying its payment link; the stored
    body holds the link's place only, never its token (P1, T4)."""
    if message is None:
        return False
    pay_url = paylinks.pay_url(message.context)
    assert "/p/" in pay_url and pay_url not in message.body
    if message.channel == Channel.SMS:
        posts = [m for m in twilio.messages if m["sid"] and m["sid"] == message.provider_id]
        return [(p["To"], pay_url in p["Body"]) for p in posts] == [(message.patient.mobile_phone, True)]
    if message.channel == Channel.EMAIL:
        sent = emails.get(str(message.pk), [])
        return [(e.to, pay_url in e.body) for e in sent] == [([message.patient.email], True)]
    return message.pk in letters


@pytest.mark.parametrize("slug", SHIPPED)
def test_every_send_decision_of_the_preset_leaves_us(slug: str, providers: FakeTwilio) -> None:
    preset = Preset.objects.get(slug=slug)
    steps = sorted(preset.steps.values_list("bill_age_days", "kind", "channel"))
    org = _walk(preset)

    sends = list(
        DunningDecision.objects.filter(organization=org, action=Action.SEND)
        .select_related("bill", "message__patient")
        .order_by("bill__bill_id", "step_age_days", "channel")
    )
    requests = list(Message.objects.filter(organization=org, kind=Kind.REQUEST).select_related("patient"))
    emails: dict[str, list[Any]] = {}
    for email in mail.outbox:
        emails.setdefault(sent_params(email)["metadata"]["message_id"], []).append(email)
    letters = _mailed_letters(org)

    def trail(d: DunningDecision) -> tuple[Any, ...]:
        m = d.message
        return (d.bill.bill_id, d.step_age_days, d.kind, d.channel, m and m.state, m and m.reason)

    # The one assertion that matters: every message the engine decided to send left us.
    assert [trail(d) for d in sends if d.message is None or d.message.state not in LEFT] == []
    assert [trail(d) for d in sends if not _left_us(d.message, providers, emails, letters)] == []
    assert [(m.channel, m.state, m.reason) for m in requests if m.state not in LEFT] == []
    assert all(_left_us(m, providers, emails, letters) for m in requests)
    assert {m.channel for m in requests} == {Channel.SMS, Channel.EMAIL}

    # Nothing else left, and nothing left twice: the providers saw exactly these messages.
    out = Counter(d.channel for d in sends) + Counter(m.channel for m in requests)
    assert len(providers.messages) == len(providers.accepted()) == out[Channel.SMS]
    assert len(mail.outbox) == out[Channel.EMAIL]
    assert len(letters) == out[Channel.PAPER]
    assert (out[Channel.PAPER] > 0) == any(channel == Channel.PAPER for _, _, channel in steps)

    # The bill that starts on day 0 got the whole schedule, and it ended completed (D11).
    on_time = sorted((d.step_age_days, d.kind, d.channel) for d in sends if d.bill.bill_id == "S-24017")
    assert on_time == steps
    bills = {b.bill_id: b for b in Bill.objects.filter(organization=org)}
    assert len(bills) == 3
    assert {b.state for b in bills.values()} == {BillState.COMPLETED}

    # The late bill (D2): on day 0 only the latest due step of each channel went; the earlier were superseded.
    day0 = DunningDecision.objects.filter(bill=bills["S-23871"], run_date=D0)
    latest = {c: max(a for a, _, other in steps if other == c and a <= LATE_BY) for _, _, c in steps}
    went = day0.filter(action=Action.SEND).values_list("channel", "step_age_days")
    assert sorted(went) == sorted(latest.items())
    assert set(day0.filter(action=Action.SKIP).values_list("reason", flat=True)) == {SkipReason.SUPERSEDED}

    # The request bill (B5): its age-0 steps were the request itself; every later step went.
    request_bill = next(b for b in bills.values() if b.source == BillSource.REQUEST)
    skipped = DunningDecision.objects.filter(bill=request_bill, action=Action.SKIP)
    assert sorted(skipped.values_list("step_age_days", "reason")) == [
        (0, SkipReason.REQUEST) for a, _, _ in steps if a == 0
    ]
    assert sorted((d.step_age_days, d.kind, d.channel) for d in sends if d.bill == request_bill) == [
        s for s in steps if s[0] > 0
    ]

    # Above all the final notices: on every channel of the preset's final step, each bill's went and left, and
    # its payment link opens the day after (D11: a completed bill's link keeps working).
    final_channels = {channel for _, kind, channel in steps if kind == "final"}
    assert final_channels
    finals = [d for d in sends if d.kind == "final"]
    assert sorted((d.bill.bill_id, d.channel) for d in finals) == sorted(
        (bill_id, channel) for bill_id in bills for channel in final_channels
    )
    for decision in finals:
        message = decision.message
        assert message is not None and message.sent_at is not None, trail(decision)
        token = paylinks.pay_url(message.context).rstrip("/").rsplit("/", 1)[-1]
        day_after = message.sent_at + timedelta(days=1)
        assert payment_link_lookup(token=token, now=day_after) is not None, trail(decision)


def test_the_walk_covers_every_shipped_preset() -> None:
    found = set(Preset.objects.values_list("slug", flat=True))
    assert found >= EXPECTED_PRESETS
    assert found == set(SHIPPED)
