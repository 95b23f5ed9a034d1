"""Payment settings (SPEC §4): the org_settings keys of payments, and the admin form (T2, T5)."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from payments.admin import PaymentSettingsForm
from payments.models import ALL_AGING, PaymentSettings
from practices.models import AuditEvent, Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

KEYS = ("min_payment_amount", "eligible_aging", "max_open_claims", "request_channels")


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def payment_keys(out: str) -> dict:
    document = json.loads(out)
    return {key: document[key] for key in KEYS}


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental")


def test_the_defaults_read_without_a_settings_row(org):
    code, out, _ = run("org_settings", "--org", "smile-dental", "--json")
    assert code == 0
    assert payment_keys(out) == {"min_payment_amount": "0.00", "eligible_aging": ALL_AGING,
                                 "max_open_claims": None, "request_channels": ["sms", "email"]}  # fmt: skip
    assert not PaymentSettings.objects.exists()


@pytest.mark.parametrize(
    ("assignment", "key", "shown", "stored"),
    [
        ("min_payment_amount=25", "min_payment_amount", "25.00", Decimal("25.00")),
        ("min_payment_amount=7.5", "min_payment_amount", "7.50", Decimal("7.50")),
        ("min_payment_amount=0", "min_payment_amount", "0.00", Decimal("0.00")),
        ("eligible_aging=over_90, 31_60", "eligible_aging", ["31_60", "over_90"], ["31_60", "over_90"]),
        ("eligible_aging=0_30", "eligible_aging", ["0_30"], ["0_30"]),
        ("max_open_claims=0", "max_open_claims", 0, 0),
        ("max_open_claims=3", "max_open_claims", 3, 3),
        ("max_open_claims=none", "max_open_claims", None, None),
        ("request_channels=email", "request_channels", ["email"], ["email"]),
        ("request_channels=email,sms", "request_channels", ["sms", "email"], ["sms", "email"]),
    ],
)
def test_each_key_is_set_and_read_back(org, assignment, key, shown, stored):
    code, out, _ = run("org_settings", "--org", "smile-dental", "--set", assignment, "--json")
    assert code == 0
    assert json.loads(out)[key] == shown
    assert getattr(PaymentSettings.objects.get(organization=org), key) == stored
    _, again, _ = run("org_settings", "--org", "smile-dental", "--json")
    assert json.loads(again)[key] == shown


def test_the_row_is_created_on_the_first_write_and_keeps_the_other_defaults(org):
    run("org_settings", "--org", "smile-dental", "--set", "max_open_claims=2")
    row = PaymentSettings.objects.get(organization=org)
    assert (row.max_open_claims, row.min_payment_amount, row.eligible_aging) == (
        2,
        Decimal("0.00"),
        ALL_AGING,
    )
    run("org_settings", "--org", "smile-dental", "--set", "min_payment_amount=10.00")
    assert PaymentSettings.objects.count() == 1
    assert PaymentSettings.objects.get().max_open_claims == 2


def test_a_change_is_audited_with_old_and_new_values(org):
    run(
        "org_settings",
        "--org",
        "smile-dental",
        "--set",
        "min_payment_amount=12.50",
        "--set",
        "eligible_aging=61_90",
    )
    event = AuditEvent.objects.get(action="settings.change")
    assert event.actor_label == "command:org_settings"
    assert event.changes["min_payment_amount"] == ["0.00", "12.50"]
    assert event.changes["eligible_aging"] == [ALL_AGING, ["61_90"]]


@pytest.mark.parametrize(
    "assignment",
    [
        "min_payment_amount=-1",
        "min_payment_amount=10.005",
        "min_payment_amount=abc",
        "min_payment_amount=1e3",
        "min_payment_amount=",
        "min_payment_amount=12345678901",
        "eligible_aging=",
        "eligible_aging=0_30,90_plus",
        "eligible_aging= , ",
        "max_open_claims=-1",
        "max_open_claims=1.5",
        "max_open_claims=unlimited",
        "request_channels=",
        "request_channels=sms,paper",
    ],
)
def test_a_bad_value_exits_2_and_changes_nothing(org, assignment):
    run("org_settings", "--org", "smile-dental", "--set", "max_open_claims=4")
    before = list(PaymentSettings.objects.values())
    events = AuditEvent.objects.count()
    # A valid assignment in the same call is not applied either.
    code, out, message = run("org_settings", "--org", "smile-dental", "--set", "min_payment_amount=3",
                             "--set", assignment, "--json")  # fmt: skip
    assert code == 2
    assert out == ""
    assert assignment.split("=")[0] in message
    assert list(PaymentSettings.objects.values()) == before
    assert AuditEvent.objects.count() == events


def test_a_bad_value_creates_no_settings_row(org):
    code, _, _ = run("org_settings", "--org", "smile-dental", "--set", "eligible_aging=none")
    assert code == 2
    assert not PaymentSettings.objects.exists()


# --- admin (T2) -----------------------------------------------------------------------------------------


def form_data(org, **overrides):
    data = {
        "organization": org.pk,
        "min_payment_amount": "15.00",
        "eligible_aging": ["31_60", "0_30"],
        "max_open_claims": "",
        "request_channels": ["email"],
        "snooze_reasons": "Paying Friday\n\n  Insurance pending  \nPaying Friday\n",
        "link_lifetime_days": "30",
        "plan_max_months": "6",
        "plan_min_installment": "25.00",
    }
    data.update(overrides)
    return data


def test_a_billing_manager_edits_the_settings_with_lists_validated(client, org):
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    row = PaymentSettings.objects.create(organization=org)
    url = reverse("admin:payments_paymentsettings_change", args=[row.pk])
    response = client.post(url, form_data(org))
    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert row.eligible_aging == ["0_30", "31_60"]
    assert row.request_channels == ["email"]
    assert row.snooze_reasons == ["Paying Friday", "Insurance pending"]
    assert row.max_open_claims is None

    page = client.get(url).content.decode()
    assert "Paying Friday\nInsurance pending" in page
    response = client.post(url, form_data(org, eligible_aging=["over_90"], min_payment_amount="20.00"))
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.eligible_aging, row.min_payment_amount) == (["over_90"], Decimal("20.00"))
    event = AuditEvent.objects.filter(action="admin.change").latest("pk")
    assert event.actor == membership.user
    assert event.changes["eligible_aging"] == ["0_30, 31_60", "over_90"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"eligible_aging": []},
        {"eligible_aging": ["90_plus"]},
        {"request_channels": []},
        {"request_channels": ["paper"]},
        {"min_payment_amount": "-1.00"},
        {"snooze_reasons": "x" * 201},
        {"plan_max_months": "25"},
        {"plan_min_installment": "0.00"},
    ],
)
def test_the_admin_form_rejects_bad_values(client, org, overrides):
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    row = PaymentSettings.objects.create(organization=org)
    before = list(PaymentSettings.objects.values())
    url = reverse("admin:payments_paymentsettings_change", args=[row.pk])
    response = client.post(url, form_data(org, **overrides))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert list(PaymentSettings.objects.values()) == before
    assert not AuditEvent.objects.exists()


def test_nobody_adds_payment_settings_in_the_admin(client, admin_client, org):
    # The row is made with the organization (issue 12); Add is not offered, to a billing manager or to ops.
    PaymentSettings.objects.create(organization=org)
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    add = reverse("admin:payments_paymentsettings_add")
    for user_client in (client, admin_client):
        listing = user_client.get(reverse("admin:payments_paymentsettings_changelist"))
        assert listing.status_code == 200
        assert listing.context["has_add_permission"] is False
        assert add not in listing.content.decode()
        assert user_client.get(add).status_code == 403
        assert user_client.post(add, form_data(org)).status_code == 403
    assert PaymentSettings.objects.count() == 1


def test_a_new_settings_form_ticks_the_default_lists():
    # Django's form for a new object takes the model defaults only for the fields it makes itself.
    form = PaymentSettingsForm()
    assert form["eligible_aging"].value() == ALL_AGING
    assert form["request_channels"].value() == ["sms", "email"]
    assert str(form["eligible_aging"]).count(" checked") == 4


def test_front_desk_cannot_see_payment_settings(client, org):
    PaymentSettings.objects.create(organization=org)
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    assert client.get(reverse("admin:payments_paymentsettings_changelist")).status_code == 403


def test_a_billing_manager_sees_only_their_organizations_settings(client, org):
    other = PaymentSettings.objects.create(organization=OrganizationFactory.create(slug="other"))
    mine = PaymentSettings.objects.create(organization=org)
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    assert client.get(reverse("admin:payments_paymentsettings_change", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:payments_paymentsettings_change", args=[other.pk])).status_code == 404
    # Nor those of an organization where they are front desk only.
    front_desk_org = OrganizationFactory.create(slug="front-desk-only")
    MembershipFactory.create(user=membership.user, organization=front_desk_org, role=Role.FRONT_DESK)
    theirs = PaymentSettings.objects.create(organization=front_desk_org)
    url = reverse("admin:payments_paymentsettings_change", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, form_data(front_desk_org)).status_code == 404


# --- payment plans (H5) -------------------------------------------------------------------------------------


def test_the_plan_limits_have_defaults_and_are_set_and_audited_like_the_other_keys(org):
    code, out, _ = run("org_settings", "--org", "smile-dental", "--json")
    document = json.loads(out)
    assert (document["plan_max_months"], document["plan_min_installment"]) == (6, "25.00")

    code, out, _ = run(
        "org_settings",
        "--org",
        "smile-dental",
        "--set",
        "plan_max_months=12",
        "--set",
        "plan_min_installment=40",
    )
    assert code == 0
    row = PaymentSettings.objects.get(organization=org)
    assert (row.plan_max_months, row.plan_min_installment) == (12, Decimal("40.00"))
    assert "plan_max_months=12" in out and "plan_min_installment=40.00" in out
    event = AuditEvent.objects.get(action="settings.change")
    assert event.changes["plan_max_months"] == [6, 12]
    assert event.changes["plan_min_installment"] == ["25.00", "40.00"]


@pytest.mark.parametrize(
    "assignment",
    ["plan_max_months=25", "plan_max_months=-1", "plan_max_months=six", "plan_min_installment=0",
     "plan_min_installment=-5", "plan_min_installment=10.005"],
)  # fmt: skip
def test_a_bad_plan_limit_exits_2_and_changes_nothing(org, assignment):
    code, _out, err = run("org_settings", "--org", "smile-dental", "--set", assignment)
    assert code == 2
    assert assignment.split("=")[0] in err
    assert not PaymentSettings.objects.exists()
    assert not AuditEvent.objects.filter(action="settings.change").exists()
