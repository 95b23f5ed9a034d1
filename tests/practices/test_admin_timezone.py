"""Admin times in the practice's zone, with the zone named (issue 12: the admin showed UTC while the dashboard
used the practice's zone). A member of one practice sees its zone; ops, and members of practices in several
zones, see UTC and are told so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from practices.middleware import AdminTimezoneMiddleware
from practices.models import AuditEvent, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # 8:30 a.m. in Denver (MST), 10:30 a.m. in New York


@pytest.fixture
def denver():
    org = OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")
    event = AuditEvent.objects.create(organization=org, actor_label="system", action="settings.change")
    AuditEvent.objects.filter(pk=event.pk).update(created_at=MOMENT)
    return org


def audit_list(client) -> str:
    response = client.get(reverse("admin:practices_auditevent_changelist"))
    assert response.status_code == 200
    return response.content.decode()


@time_machine.travel(MOMENT, tick=False)
def test_a_member_of_one_practice_sees_its_zone_named(client, denver):
    membership = MembershipFactory.create(organization=denver, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    page = audit_list(client)
    assert "Nov. 24, 2026, 8:30 a.m." in page
    assert "3:30 p.m." not in page
    assert "Times are in America/Denver (MST)." in page
    assert timezone.get_current_timezone_name() == "UTC"  # deactivated after the request


@time_machine.travel(MOMENT, tick=False)
def test_ops_see_utc_and_are_told_so(admin_client, denver):
    page = audit_list(admin_client)
    assert "Nov. 24, 2026, 3:30 p.m." in page
    assert "Times are in UTC." in page


@time_machine.travel(MOMENT, tick=False)
def test_practices_in_several_zones_show_utc_and_in_one_zone_that_zone(client, denver):
    user = UserFactory.create()
    MembershipFactory.create(user=user, organization=denver, role=Role.BILLING_MANAGER)
    same_zone = OrganizationFactory.create(slug="boulder", timezone="America/Denver")
    MembershipFactory.create(user=user, organization=same_zone, role=Role.FRONT_DESK)
    client.force_login(user)
    assert "Times are in America/Denver (MST)." in audit_list(client)
    elsewhere = OrganizationFactory.create(slug="brooklyn", timezone="America/New_York")
    MembershipFactory.create(user=user, organization=elsewhere, role=Role.FRONT_DESK)
    page = audit_list(client)
    assert "Times are in UTC." in page
    assert "Nov. 24, 2026, 3:30 p.m." in page


def test_pages_outside_the_admin_keep_the_default_zone(denver):
    membership = MembershipFactory.create(organization=denver, role=Role.FRONT_DESK)
    seen: list[str] = []

    def view(request):
        seen.append(timezone.get_current_timezone_name())
        return HttpResponse()

    middleware = AdminTimezoneMiddleware(view)
    for path in ("/dashboard/payments/", reverse("admin:index")):
        request = RequestFactory().get(path)
        request.user = membership.user
        middleware(request)
    assert seen == ["UTC", "America/Denver"]
    assert timezone.get_current_timezone_name() == "UTC"
