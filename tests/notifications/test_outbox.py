"""The outbox (N1) and quiet hours (Q1-Q3)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from notifications.channels import ChannelError
from notifications.models import Channel, Kind, Message, NotificationSettings, OptOut, Reason, State
from notifications.optouts import opt_out_set
from notifications.outbox import (
    message_create,
    message_send,
    message_transition,
    messages_release_due,
    messages_sweep_stale,
)
from notifications.quiet_hours import in_quiet_hours, next_allowed_send
from practices.models import Bill, BillState, TimezoneSource
from tests.factories import GuarantorFactory, OrganizationFactory

DENVER = ZoneInfo("America/Denver")
NEW_YORK = ZoneInfo("America/New_York")


# --- quiet hours -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [(time(20, 59), False), (time(21, 0), True), (time(23, 30), True), (time(3, 0), True), (time(7, 59), True),
     (time(8, 0), False), (time(12, 0), False)],
)  # fmt: skip
def test_in_quiet_hours_wraps_midnight(local, expected):
    assert in_quiet_hours(local, start=time(21), end=time(8)) is expected


def test_a_daytime_message_goes_now():
    now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 in Denver
    assert next_allowed_send(now, DENVER, start=time(21), end=time(8)) == now


def test_an_evening_message_waits_for_8am_next_day_in_the_recipients_zone():
    now = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 22:00 in Denver on the 24th
    assert next_allowed_send(now, DENVER, start=time(21), end=time(8)) == datetime(
        2026, 11, 25, 15, 0, tzinfo=UTC
    )


def test_an_early_morning_message_waits_until_8am_the_same_day():
    now = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # 06:00 in New York
    assert next_allowed_send(now, NEW_YORK, start=time(21), end=time(8)) == datetime(
        2026, 11, 24, 13, 0, tzinfo=UTC
    )


def test_quiet_hours_across_the_spring_forward_change():
    # 2026-03-08 02:00 local in the US: clocks jump to 03:00. 23:00 MST on the 7th → 08:00 MDT on the 8th.
    now = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    release = next_allowed_send(now, DENVER, start=time(21), end=time(8))
    assert release == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)  # 08:00 MDT is UTC-6
    assert release.astimezone(DENVER).hour == 8


def test_quiet_hours_across_the_fall_back_change():
    # 2026-11-01: clocks fall back at 02:00. 22:00 MDT on Oct 31 → 08:00 MST on Nov 1 (UTC-7).
    now = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    release = next_allowed_send(now, DENVER, start=time(21), end=time(8))
    assert release == datetime(2026, 11, 1, 15, 0, tzinfo=UTC)
    assert release.astimezone(DENVER).hour == 8


# --- creating messages -------------------------------------------------------------------------------


def _message(patient, *, channel=Channel.SMS, destination="+18015550100", bill=None, **kw) -> Message:
    return Message(organization=patient.organization, patient=patient, channel=channel, kind=Kind.REQUEST,
                   body="Hi Ana. Reply STOP to opt out.", destination=destination, bill=bill, **kw)  # fmt: skip


@pytest.fixture
def patient(db):
    return GuarantorFactory.create(
        organization=OrganizationFactory.create(timezone="America/Denver"), mobile_phone="+18015550100"
    )


@pytest.mark.django_db
def test_a_message_inside_quiet_hours_is_held_until_morning_in_the_recipients_zone(patient):
    patient.timezone, patient.timezone_source = "America/New_York", TimezoneSource.FEED
    patient.save()
    # 22:30 in New York (20:30 in Denver, the organization's zone): the recipient's zone decides (Q1, Q3).
    with time_machine.travel(datetime(2026, 11, 25, 3, 30, tzinfo=UTC), tick=False):
        message = message_create(_message(patient))
    assert (message.state, message.reason) == (State.SCHEDULED, Reason.QUIET_HOURS)
    assert message.scheduled_for == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_organizations_quiet_hours_setting_applies(patient):
    NotificationSettings.objects.create(
        organization=patient.organization, quiet_start=time(18), quiet_end=time(9)
    )
    with time_machine.travel(datetime(2026, 11, 25, 1, 30, tzinfo=UTC), tick=False):  # 18:30 Denver
        assert message_create(_message(patient)).state == State.SCHEDULED


@pytest.mark.django_db
def test_paper_is_never_held(patient):
    with time_machine.travel(datetime(2026, 11, 25, 5, 0, tzinfo=UTC), tick=False):  # 22:00 Denver
        message = message_create(
            _message(patient, channel=Channel.PAPER, destination="", postal_address={"line1": "1 Main"})
        )
    assert message.state == State.PENDING


@pytest.mark.django_db
def test_a_message_without_a_destination_is_undeliverable(patient):
    message = message_create(_message(patient, destination=""))
    assert (message.state, message.reason) == (State.UNDELIVERED, Reason.NO_DESTINATION)


@pytest.mark.django_db
def test_pending_messages_are_queued_only_after_commit(
    patient, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("notifications.tasks.send_message.delay", lambda pk: queued.append(pk))
    with (
        time_machine.travel(datetime(2026, 11, 24, 17, 0, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        message = message_create(_message(patient))
        assert queued == []
    assert queued == [message.pk]


# --- the state machine -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_transitions_never_move_backwards(patient):
    message = message_create(_message(patient))
    Message.objects.filter(pk=message.pk).update(state=State.DELIVERED)
    assert message_transition(message_id=message.pk, to=State.SENT) is False
    assert message_transition(message_id=message.pk, to=State.SENDING) is False
    assert Message.objects.get(pk=message.pk).state == State.DELIVERED


@pytest.mark.django_db
def test_an_unknown_message_can_still_be_resolved_by_the_provider(patient):
    message = message_create(_message(patient))
    Message.objects.filter(pk=message.pk).update(state=State.UNKNOWN)
    assert message_transition(message_id=message.pk, to=State.DELIVERED) is True


@pytest.mark.django_db
def test_a_step_is_stored_once_per_bill_generation_and_channel(patient):
    from django.db import IntegrityError

    bill = _bill(patient)
    message_create(_message(patient, bill=bill, generation=1, step_key="step-1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        message_create(_message(patient, bill=bill, generation=1, step_key="step-1"))
    message_create(_message(patient, bill=bill, generation=2, step_key="step-1"))  # a reset: new generation


def _bill(patient, state=BillState.ACTIVE) -> Bill:
    moment = datetime(2026, 11, 20, tzinfo=UTC)
    return Bill.objects.create(organization=patient.organization, guarantor=patient, bill_id=f"B-{patient.pk}",
                               source="request", amount_due="50.00", created_at=moment,
                               effective_created_date=moment.date(), last_seen_at=moment, state=state)  # fmt: skip


# --- sending -----------------------------------------------------------------------------------------


DAYTIME = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


class FakeChannel:
    def __init__(self, error: ChannelError | None = None) -> None:
        self.error = error
        self.sent: list[int] = []

    def send(self, message: Message) -> str:
        self.sent.append(message.pk)
        if self.error:
            raise self.error
        return f"SM{message.pk:032d}"


@pytest.fixture
def channel(monkeypatch):
    fake = FakeChannel()
    monkeypatch.setattr("notifications.outbox.channel_for", lambda name: fake)
    return fake


def _pending(patient, **kw) -> Message:
    with time_machine.travel(DAYTIME, tick=False):
        return message_create(_message(patient, **kw))


@pytest.mark.django_db
def test_a_claimed_message_is_sent_once(patient, channel):
    message = _pending(patient)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.SENT
    assert message_send(message_id=message.pk, now=DAYTIME) == ""  # a second delivery of the task
    message.refresh_from_db()
    assert (message.state, message.provider_id, message.attempts) == (State.SENT, f"SM{message.pk:032d}", 1)
    assert channel.sent == [message.pk]


@pytest.mark.django_db
def test_a_held_message_is_not_sent_before_its_time(patient, channel):
    with time_machine.travel(datetime(2026, 11, 25, 5, 0, tzinfo=UTC), tick=False):
        message = message_create(_message(patient))
    assert message_send(message_id=message.pk, now=datetime(2026, 11, 25, 6, 0, tzinfo=UTC)) == ""
    assert channel.sent == []


@pytest.mark.django_db
def test_a_message_whose_campaign_ended_is_cancelled_before_sending(patient, channel):
    bill = _bill(patient)
    message = _pending(patient, bill=bill)
    Bill.objects.filter(pk=bill.pk).update(state=BillState.PAID)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.CANCELLED
    assert Message.objects.get(pk=message.pk).reason == Reason.BILL_NOT_ACTIVE
    assert channel.sent == []


@pytest.mark.django_db
def test_a_completed_bills_message_goes(patient, channel):
    """D11, N1: the engine completes a bill when it decides the last step; that step (the final notice)
    must still reach the provider."""
    bill = _bill(patient)
    message = _pending(patient, bill=bill, generation=1)
    Bill.objects.filter(pk=bill.pk).update(state=BillState.COMPLETED)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.SENT
    assert channel.sent == [message.pk]


@pytest.mark.django_db
def test_a_message_of_a_generation_before_a_reset_is_cancelled(patient, channel):
    bill = _bill(patient)
    message = _pending(patient, bill=bill, generation=1)
    Bill.objects.filter(pk=bill.pk).update(generation=2)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.CANCELLED
    assert Message.objects.get(pk=message.pk).reason == Reason.OLDER_GENERATION
    assert channel.sent == []


@pytest.mark.django_db
def test_a_do_not_contact_patient_is_cancelled_before_sending(patient, channel):
    message = _pending(patient)
    patient.do_not_contact = True
    patient.save()
    assert message_send(message_id=message.pk, now=DAYTIME) == State.CANCELLED
    assert channel.sent == []


@pytest.mark.django_db
def test_an_opt_out_received_after_creation_stops_the_send(patient, channel):
    message = _pending(patient)
    OptOut.objects.create(organization=patient.organization, channel="sms", address=patient.mobile_phone,
                          source="sms_keyword", changed_at=DAYTIME)  # fmt: skip
    assert message_send(message_id=message.pk, now=DAYTIME) == State.CANCELLED
    assert channel.sent == []


@pytest.mark.django_db
def test_a_stop_cancels_every_pending_and_scheduled_sms_to_that_number(patient):
    pending = _pending(patient)
    with time_machine.travel(datetime(2026, 11, 25, 5, 0, tzinfo=UTC), tick=False):
        scheduled = message_create(_message(patient))
    email = _pending(patient, channel=Channel.EMAIL, destination="ana@example.com")
    opt_out_set(organization=patient.organization, channel="sms", address=patient.mobile_phone, active=True,
                source="sms_keyword", keyword="STOP")  # fmt: skip
    states = dict(Message.objects.values_list("pk", "state"))
    assert states[pending.pk] == states[scheduled.pk] == State.CANCELLED
    assert states[email.pk] == State.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "state", "reason"),
    [
        (ChannelError("landline", permanent=True, reason="landline", code="21614", undeliverable=True), State.UNDELIVERED, "landline"),
        (ChannelError("bad", permanent=True, code="21211", reason="invalid_number", undeliverable=True), State.UNDELIVERED, "invalid_number"),
        (ChannelError("nope", permanent=True, code="20003"), State.FAILED, "provider_failed"),
        (ChannelError("stop", permanent=True, code="21610", opted_out=True), State.CANCELLED, "opted_out"),
    ],
)  # fmt: skip
def test_provider_errors(patient, monkeypatch, error, state, reason):
    fake = FakeChannel(error)
    monkeypatch.setattr("notifications.outbox.channel_for", lambda name: fake)
    message = _pending(patient)
    assert message_send(message_id=message.pk, now=DAYTIME) == state
    message.refresh_from_db()
    assert (message.state, message.reason, message.error_code) == (state, reason, error.code)


@pytest.mark.django_db
def test_21610_records_an_opt_out(patient, monkeypatch):
    fake = FakeChannel(ChannelError("stop", permanent=True, code="21610", opted_out=True))
    monkeypatch.setattr("notifications.outbox.channel_for", lambda name: fake)
    message_send(message_id=_pending(patient).pk, now=DAYTIME)
    assert OptOut.objects.get(address=patient.mobile_phone).source == "provider_error"


@pytest.mark.django_db
def test_a_transient_error_is_retried_later_through_the_database(patient, monkeypatch):
    fake = FakeChannel(ChannelError("503", permanent=False))
    monkeypatch.setattr("notifications.outbox.channel_for", lambda name: fake)
    message = _pending(patient)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.SCHEDULED
    message.refresh_from_db()
    assert message.scheduled_for is not None and message.scheduled_for > DAYTIME
    assert message.attempts == 1


@pytest.mark.django_db
def test_a_maybe_sent_message_stays_sending_and_the_sweeper_marks_it_unknown(patient, monkeypatch):
    fake = FakeChannel(ChannelError("read timeout", permanent=False, maybe_sent=True))
    monkeypatch.setattr("notifications.outbox.channel_for", lambda name: fake)
    message = _pending(patient)
    assert message_send(message_id=message.pk, now=DAYTIME) == State.SENDING
    assert messages_sweep_stale(now=DAYTIME.replace(minute=5)) == 0
    assert messages_sweep_stale(now=DAYTIME.replace(hour=18)) == 1
    message.refresh_from_db()
    assert (message.state, message.reason) == (State.UNKNOWN, Reason.STALE_SENDING)
    assert message_send(message_id=message.pk, now=DAYTIME.replace(hour=19)) == ""  # never resent


@pytest.mark.django_db
def test_the_tick_queues_held_messages_whose_time_has_come(patient, monkeypatch):
    queued = []
    monkeypatch.setattr("notifications.tasks.send_message.delay", lambda pk: queued.append(pk))
    with time_machine.travel(datetime(2026, 11, 25, 5, 0, tzinfo=UTC), tick=False):
        held = message_create(_message(patient))
    assert messages_release_due(now=datetime(2026, 11, 25, 14, 59, tzinfo=UTC)) == 0
    assert messages_release_due(now=datetime(2026, 11, 25, 15, 0, tzinfo=UTC)) == 1
    assert queued == [held.pk]


@pytest.mark.django_db
@pytest.mark.parametrize(("attempts_before", "state", "reason"), [
    (0, State.SCHEDULED, ""), (3, State.SCHEDULED, ""), (4, State.FAILED, Reason.RETRIES_EXHAUSTED),
])  # fmt: skip
def test_a_transient_error_is_retried_until_the_fifth_attempt_fails_for_good(
    patient, monkeypatch, attempts_before, state, reason
):
    """N1 retries: attempts 1-4 are retried later; the fifth transient failure ends the message as failed."""
    fake = FakeChannel(ChannelError("HTTP 503", permanent=False))
    monkeypatch.setattr("notifications.outbox.channel_for", lambda name: fake)
    message = _pending(patient)
    Message.objects.filter(pk=message.pk).update(attempts=attempts_before)

    assert message_send(message_id=message.pk, now=DAYTIME) == state

    message.refresh_from_db()
    assert (message.state, message.reason, message.attempts) == (state, reason, attempts_before + 1)
