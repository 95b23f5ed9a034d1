"""The sending settings in the admin (K1, K2; T2 by role, T5 audited) and the read-only table of state rules."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import NotificationSettings
from notifications.state_rules import STATE_RULES_VERSION
from practices.models import AuditEvent, Role
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")


def login(client, org, role):
    membership = MembershipFactory.create(organization=org, role=role)
    client.force_login(membership.user)
    return membership.user


def form(**overrides):
    data = {"quiet_start": "21:00", "quiet_end": "08:00", "frequency_cap": "3/7d", "send_on_sundays": "",
            "send_on_holidays": "on"}  # fmt: skip
    data.update(overrides)
    return data


def test_a_billing_manager_sets_the_cap_and_the_days_and_the_change_is_audited(client, org):
    user = login(client, org, Role.BILLING_MANAGER)
    row = NotificationSettings.objects.create(organization=org)
    url = reverse("admin:notifications_notificationsettings_change", args=[row.pk])
    page = client.get(url).content.decode()
    assert "Fla. Stat. § 559.72(17)" in page and STATE_RULES_VERSION in page
    response = client.post(url, form())
    assert response.status_code == 302, response.content.decode()[:3000]
    row.refresh_from_db()
    assert (row.frequency_cap, row.send_on_sundays, row.send_on_holidays) == ("3/7d", False, True)
    event = AuditEvent.objects.get(action="admin.change")
    assert event.actor == user
    assert event.changes["frequency_cap"] == ["", "3/7d"]
    assert event.changes["send_on_sundays"] == ["True", "False"]


@pytest.mark.parametrize("cap", ["3/week", "3/7", "0/7d"])
def test_the_admin_refuses_a_cap_in_another_form(client, org, cap):
    login(client, org, Role.BILLING_MANAGER)
    row = NotificationSettings.objects.create(organization=org)
    response = client.post(reverse("admin:notifications_notificationsettings_change", args=[row.pk]),
                           form(frequency_cap=cap))  # fmt: skip
    assert response.status_code == 200
    assert "expected N/Dd, e.g. 3/7d" in response.content.decode()
    row.refresh_from_db()
    assert row.frequency_cap == ""
    assert not AuditEvent.objects.exists()


def test_the_state_rules_page_is_read_only_for_billing_managers_and_closed_to_front_desk(client, org):
    url = reverse("admin:notifications_notificationsettings_state_rules")
    login(client, org, Role.BILLING_MANAGER)
    page = client.get(url).content.decode()
    for text in ("Florida (FL)", "Massachusetts (MA)", "2 in 7 days", "940 CMR 7.04(1)(f)", "08:00–21:00"):
        assert text in page
    assert "<form" not in page.split('id="content-main"')[1]
    client.logout()
    login(client, OrganizationFactory.create(slug="other"), Role.FRONT_DESK)
    assert client.get(url).status_code == 403
