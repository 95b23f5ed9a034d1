"""Payment plans run (H5, R2, D11): activation from the signed card-save confirmation, off-session charges on their
dates exactly once, retries with the patient told, the end of a plan, and the import's re-assertion.

Everything goes through the fake Stripe server (tests/fakes/stripe_server.py) with the real SDK, and its events
are posted, signed with Stripe's scheme, to ``/webhooks/stripe/``. Shapes:
https://docs.stripe.com/payments/save-and-reuse?platform=checkout (a setup-mode Checkout Session leaves a
SetupIntent with the customer's payment method), https://docs.stripe.com/api/setup_intents/object,
https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method (``off_session=true, confirm=true``;
a decline answers 402 ``card_error`` with the PaymentIntent), https://docs.stripe.com/api/idempotent_requests (a
repeated key answers the first result), https://docs.stripe.com/api/events/object. Texts reach the fake Twilio,
emails anymail's test outbox (Django's locmem backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.test import Client

from notifications.models import Channel, Kind, Message, State
from notifications.outbox import messages_send_due
from notifications.providers import twilio
from payments import plans
from payments.confirmations import processor_event_apply
from payments.eligibility import eligible_guarantors
from payments.links import payment_link_create
from payments.models import (
    Checkout,
    Installment,
    InstallmentState,
    Payment,
    PaymentLink,
    PaymentPlan,
    PlanKind,
    PlanState,
    ProcessorEvent,
)
from payments.plans import installments_charge_due, plan_cancel, plan_start, plans_reassert_after_import
from payments.processors import get_processor
from payments.processors.base import SavedCard
from payments.processors.sandbox import hosted_outcome
from payments.tasks import charge_due_installments, receipt_email
from practices.models import AuditEvent, Bill, BillSource, BillState, Organization, Patient
from tests.concurrency import in_threads
from tests.factories import GuarantorFactory, OrganizationFactory, UserFactory, feed_patient
from tests.fakes.stripe_server import DECLINING_PAYMENT_METHOD, FakeStripe
from tests.fakes.twilio_server import FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN, FakeTwilio
from tests.payments.paying import sandbox_events

WEBHOOK = "/webhooks/stripe/"
# 10:00 in Denver (MST) on Thursday Dec 3, 2026: inside every sending window.
SIGN_UP = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
JAN_3_10AM = datetime(2027, 1, 3, 17, 0, tzinfo=UTC)
FEB_3_10AM = datetime(2027, 2, 3, 17, 0, tzinfo=UTC)


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = server.secret_key, server.webhook_secret
        settings.STRIPE_API_BASE_URL = server.base_url
        yield server


@pytest.fixture
def fake_twilio(settings: Any) -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = FAKE_ACCOUNT_SID, FAKE_AUTH_TOKEN
        settings.TWILIO_API_BASE_URL = server.base_url
        settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32
        settings.TWILIO_ENABLED = True
        settings.PUBLIC_BASE_URL = "https://billing.example.org"
        twilio.reset_client()
        yield server
        twilio.reset_client()


@pytest.fixture(autouse=True)
def _email_on(settings: Any) -> None:
    settings.EMAIL_ENABLED = True


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(
        slug="smile-dental",
        name="Smile Dental",
        timezone="America/Denver",
        email_from="billing@smile.example",
    )


def campaign_link(organization: Organization, amount: str = "150.00", **guarantor: Any) -> PaymentLink:
    patient = GuarantorFactory.create(
        organization=organization, date_of_birth=date(1980, 4, 12), email="ana@example.com",
        mobile_phone="+13035550123", **guarantor,
    )  # fmt: skip
    bill = Bill.objects.create(
        organization=organization, guarantor=patient, bill_id=f"R-{patient.external_id}", source=BillSource.REQUEST,
        state=BillState.ACTIVE, amount_due=Decimal(amount), created_at=SIGN_UP,
        effective_created_date=date(2026, 11, 20), last_seen_at=SIGN_UP,
    )  # fmt: skip
    return payment_link_create(bill=bill, now=SIGN_UP)[0]


def post(client: Client, fake: FakeStripe, event: dict[str, Any]) -> Any:
    body, header = fake.signed(event)
    return client.post(WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def deliver_all(client: Client, fake: FakeStripe) -> list[str]:
    outcomes = []
    while fake.pending:
        response = post(client, fake, fake.pending.popleft())
        assert response.status_code == 200
        outcomes.append(response.json()["outcome"])
    return outcomes


def sign_up(
    client: Client,
    fake: FakeStripe,
    link: PaymentLink,
    *,
    months: int = 3,
    payment_method: str = "pm_card_visa",
) -> PaymentPlan:
    """The patient chooses ``months`` installments, saves a card on Stripe's page; the signed event arrives."""
    page = plan_start(
        link=link, kind=PlanKind.MONTHLY, months=months, success_url="http://testserver/plan/{reference}/",
        cancel_url="http://testserver/pay/",
    )  # fmt: skip
    fake.complete(page.session_id, payment_method=payment_method)
    assert deliver_all(client, fake) == ["card saved, plan active"]
    return PaymentPlan.objects.get(checkout__session_id=page.session_id)


