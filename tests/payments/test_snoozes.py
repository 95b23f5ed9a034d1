"""Snoozes (B3): the service, the snooze/unsnooze commands, reappearance after the re-enrol date, audit (T5)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse

from payments.eligibility import eligible_guarantors, explain_guarantor
from payments.models import Snooze
from payments.services import SnoozeError, snooze_create, snooze_lift
from practices.models import AuditEvent, Role
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.payments.factories import SnoozeFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 24)
# 05:00 UTC on the 25th is 22:00 on the 24th in Denver: the organization's today is the 24th.
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


@pytest.fixture
def guarantors(org):
    return [
        AccountFactory.create(guarantor__organization=org, guarantor__external_id=pid).guarantor
        for pid in ("P1", "P2", "P3")
    ]


def listed(org, on: date) -> list[str]:
    return list(eligible_guarantors(organization=org, on=on).values_list("external_id", flat=True))


def run(*args: str) -> tuple[int, str, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


# --- service ---------------------------------------------------------------------------------------------


def test_snoozed_guarantors_leave_the_list_until_the_re_enrol_date_and_then_reappear(org, guarantors):
    user = UserFactory.create()
    snoozes = snooze_create(organization=org, guarantor_ids=["P1", "P3"], until=date(2026, 12, 1),
                            reason="Insurance still processing", user=user, today=TODAY)  # fmt: skip
    assert [s.guarantor.external_id for s in snoozes] == ["P1", "P3"]
    assert all(s.created_by == user for s in snoozes)
    assert listed(org, TODAY) == ["P2"]
    assert listed(org, date(2026, 11, 30)) == ["P2"]
    assert listed(org, date(2026, 12, 1)) == ["P1", "P2", "P3"]


def test_a_guarantor_no_longer_eligible_does_not_reappear_after_the_snooze(org, guarantors):
    snooze_create(
        organization=org, guarantor_ids=["P1"], until=date(2026, 12, 1), reason="Paying soon", today=TODAY
    )
    guarantors[0].on_payment_plan = True
    guarantors[0].save()
    assert "P1" not in listed(org, date(2026, 12, 2))


@pytest.mark.parametrize("until", [TODAY, date(2026, 11, 1)])
def test_the_re_enrol_date_must_be_after_today(org, guarantors, until):
    with pytest.raises(SnoozeError, match="after today"):
        snooze_create(organization=org, guarantor_ids=["P1"], until=until, reason="x", today=TODAY)
    assert not Snooze.objects.exists()


def test_a_reason_is_required(org, guarantors):
    with pytest.raises(SnoozeError, match="reason"):
        snooze_create(
            organization=org, guarantor_ids=["P1"], until=date(2026, 12, 1), reason="  ", today=TODAY
        )
    assert not Snooze.objects.exists()


def test_unknown_ids_are_named_and_nothing_is_created(org, guarantors):
    dependent = GuarantorFactory.create(
        organization=org, external_id="P9", guarantor=guarantors[0], is_guarantor=False
    )
    stranger = GuarantorFactory.create(
        organization=OrganizationFactory.create(slug="other"), external_id="P7"
    )
    with pytest.raises(SnoozeError) as excinfo:
        snooze_create(organization=org, guarantor_ids=["P1", "P8", dependent.external_id, stranger.external_id],
                      until=date(2026, 12, 1), reason="x", today=TODAY)  # fmt: skip
    assert str(excinfo.value) == "unknown guarantor(s) in smile-dental: P8, P9, P7"
    assert not Snooze.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_new_snooze_replaces_the_running_one(org, guarantors):
    first = snooze_create(organization=org, guarantor_ids=["P1"], until=date(2027, 1, 15), reason="Hardship",
                          today=TODAY)[0]  # fmt: skip
    expired = SnoozeFactory.create(guarantor=guarantors[0], until=date(2026, 11, 1))
    second = snooze_create(organization=org, guarantor_ids=["P1"], until=date(2026, 12, 1), reason="Paying soon",
                           today=TODAY)[0]  # fmt: skip
    first.refresh_from_db()
    expired.refresh_from_db()
    second.refresh_from_db()
    assert first.lifted_at is not None
    assert expired.lifted_at is None  # it ended on its own date, not now
    assert second.lifted_at is None
    # The newest date wins: P1 is back on 2026-12-01, not 2027-01-15.
    assert "P1" in listed(org, date(2026, 12, 1))
    assert AuditEvent.objects.filter(action="snooze.replace", object_id=str(first.pk)).exists()


def test_lifting_early_brings_the_guarantor_back(org, guarantors):
    snooze_create(
        organization=org, guarantor_ids=["P1", "P2"], until=date(2026, 12, 1), reason="x", today=TODAY
    )
    assert snooze_lift(organization=org, guarantor_ids=["P1"], actor_label="tester", today=TODAY) == 1
    assert listed(org, TODAY) == ["P1", "P3"]
    assert snooze_lift(organization=org, guarantor_ids=["P1"], today=TODAY) == 0
    lifted = Snooze.objects.get(guarantor__external_id="P1")
    assert lifted.lifted_at is not None


def test_lifting_unknown_guarantors_changes_nothing(org, guarantors):
    snooze_create(organization=org, guarantor_ids=["P1"], until=date(2026, 12, 1), reason="x", today=TODAY)
    with pytest.raises(SnoozeError, match="P404"):
        snooze_lift(organization=org, guarantor_ids=["P1", "P404"], today=TODAY)
    assert Snooze.objects.get().lifted_at is None


def test_snoozes_and_lifts_are_audited_with_user_and_time(org, guarantors):
    user = UserFactory.create(username="maria")
    with time_machine.travel(NOW, tick=False):
        snooze = snooze_create(organization=org, guarantor_ids=["P2"], until=date(2026, 12, 1),
                               reason="Disputed balance", user=user, today=TODAY)[0]  # fmt: skip
        snooze_lift(organization=org, guarantor_ids=["P2"], user=user, today=TODAY)
    created, lifted = AuditEvent.objects.order_by("pk")
    assert (created.action, created.actor, created.actor_label) == ("snooze.create", user, "maria")
    assert (created.object_type, created.object_id) == ("payments.Snooze", str(snooze.pk))
    assert created.changes == {
        "guarantor": ["", "P2"],
        "until": ["", "2026-12-01"],
        "reason": ["", "Disputed balance"],
    }
    assert created.created_at == NOW
    assert (lifted.action, lifted.actor, lifted.object_id) == ("snooze.lift", user, str(snooze.pk))
    assert lifted.changes == {"lifted_at": ["", NOW.isoformat()]}
    snooze.refresh_from_db()
    assert (snooze.lifted_at, snooze.lifted_by) == (NOW, user)


def test_explain_shows_the_snooze_and_its_end(org, guarantors):
    snooze_create(
        organization=org, guarantor_ids=["P3"], until=date(2026, 12, 1), reason="Paying soon", today=TODAY
    )
    report = explain_guarantor(organization=org, guarantor=guarantors[2], on=TODAY)
    r5 = next(r for r in report["rules"] if r["rule"] == "R5")
    assert (report["eligible"], r5["passed"]) == (False, False)
    assert "2026-12-01" in r5["detail"] and "Paying soon" in r5["detail"]
    assert (
        explain_guarantor(organization=org, guarantor=guarantors[2], on=date(2026, 12, 1))["eligible"] is True
    )


# --- commands --------------------------------------------------------------------------------------------


def test_snooze_and_unsnooze_commands(org, guarantors):
    with time_machine.travel(NOW, tick=False):
        code, out, _ = run("snooze", "--org", "smile-dental", "--guarantor", "P1,P2", "--until", "2026-11-25",
                           "--reason", "Paying soon")  # fmt: skip
        assert code == 0
        assert out.strip() == "snoozed 2 guarantor(s) until 2026-11-25"
        assert listed(org, TODAY) == ["P3"]
        assert AuditEvent.objects.filter(action="snooze.create", actor_label="command:snooze").count() == 2

        code, out, _ = run("unsnooze", "--org", "smile-dental", "--guarantor", "P2")
        assert (code, out.strip()) == (0, "lifted 1 snooze(s)")
        assert listed(org, TODAY) == ["P2", "P3"]
        assert AuditEvent.objects.filter(action="snooze.lift", actor_label="command:unsnooze").count() == 1
    assert listed(org, date(2026, 11, 25)) == ["P1", "P2", "P3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # In Denver it is still the 24th at NOW: the 24th is today, not the future.
        (("--guarantor", "P1", "--until", "2026-11-24", "--reason", "x"), "after today (2026-11-24)"),
        (("--guarantor", "P1,P404", "--until", "2026-12-01", "--reason", "x"), "P404"),
        (("--guarantor", "P1", "--until", "12/01/2026", "--reason", "x"), "YYYY-MM-DD"),
        (("--guarantor", "P1", "--until", "2026-12-01", "--reason", ""), "reason"),
        (("--guarantor", ",", "--until", "2026-12-01", "--reason", "x"), "at least one"),
    ],
)
def test_snooze_exits_2_on_bad_input(org, guarantors, args, message):
    with time_machine.travel(NOW, tick=False):
        code, out, error = run("snooze", "--org", "smile-dental", *args)
    assert (code, out) == (2, "")
    assert message in error
    assert "\n" not in error
    assert not Snooze.objects.exists()


def test_snooze_and_unsnooze_exit_2_for_an_unknown_organization(org, guarantors):
    assert (
        run("snooze", "--org", "nope", "--guarantor", "P1", "--until", "2027-01-01", "--reason", "x")[0] == 2
    )
    assert run("unsnooze", "--org", "nope", "--guarantor", "P1")[0] == 2
    assert run("unsnooze", "--org", "smile-dental", "--guarantor", "P404")[0] == 2


# --- admin -----------------------------------------------------------------------------------------------


def test_front_desk_sees_snoozes_read_only(client, org, guarantors):
    snooze = snooze_create(organization=org, guarantor_ids=["P1"], until=date(2026, 12, 1), reason="x",
                           today=TODAY)[0]  # fmt: skip
    other = SnoozeFactory.create(guarantor__organization=OrganizationFactory.create(slug="other"))
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    listing = client.get(reverse("admin:payments_snooze_changelist"))
    assert listing.status_code == 200
    assert [s.pk for s in listing.context["cl"].result_list] == [snooze.pk]
    url = reverse("admin:payments_snooze_change", args=[snooze.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"reason": "changed"}).status_code == 403
    assert client.get(reverse("admin:payments_snooze_change", args=[other.pk])).status_code == 404
    assert client.get(reverse("admin:payments_snooze_add")).status_code == 403
    assert client.get(reverse("admin:payments_paymentrequest_changelist")).status_code == 200
