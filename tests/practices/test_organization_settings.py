"""An organization's settings rows are there from the start (issue 12, Billing manager): created with the
organization (create_org, the admin, seed_demo) and, for the organizations before, by a data migration; the
admin links the organization to them and back, and titles them by the organization's name.

The billing manager saw "0 dunning settings" for the practice until someone pressed Add."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse

from dunning.admin import DunningSettingsForm
from dunning.models import DunningSettings, Preset
from notifications.models import NotificationSettings
from payments.models import ALL_AGING, PaymentSettings
from practices.models import Organization, Role
from practices.services import organization_create
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_create_org_creates_the_settings_rows_with_the_defaults():
    call_command("create_org", "--slug", "smile-dental", "--name", "Smile Dental", "--timezone",
                 "America/Denver", stdout=StringIO())  # fmt: skip
    org = Organization.objects.get(slug="smile-dental")
    dunning = DunningSettings.objects.get(organization=org)
    assert dunning.preset is not None
    assert (dunning.preset.slug, dunning.reset_fields, dunning.reset_on_fields) == (
        "standard-30",
        ["amount_due"],
        False,
    )
    payment = PaymentSettings.objects.get(organization=org)
    assert (payment.eligible_aging, payment.request_channels, payment.max_open_claims) == (
        ALL_AGING,
        ["sms", "email"],
        None,
    )
    sending = NotificationSettings.objects.get(organization=org)
    assert (f"{sending.quiet_start:%H:%M}", f"{sending.quiet_end:%H:%M}", sending.frequency_cap) == (
        "21:00", "08:00", ""
    )  # fmt: skip
    assert (sending.send_on_sundays, sending.send_on_holidays, sending.hourly_sms_limit) == (True, True, None)


def test_an_organization_added_in_the_admin_gets_its_settings_rows(admin_client):
    response = admin_client.post(
        reverse("admin:practices_organization_add"),
        {"slug": "smile-dental", "name": "Smile Dental", "timezone": "America/Denver"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    org = Organization.objects.get(slug="smile-dental")
    assert DunningSettings.objects.get(organization=org).preset == Preset.objects.get(slug="standard-30")
    assert PaymentSettings.objects.filter(organization=org).exists()
    assert NotificationSettings.objects.filter(organization=org).exists()


def test_the_migration_gives_every_existing_organization_its_rows():
    bare = OrganizationFactory.create(slug="before-issue-12")
    chosen = OrganizationFactory.create(slug="chose-settings")
    DunningSettings.objects.create(organization=chosen, preset=Preset.objects.get(slug="accelerated-14"),
                                   min_print="4.00")  # fmt: skip
    migration = importlib.import_module("dunning.migrations.0006_settings_for_every_organization")
    migration.create_missing_rows(apps, None)
    row = DunningSettings.objects.get(organization=bare)
    assert row.preset is not None
    assert (row.preset.slug, row.reset_fields) == ("standard-30", ["amount_due"])
    kept = DunningSettings.objects.get(organization=chosen)
    assert kept.preset is not None
    assert (kept.preset.slug, str(kept.min_print)) == ("accelerated-14", "4.00")
    migration.create_missing_rows(apps, None)
    assert DunningSettings.objects.count() == 2


def test_the_payments_migration_gives_every_existing_organization_its_row():
    bare = OrganizationFactory.create(slug="before-issue-12")
    chosen = OrganizationFactory.create(slug="chose-settings")
    PaymentSettings.objects.create(organization=chosen, eligible_aging=["over_90"])
    migration = importlib.import_module("payments.migrations.0003_settings_for_every_organization")
    migration.create_missing_rows(apps, None)
    assert PaymentSettings.objects.get(organization=bare).eligible_aging == ALL_AGING
    assert PaymentSettings.objects.get(organization=chosen).eligible_aging == ["over_90"]
    migration.create_missing_rows(apps, None)
    assert PaymentSettings.objects.count() == 2


def test_the_notifications_migration_gives_every_existing_organization_its_row():
    bare = OrganizationFactory.create(slug="before-sending-rows")
    chosen = OrganizationFactory.create(slug="chose-a-cap")
    NotificationSettings.objects.create(organization=chosen, frequency_cap="3/7d")
    migration = importlib.import_module("notifications.migrations.0011_settings_for_every_organization")
    migration.create_missing_rows(apps, None)
    row = NotificationSettings.objects.get(organization=bare)
    assert (f"{row.quiet_start:%H:%M}-{row.quiet_end:%H:%M}", row.frequency_cap) == ("21:00-08:00", "")
    assert NotificationSettings.objects.get(organization=chosen).frequency_cap == "3/7d"
    migration.create_missing_rows(apps, None)
    assert NotificationSettings.objects.count() == 2


@pytest.fixture
def manager(client):
    org = organization_create(slug="smile-dental", name="Smile Dental", timezone_name="America/Denver")
    organization_create(slug="other", name="Other Dental", timezone_name="America/Denver")
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    return membership


def test_the_organization_links_to_its_settings_and_they_link_back(client, manager):
    org = manager.organization
    dunning = DunningSettings.objects.get(organization=org)
    page = client.get(reverse("admin:practices_organization_change", args=[org.pk])).content.decode()
    dunning_url = reverse("admin:dunning_dunningsettings_change", args=[dunning.pk])
    assert f'<a href="{dunning_url}">Dunning settings</a>' in page
    payment = PaymentSettings.objects.get(organization=org)
    payment_url = reverse("admin:payments_paymentsettings_change", args=[payment.pk])
    assert f'<a href="{payment_url}">Payment settings</a>' in page
    listing = client.get(reverse("admin:practices_organization_changelist")).content.decode()
    assert f'<a href="{dunning_url}">Dunning settings</a>' in listing
    back = client.get(dunning_url)
    assert back.status_code == 200
    org_url = reverse("admin:practices_organization_change", args=[org.pk])
    assert f'<a href="{org_url}">Smile Dental</a>' in back.content.decode()
    assert f'<a href="{org_url}">Smile Dental</a>' in client.get(payment_url).content.decode()


def test_the_settings_are_titled_by_the_organizations_name(client, manager):
    dunning = DunningSettings.objects.get(organization=manager.organization)
    assert str(dunning) == "Dunning settings of Smile Dental"
    page = client.get(reverse("admin:dunning_dunningsettings_change", args=[dunning.pk])).content.decode()
    assert "<h2>Dunning settings of Smile Dental</h2>" in page
    assert (
        "Dunning settings of 1" not in page and f"Dunning settings of {dunning.organization_id}<" not in page
    )
    payment = PaymentSettings.objects.get(organization=manager.organization)
    assert str(payment) == "Payment settings of Smile Dental"
    page = client.get(reverse("admin:payments_paymentsettings_change", args=[payment.pk])).content.decode()
    assert "<h2>Payment settings of Smile Dental</h2>" in page


def test_the_billing_manager_lists_the_practices_settings_without_adding_them(client, manager):
    listing = client.get(reverse("admin:dunning_dunningsettings_changelist"))
    assert [row.organization.name for row in listing.context["cl"].result_list] == ["Smile Dental"]
    listing = client.get(reverse("admin:payments_paymentsettings_changelist"))
    assert [row.organization.name for row in listing.context["cl"].result_list] == ["Smile Dental"]
    listing = client.get(reverse("admin:notifications_notificationsettings_changelist"))
    assert [row.organization.name for row in listing.context["cl"].result_list] == ["Smile Dental"]
    assert reverse("admin:notifications_notificationsettings_add") not in listing.content.decode()
    sending = NotificationSettings.objects.get(organization=manager.organization)
    page = client.get(reverse("admin:practices_organization_change", args=[manager.organization.pk]))
    sending_url = reverse("admin:notifications_notificationsettings_change", args=[sending.pk])
    assert f'<a href="{sending_url}">Sending settings</a>' in page.content.decode()


def test_a_new_settings_form_ticks_the_default_reset_field():
    # Django's form for a new object takes the model defaults only for the fields it makes itself.
    form = DunningSettingsForm()
    assert form["reset_fields"].value() == ["amount_due"]
    assert 'value="amount_due" id="id_reset_fields_0" checked' in str(form["reset_fields"])