def intents_created(fake: FakeStripe) -> list[dict[str, Any]]:
    return fake.api_calls("POST", "/v1/payment_intents")


@pytest.mark.django_db
@time_machine.travel(SIGN_UP, tick=False)
def test_the_signed_card_save_activates_the_plan_takes_the_guarantor_off_the_list_and_closes_the_campaign(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    link = campaign_link(organization)
    guarantor = link.bill.guarantor
    assert (
        list(eligible_guarantors(organization=organization, on=date(2026, 12, 3))) == []
    )  # in a campaign (R6)
    Bill.objects.filter(pk=link.bill_id).update(
        state=BillState.PAID
    )  # ... which a payment ends: listed again
    assert [p.pk for p in eligible_guarantors(organization=organization, on=date(2026, 12, 3))] == []
    Bill.objects.filter(pk=link.bill_id).update(state=BillState.ACTIVE)

    plan = sign_up(client, fake, link)

    assert plan.state == PlanState.ACTIVE
    setup = next(iter(fake.setup_intents.values()))
    assert (plan.customer_reference, plan.payment_method_reference) == (
        setup["customer"],
        setup["payment_method"],
    )
    guarantor.refresh_from_db()
    assert guarantor.on_payment_plan is True
    bill = Bill.objects.get(pk=link.bill_id)
    assert (bill.state, bill.ended_at) == (BillState.CLOSED, SIGN_UP)
    rows = list(plan.installments.values_list("state", "next_attempt_at"))
    assert rows == [
        (InstallmentState.SCHEDULED, SIGN_UP),  # the first is due today: charged at the next tick
        (InstallmentState.SCHEDULED, JAN_3_10AM),
        (InstallmentState.SCHEDULED, FEB_3_10AM),
    ]
    assert AuditEvent.objects.get(action="payment_plan.activate").changes["campaigns_closed"] == 1
    # R2 through the rule itself: even with the campaign ended, a guarantor on a plan is not listed.
    Bill.objects.filter(pk=link.bill_id).update(state=BillState.PAID)
    assert guarantor not in eligible_guarantors(organization=organization, on=date(2026, 12, 3))


@pytest.mark.django_db
@time_machine.travel(SIGN_UP, tick=False)
def test_a_replayed_card_save_event_and_a_late_setup_intent_event_change_nothing(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    link = campaign_link(organization)
    plan = sign_up(client, fake, link)
    completed = fake.event_of("checkout.session.completed")
    setup = next(iter(fake.setup_intents.values()))
    before = list(plan.installments.values_list("pk", "state", "next_attempt_at"))

    replay = post(client, fake, completed).json()
    late = post(client, fake, {**completed, "id": "evt_setup_late", "type": "setup_intent.succeeded",
                               "data": {"object": setup}}).json()  # fmt: skip

    assert (replay["duplicate"], replay["outcome"]) == (True, "duplicate")
    assert late["outcome"] == "plan already active"
    assert list(plan.installments.values_list("pk", "state", "next_attempt_at")) == before
    assert AuditEvent.objects.filter(action="payment_plan.activate").count() == 1
    assert PaymentPlan.objects.get().state == PlanState.ACTIVE


@pytest.mark.django_db
def test_setup_intent_succeeded_alone_activates_the_plan(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    """Stripe does not promise the order of events: the SetupIntent's may come before the session's."""
    link = campaign_link(organization)
    page = plan_start(link=link, kind=PlanKind.PAY_LATER, pay_date=date(2027, 1, 15),
                      success_url="http://t/ok/", cancel_url="http://t/no/", now=SIGN_UP)  # fmt: skip
    fake.complete(page.session_id)
    session_event = fake.pending.popleft()
    setup = fake.setup_intents[session_event["data"]["object"]["setup_intent"]]

    answer = post(client, fake, {**session_event, "id": "evt_seti_first", "type": "setup_intent.succeeded",
                                 "data": {"object": setup}}).json()  # fmt: skip
    again = post(client, fake, session_event).json()

    assert (answer["outcome"], again["outcome"]) == ("plan active", "plan already active")
    plan = PaymentPlan.objects.get()
    assert plan.state == PlanState.ACTIVE
    assert Checkout.objects.get(pk=plan.checkout_id).setup_reference == setup["id"]
    [installment] = plan.installments.all()
    assert (installment.due_date, installment.next_attempt_at) == (
        date(2027, 1, 15), datetime(2027, 1, 15, 17, 0, tzinfo=UTC),
    )  # fmt: skip


@pytest.mark.django_db
def test_installments_are_charged_on_their_dates_once_and_the_webhook_does_not_count_them_twice(
    client: Client,
    fake: FakeStripe,
    organization: Organization,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker takes the receipt task at once.
    monkeypatch.setattr("payments.tasks.receipt_email.delay", lambda payment_id: receipt_email(payment_id))
    with time_machine.travel(SIGN_UP, tick=False) as clock, django_capture_on_commit_callbacks(execute=True):
        link = campaign_link(organization, "150.00")
        plan = sign_up(client, fake, link)

        first = installments_charge_due(now=SIGN_UP)
        again = installments_charge_due(now=SIGN_UP + timedelta(minutes=15))
        assert (first.claimed, first.paid, again.claimed) == (1, 1, 0)
        [call] = intents_created(fake)
        one = plan.installments.get(sequence=1)
        assert call["idempotency_key"] == f"{one.idempotency_key}:1"
        assert call["params"]["off_session"] == "true" and call["params"]["confirm"] == "true"
        assert (call["params"]["amount"], call["params"]["customer"]) == ("5000", plan.customer_reference)
        assert call["params"]["metadata"]["installment"] == one.idempotency_key
        # Stripe's own payment_intent.succeeded for the charge finds it recorded.
        assert deliver_all(client, fake) == ["installment already recorded"]
        assert Payment.objects.count() == 1

        # Nothing more until the next date at 10:00 in Denver.
        clock.move_to(JAN_3_10AM - timedelta(minutes=1))
        assert installments_charge_due(now=JAN_3_10AM - timedelta(minutes=1)).claimed == 0
        clock.move_to(JAN_3_10AM)
        assert installments_charge_due(now=JAN_3_10AM).paid == 1
        clock.move_to(FEB_3_10AM)
        assert installments_charge_due(now=FEB_3_10AM).paid == 1
        deliver_all(client, fake)
    messages_send_due(now=FEB_3_10AM)

    payments = list(Payment.objects.order_by("pk"))
    assert [p.amount for p in payments] == [Decimal("50.00")] * 3
    assert [p.processor_reference for p in payments] == [c["id"] for c in fake.payment_intents.values()]
    assert {p.needs_review for p in payments} == {""}  # an installment on a closed campaign is routine
    assert len(intents_created(fake)) == 3
    bill = Bill.objects.get(pk=link.bill_id)
    assert bill.amount_due == Decimal("0.00")
    plan.refresh_from_db()
    assert (plan.state, plan.end_reason) == (PlanState.COMPLETED, "Paid in full.")
    assert set(plan.installments.values_list("state", flat=True)) == {InstallmentState.PAID}
    assert Patient.objects.get(pk=plan.guarantor_id).on_payment_plan is False
    # The receipts went out (H4), one per installment.
    assert sorted(m.subject for m in mail.outbox) == ["Your payment receipt from Smile Dental"] * 3


@pytest.mark.postgres  # workers racing on one SQLite file fail on its single writer's lock, not on our key
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_charge_an_installment_once(client: Client, fake: FakeStripe) -> None:
    organization = OrganizationFactory.create(slug="race-dental", timezone="America/Denver")
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization, "100.00")
        plan = sign_up(client, fake, link, months=2)

        results = in_threads(*[lambda: installments_charge_due(now=SIGN_UP)] * 4)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.paid for r in results) == [0, 0, 0, 1]
    assert len(intents_created(fake)) == 1
    assert Payment.objects.count() == 1
    assert plan.installments.get(sequence=1).state == InstallmentState.PAID


@pytest.mark.django_db
def test_a_worker_that_dies_between_the_charge_and_the_record_does_not_charge_twice(
    client: Client, fake: FakeStripe, organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    with time_machine.travel(SIGN_UP, tick=False) as clock:
        link = campaign_link(organization, "100.00")
        plan = sign_up(client, fake, link, months=2)
        fake.pending.clear()
        real = plans.installment_paid

        def crash(**kwargs: Any) -> bool:
            raise SystemExit("worker killed")

        monkeypatch.setattr(plans, "installment_paid", crash)
        with pytest.raises(SystemExit):
            installments_charge_due(now=SIGN_UP)
        monkeypatch.setattr(plans, "installment_paid", real)
        fake.pending.clear()  # the webhook is lost too: only the stale claim can finish the job
        one = plan.installments.get(sequence=1)
        assert (one.state, Payment.objects.count()) == (InstallmentState.CHARGING, 0)

        assert installments_charge_due(now=SIGN_UP + timedelta(minutes=5)).claimed == 0  # not stale yet
        clock.move_to(SIGN_UP + timedelta(minutes=15))
        summary = installments_charge_due(now=SIGN_UP + timedelta(minutes=15))

    assert (summary.claimed, summary.paid) == (1, 1)
    calls = intents_created(fake)
    assert [c["idempotency_key"] for c in calls] == [f"{one.idempotency_key}:1"] * 2  # the same key again ...
    assert len(fake.payment_intents) == 1  # ... so Stripe answered with the one charge it made
    [payment] = Payment.objects.all()
    assert payment.processor_reference == next(iter(fake.payment_intents))
    one.refresh_from_db()
    assert (one.state, one.attempts, one.payment_id) == (InstallmentState.PAID, 1, payment.pk)


@pytest.mark.django_db
def test_after_a_crash_the_webhook_records_the_installment_and_the_stale_claim_finds_it_paid(
    client: Client, fake: FakeStripe, organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    with time_machine.travel(SIGN_UP, tick=False) as clock:
        link = campaign_link(organization, "100.00")
        plan = sign_up(client, fake, link, months=2)
        real = plans.installment_paid
        monkeypatch.setattr(
            plans, "installment_paid", lambda **kw: (_ for _ in ()).throw(SystemExit("killed"))
        )
        with pytest.raises(SystemExit):
            installments_charge_due(now=SIGN_UP)
        monkeypatch.setattr(plans, "installment_paid", real)

        assert deliver_all(client, fake) == ["installment recorded"]
        clock.move_to(SIGN_UP + timedelta(minutes=15))
        summary = installments_charge_due(now=SIGN_UP + timedelta(minutes=15))

    assert summary.claimed == 0
    assert len(intents_created(fake)) == 1
    [payment] = Payment.objects.all()
    one = plan.installments.get(sequence=1)
    assert (one.state, one.payment_id, payment.amount) == (
        InstallmentState.PAID,
        payment.pk,
        Decimal("50.00"),
    )
    assert Bill.objects.get(pk=link.bill_id).amount_due == Decimal("50.00")


@pytest.mark.django_db
def test_a_decline_is_retried_on_schedule_and_the_patient_is_told_by_text_and_email(
    client: Client, fake: FakeStripe, fake_twilio: FakeTwilio, organization: Organization
) -> None:
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization, "150.00")
        plan = sign_up(client, fake, link, payment_method=DECLINING_PAYMENT_METHOD)

        summary = installments_charge_due(now=SIGN_UP)
        assert deliver_all(client, fake) == ["installment declined: Your card was declined."]
        sent = messages_send_due(now=SIGN_UP)

    assert (summary.retrying, summary.paid) == (1, 0)
    one = plan.installments.get(sequence=1)
    assert (one.state, one.attempts, one.last_failure) == (
        InstallmentState.RETRYING,
        1,
        "Your card was declined.",
    )
    assert one.next_attempt_at == datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # one day later, 10:00 in Denver
    assert Payment.objects.count() == 0
    assert sent["sent"] == 2
    [text] = fake_twilio.accepted()
    assert text["To"] == "+13035550123"
    assert text["Body"] == (
        "Smile Dental: Hi Ana, your payment plan payment of $50.00 was declined. We will try again on Dec 4, 2026. "
        "Questions? Call the office. Reply STOP to opt out"
    )
    [email] = [m for m in mail.outbox if "declined" in m.subject]
    assert email.to == ["ana@example.com"]
    assert "We will try the same card again on Dec 4, 2026." in email.body
    assert set(Message.objects.values_list("kind", "state")) == {(Kind.PLAN_RETRY, State.SENT)}
    # The plan goes on, and so does the guarantor's place off the list.
    assert PaymentPlan.objects.get().state == PlanState.ACTIVE
    assert Patient.objects.get(pk=plan.guarantor_id).on_payment_plan is True


@pytest.mark.django_db
def test_after_the_last_retry_the_plan_fails_the_patient_is_told_and_dunning_resumes(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    link = campaign_link(organization, "150.00", language="es")
    with time_machine.travel(SIGN_UP, tick=False) as clock:
        plan = sign_up(client, fake, link, payment_method=DECLINING_PAYMENT_METHOD)
        outcomes = []
        moment = SIGN_UP
        for _attempt in range(4):
            clock.move_to(moment)
            summary = installments_charge_due(now=moment)
            outcomes.append((summary.retrying, summary.failed))
            one = plan.installments.get(sequence=1)
            moment = one.next_attempt_at or moment
        messages_send_due(now=moment)

    assert outcomes == [(1, 0), (1, 0), (1, 0), (0, 1)]
    # Tried on Dec 3, then 1, 3 and 7 days after each decline.
    keys = [c["idempotency_key"] for c in intents_created(fake)]
    assert keys == [f"{one.idempotency_key}:{n}" for n in (1, 2, 3, 4)]
    one.refresh_from_db()
    assert (one.state, one.attempts) == (InstallmentState.FAILED, 4)
    plan.refresh_from_db()
    assert plan.state == PlanState.FAILED
    assert plan.end_reason.startswith("Payment 1 declined 4 times")
    assert list(plan.installments.exclude(sequence=1).values_list("state", flat=True)) == [
        InstallmentState.CANCELLED, InstallmentState.CANCELLED,
    ]  # fmt: skip
    assert Patient.objects.get(pk=plan.guarantor_id).on_payment_plan is False
    bill = Bill.objects.get(pk=link.bill_id)
    assert (bill.state, bill.ended_at, bill.next_dunning_date, bill.amount_due) == (
        BillState.ACTIVE, None, None, Decimal("150.00"),
    )  # fmt: skip
    retry_days = [
        m.context["due_date"]
        for m in Message.objects.filter(kind=Kind.PLAN_RETRY, channel=Channel.EMAIL).order_by("pk")
    ]
    assert retry_days == ["el 4 dic. 2026", "el 7 dic. 2026", "el 14 dic. 2026"]
    [failed] = [m for m in mail.outbox if "ha terminado" in m.subject]
    assert failed.subject == "Su plan de pagos con Smile Dental ha terminado"
    assert "el resto de su saldo está pendiente" in failed.body


@pytest.mark.django_db
def test_an_import_does_not_take_a_guarantor_off_our_plan_nor_reopen_the_campaign(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization)
        plan = sign_up(client, fake, link)
    # What the import's upsert and its campaign rule leave for a PMS that knows nothing of the plan yet.
    Patient.objects.filter(pk=plan.guarantor_id).update(on_payment_plan=False)
    statement = Bill.objects.create(
        organization=organization, guarantor_id=plan.guarantor_id, bill_id="S-new", source=BillSource.STATEMENT,
        state=BillState.ACTIVE, amount_due=Decimal("20.00"), created_at=SIGN_UP,
        effective_created_date=date(2026, 12, 3), last_seen_at=SIGN_UP,
    )  # fmt: skip
    other = campaign_link(organization)

    plans_reassert_after_import(organization, SIGN_UP)

    assert Patient.objects.get(pk=plan.guarantor_id).on_payment_plan is True
    statement.refresh_from_db()
    assert statement.state == BillState.CLOSED
    assert Bill.objects.get(pk=other.bill_id).state == BillState.ACTIVE  # not on a plan: untouched


@pytest.mark.django_db
def test_the_real_import_keeps_the_flag_through_its_hook(
    client: Client, fake: FakeStripe, organization: Organization, write_feed: Any
) -> None:
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization)
        plan = sign_up(client, fake, link)
    guarantor = Patient.objects.get(pk=plan.guarantor_id)
    path = write_feed(
        generated_at="2026-12-04T06:00:00Z",
        patients=[feed_patient(guarantor.external_id, on_payment_plan=False)],
    )

    call_command("import_feed", str(path), "--org", "smile-dental", "--json", stdout=StringIO())

    assert Patient.objects.get(pk=plan.guarantor_id).on_payment_plan is True
    # The request campaign follows the PMS's portion and stays closed (I6, D11).
    assert Bill.objects.get(pk=link.bill_id).state == BillState.CLOSED


@pytest.mark.django_db
def test_staff_cancel_a_plan_audited_and_dunning_resumes(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    user = UserFactory.create(username="billing")
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization)
        plan = sign_up(client, fake, link)
        plan_cancel(plan=plan, actor=user, reason="Patient asked to pay in full at the desk")

        assert installments_charge_due(now=SIGN_UP).claimed == 0

    plan.refresh_from_db()
    assert (plan.state, plan.end_reason) == (PlanState.CANCELLED, "Patient asked to pay in full at the desk")
    assert set(Installment.objects.values_list("state", flat=True)) == {InstallmentState.CANCELLED}
    audit = AuditEvent.objects.get(action="payment_plan.cancelled")
    assert audit.actor == user
    assert audit.changes["state"] == [PlanState.ACTIVE, PlanState.CANCELLED]
    assert Patient.objects.get(pk=plan.guarantor_id).on_payment_plan is False
    assert Bill.objects.get(pk=link.bill_id).state == BillState.ACTIVE
    assert intents_created(fake) == []
    with pytest.raises(plans.PlanRefused, match="ended already"):
        plan_cancel(plan=plan, actor=user, reason="again")
    assert ProcessorEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_sandbox_runs_a_pay_later_plan_through_the_same_code(
    organization: Organization, settings: Any
) -> None:
    """The embedded default (H1): the sandbox's hosted card page, its signed events, its off-session charge."""
    settings.PAYMENT_PROCESSOR = "sandbox"
    link = campaign_link(organization, "80.00")
    page = plan_start(link=link, kind=PlanKind.PAY_LATER, pay_date=date(2026, 12, 20), success_url="http://t/ok/",
                      cancel_url="http://t/no/", now=SIGN_UP)  # fmt: skip
    hosted_outcome(
        session_id=page.session_id, outcome="save", webhook_url="http://testserver/webhooks/sandbox/"
    )
    outcomes = [
        processor_event_apply(processor="sandbox", event=e, now=SIGN_UP).outcome for e in sandbox_events()
    ]
    assert outcomes == ["card saved, plan active"]
    assert Patient.objects.get(pk=link.bill.guarantor_id).on_payment_plan is True

    due = datetime(2026, 12, 20, 17, 0, tzinfo=UTC)
    assert installments_charge_due(now=due - timedelta(minutes=1)).claimed == 0
    with time_machine.travel(due, tick=False):
        assert charge_due_installments() == {
            "claimed": 1, "paid": 1, "retrying": 0, "failed": 0, "unavailable": 0, "skipped": 0,
        }  # fmt: skip
    late = [processor_event_apply(processor="sandbox", event=e, now=due).outcome for e in sandbox_events()]

    assert late == ["installment already recorded"]
    [payment] = Payment.objects.all()
    assert (payment.amount, payment.processor) == (Decimal("80.00"), "sandbox")
    assert PaymentPlan.objects.get().state == PlanState.COMPLETED


@pytest.mark.django_db
def test_stripe_down_during_a_charge_is_not_an_attempt_and_is_tried_again_with_the_same_key(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    with time_machine.travel(SIGN_UP, tick=False) as clock:
        link = campaign_link(organization, "100.00")
        plan = sign_up(client, fake, link, months=2)
        fake.fail_next(status=500, times=3)

        down = installments_charge_due(now=SIGN_UP)
        one = plan.installments.get(sequence=1)
        assert (down.unavailable, one.state, one.attempts) == (1, InstallmentState.SCHEDULED, 0)
        assert one.next_attempt_at == SIGN_UP + timedelta(minutes=30)
        assert installments_charge_due(now=SIGN_UP + timedelta(minutes=15)).claimed == 0
        clock.move_to(SIGN_UP + timedelta(minutes=30))
        up = installments_charge_due(now=SIGN_UP + timedelta(minutes=30))

    assert up.paid == 1
    assert {c["idempotency_key"] for c in intents_created(fake)} == {f"{one.idempotency_key}:1"}
    assert len(fake.payment_intents) == 1
    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres  # three threads writing at once: SQLite's one writer answers "database table is locked"
def test_the_tick_and_the_webhook_recording_one_charge_at_once_record_it_once(
    client: Client, fake: FakeStripe
) -> None:
    organization = OrganizationFactory.create(slug="race-webhook", timezone="America/Denver")
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization, "100.00")
        plan = sign_up(client, fake, link, months=2)
        one = plan.installments.get(sequence=1)
        Installment.objects.filter(pk=one.pk).update(state=InstallmentState.CHARGING, claimed_at=SIGN_UP)
        intent = fake.payment_intents  # charged by hand, as the tick would, then recorded by both at once
        charge = get_processor("stripe").charge_saved_card(
            card=SavedCard(customer=plan.customer_reference, payment_method=plan.payment_method_reference),
            amount_cents=5000, idempotency_key=f"{one.idempotency_key}:1", description="x",
            metadata={"installment": one.idempotency_key},
        )  # fmt: skip
        event = fake.event_of("payment_intent.succeeded")

        def tick() -> bool:
            return plans.installment_paid(
                processor="stripe", key=one.idempotency_key, payment_reference=charge.payment_reference,
                amount_cents=5000, moment=SIGN_UP,
            )  # fmt: skip

        def webhook() -> str:
            return str(post(Client(), fake, event).json()["outcome"])

        results = in_threads(tick, webhook, tick)

    assert not [r for r in results if isinstance(r, Exception)], results
    # Whichever records it first (a tick or the webhook), the others find it recorded.
    assert sorted(map(str, results)) in (
        ["False", "True", "installment already recorded"], ["False", "False", "installment recorded"],
    )  # fmt: skip
    assert len(intent) == 1
    [payment] = Payment.objects.all()
    assert Installment.objects.get(pk=one.pk).payment_id == payment.pk
    assert Bill.objects.get(pk=link.bill_id).amount_due == Decimal("50.00")


@pytest.mark.django_db
def test_a_reminder_queued_before_the_sign_up_never_reaches_the_patient(
    client: Client, fake: FakeStripe, fake_twilio: FakeTwilio, organization: Organization
) -> None:
    """D11 as the patient sees it: the campaign closed at once, so the outbox's re-check cancels its messages."""
    with time_machine.travel(SIGN_UP, tick=False):
        link = campaign_link(organization)
        reminder = Message.objects.create(
            organization=organization, patient=link.bill.guarantor, bill=link.bill, kind=Kind.REMINDER,
            channel=Channel.SMS, body="Smile Dental: Hi Ana, a reminder. Reply STOP to opt out",
            destination="+13035550123",
        )  # fmt: skip
        sign_up(client, fake, link)

        messages_send_due(now=SIGN_UP)

    reminder.refresh_from_db()
    assert (reminder.state, reminder.reason) == (State.CANCELLED, "bill_not_active")
    assert fake_twilio.accepted() == []


@pytest.mark.django_db
def test_a_failed_plan_reopens_every_campaign_it_closed_and_a_plan_that_never_started_touches_nothing(
    client: Client, fake: FakeStripe, organization: Organization
) -> None:
    link = campaign_link(organization, "100.00")
    guarantor = link.bill.guarantor
    statement = Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id="S-1", source=BillSource.STATEMENT,
        state=BillState.ACTIVE, amount_due=Decimal("40.00"), created_at=SIGN_UP,
        effective_created_date=date(2026, 11, 1), last_seen_at=SIGN_UP,
    )  # fmt: skip
    older = Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id="S-0", source=BillSource.STATEMENT,
        state=BillState.CLOSED, ended_at=SIGN_UP - timedelta(days=30), amount_due=Decimal("15.00"),
        created_at=SIGN_UP, effective_created_date=date(2026, 9, 1), last_seen_at=SIGN_UP,
    )  # fmt: skip
    user = UserFactory.create(username="manager")
    with time_machine.travel(SIGN_UP, tick=False):
        # Waiting for its card: cancelled, it leaves the campaigns and the PMS's flag alone.
        Patient.objects.filter(pk=guarantor.pk).update(on_payment_plan=True)
        plan_start(
            link=link, kind=PlanKind.MONTHLY, months=2, success_url="http://t/ok/", cancel_url="http://t/no/"
        )
        plan_cancel(plan=PaymentPlan.objects.get(), actor=user, reason="Called to pay by phone")
        assert Bill.objects.filter(guarantor=guarantor, state=BillState.ACTIVE).count() == 2
        assert Patient.objects.get(pk=guarantor.pk).on_payment_plan is True
        Patient.objects.filter(pk=guarantor.pk).update(on_payment_plan=False)

        plan = sign_up(client, fake, link, months=2, payment_method=DECLINING_PAYMENT_METHOD)
        assert set(Bill.objects.filter(guarantor=guarantor).values_list("state", flat=True)) == {
            BillState.CLOSED
        }
        moment = SIGN_UP
        for _attempt in range(4):
            installments_charge_due(now=moment)
            moment = plan.installments.get(sequence=1).next_attempt_at or moment

    plan.refresh_from_db()
    assert plan.state == PlanState.FAILED
    assert Bill.objects.get(pk=link.bill_id).state == BillState.ACTIVE
    assert Bill.objects.get(pk=statement.pk).state == BillState.ACTIVE
    assert Bill.objects.get(pk=older.pk).state == BillState.CLOSED  # closed before the plan: stays closed
    assert AuditEvent.objects.get(action="payment_plan.failed").changes["campaigns_reopened"] == 2
