"""D12 in the admin: a bill's trail and the admin resend (bypasses thresholds, not opt-outs)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from dunning.engine import run_dunning
from dunning.models import DunningDecision, DunningSettings, Preset, PresetStep
from dunning.services import ResendError, decision_resend, organizations_due_for_run
from notifications.models import Kind, Message, OptOutSource
from notifications.optouts import opt_out_set
from notifications.outbox import messages_send_due
from practices.models import Bill, BillState, Patient, Role
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail():
    preset = Preset.objects.create(slug="t", name="T", cycle_days=30, paper_cycle_days=30)
    PresetStep.objects.create(preset=preset, bill_age_days=0, kind="statement", channel="email")
    PresetStep.objects.create(
        preset=preset, bill_age_days=30, kind="due", channel="email"
    )  # so the bill stays active
    org = OrganizationFactory.create(timezone="UTC")
    DunningSettings.objects.create(organization=org, preset=preset, min_electronic=Decimal("500.00"))
    patient = GuarantorFactory.create(organization=org, email="ana@example.com", mobile_phone="+18015550100")
    AccountFactory.create(guarantor=patient)
    moment = datetime(2026, 6, 1, 15, tzinfo=UTC)
    bill = Bill.objects.create(organization=org, guarantor=patient, bill_id="S-1", source="statement", amount_due="50.00",
                               created_at=moment, effective_created_date=date(2026, 6, 1), last_seen_at=moment)  # fmt: skip
    return org, bill


def test_the_bill_admin_links_to_its_trail_and_the_trail_lists_the_decisions(admin_client, trail):
    org, bill = trail
    run_dunning(organization=org, on=date(2026, 6, 1), now=datetime(2026, 6, 1, 15, tzinfo=UTC))
    listing = admin_client.get(reverse("admin:practices_bill_changelist")).content.decode()
    assert f"/admin/dunning/dunningdecision/?bill__id__exact={bill.pk}" in listing
    page = admin_client.get(
        reverse("admin:dunning_dunningdecision_changelist") + f"?bill__id__exact={bill.pk}"
    )
    assert [(d.channel, d.action, d.reason) for d in page.context["cl"].result_list] == [
        ("email", "skip", "below_threshold")
    ]


def test_an_admin_resend_bypasses_the_threshold(admin_client, trail):
    org, _bill = trail
    DunningSettings.objects.filter(organization=org).update(min_electronic=Decimal("0.00"))
    run_dunning(organization=org, on=date(2026, 6, 1), now=datetime(2026, 6, 1, 15, tzinfo=UTC))
    assert messages_send_due(organization=org, now=datetime(2026, 6, 1, 15, 5, tzinfo=UTC))["sent"] == 1
    DunningSettings.objects.filter(organization=org).update(min_electronic=Decimal("500.00"))
    decision = DunningDecision.objects.get(action="send")
    response = admin_client.post(reverse("admin:dunning_dunningdecision_changelist"),
                                 {"action": "resend", "_selected_action": [decision.pk]})  # fmt: skip
    assert response.status_code == 302
    resend = Message.objects.get(kind=Kind.RESEND)
    assert (resend.resend_of, resend.channel, resend.destination) == (
        decision.message,
        "email",
        "ana@example.com",
    )


def test_another_organizations_trail_is_hidden(client, trail):
    org, _ = trail
    run_dunning(organization=org, on=date(2026, 6, 1), now=datetime(2026, 6, 1, 15, tzinfo=UTC))
    client.force_login(MembershipFactory.create(role=Role.BILLING_MANAGER).user)
    page = client.get(reverse("admin:dunning_dunningdecision_changelist"))
    assert list(page.context["cl"].result_list) == []


def test_each_organization_runs_once_a_day_after_its_local_run_time():
    preset = Preset.objects.create(slug="t2", name="T2", cycle_days=30, paper_cycle_days=30)
    denver = OrganizationFactory.create(timezone="America/Denver")
    tokyo = OrganizationFactory.create(timezone="Asia/Tokyo")
    for org in (denver, tokyo):
        DunningSettings.objects.create(organization=org, preset=preset)  # run_at 07:00 local
    moment = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)  # 07:30 in Denver, 22:30 in Tokyo
    assert sorted(organizations_due_for_run(now=moment)) == sorted(
        [(denver.pk, date(2026, 6, 1)), (tokyo.pk, date(2026, 6, 1))]
    )
    assert organizations_due_for_run(now=datetime(2026, 6, 1, 12, 0, tzinfo=UTC)) == [
        (tokyo.pk, date(2026, 6, 1))
    ]
    run_dunning(organization=denver, on=date(2026, 6, 1))
    assert organizations_due_for_run(now=moment) == [(tokyo.pk, date(2026, 6, 1))]


@pytest.fixture
def sent_step(trail):
    """The trail's age-0 email, decided and sent (the admin resends steps that left us)."""
    org, _bill = trail
    DunningSettings.objects.filter(organization=org).update(min_electronic=Decimal("0.00"))
    run_dunning(organization=org, on=date(2026, 6, 1), now=datetime(2026, 6, 1, 15, tzinfo=UTC))
    messages_send_due(organization=org, now=datetime(2026, 6, 1, 15, 5, tzinfo=UTC))
    return DunningDecision.objects.get(action="send")


def test_the_admin_resend_has_the_undeliverable_resends_guards(sent_step, admin_user):
    """One resend path (issue 10): the row lock and the double-resend guard, do-not-contact, opt-outs."""
    decision_resend(decision=sent_step, user=admin_user)
    with pytest.raises(ResendError, match="already been resent"):
        decision_resend(decision=sent_step, user=admin_user)
    assert Message.objects.filter(kind=Kind.RESEND).count() == 1


def test_the_admin_resend_refuses_a_do_not_contact_patient_and_an_opted_out_address(sent_step, admin_user):
    patient = sent_step.message.patient
    Patient.objects.filter(pk=patient.pk).update(do_not_contact=True)
    with pytest.raises(ResendError, match="do-not-contact"):
        decision_resend(decision=sent_step, user=admin_user)
    Patient.objects.filter(pk=patient.pk).update(do_not_contact=False)
    opt_out_set(organization=patient.organization, channel="email", address="ana@example.com", active=True,
                source=OptOutSource.EMAIL_UNSUBSCRIBE)  # fmt: skip
    with pytest.raises(ResendError, match="opted out"):
        decision_resend(decision=sent_step, user=admin_user)
    assert not Message.objects.filter(kind=Kind.RESEND).exists()


def test_the_admin_resend_works_for_a_completed_bill_and_not_for_a_paid_one(sent_step, admin_user):
    """D11: a completed bill still owes, so its notices may be sent again; a paid one has ended."""
    Bill.objects.filter(pk=sent_step.bill_id).update(state=BillState.COMPLETED)
    assert decision_resend(decision=sent_step, user=admin_user).kind == Kind.RESEND
    Message.objects.filter(kind=Kind.RESEND).delete()
    Bill.objects.filter(pk=sent_step.bill_id).update(state=BillState.PAID)
    with pytest.raises(ResendError, match="paid"):
        decision_resend(decision=sent_step, user=admin_user)
