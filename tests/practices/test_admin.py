"""The operator admin of the practices app: API tokens and feed imports."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dunning.selectors import dunning_settings_get
from payments.eligibility import payment_settings_get
from practices.importer import feed_import
from practices.models import ApiToken, FeedImport, Role
from tests.factories import MembershipFactory, OrganizationFactory, feed_patient

pytestmark = pytest.mark.django_db


def test_an_org_admin_issues_a_token_that_is_shown_once_and_works(client, feed_bytes):
    org = OrganizationFactory.create(slug="smile-dental")
    membership = MembershipFactory.create(organization=org, role=Role.ORG_ADMIN)
    client.force_login(membership.user)
    response = client.post(
        reverse("admin:practices_apitoken_add"), {"organization": org.pk, "name": "PMS"}, follow=True
    )
    assert response.status_code == 200
    message = next(str(m) for m in response.context["messages"] if "copy it now" in str(m))
    plaintext = message.split(": ")[1].split(" ")[0]
    token = ApiToken.objects.get()
    assert token.token_hash not in message
    api = client.post("/api/v1/feeds", data=feed_bytes(patients=[feed_patient("P1")]), content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {plaintext}")  # fmt: skip
    assert api.status_code == 200


def test_a_front_desk_user_cannot_see_api_tokens(client):
    membership = MembershipFactory.create(role=Role.FRONT_DESK)
    client.force_login(membership.user)
    assert client.get(reverse("admin:practices_apitoken_changelist")).status_code == 403


def test_the_feed_import_admin_shows_counts_and_errors(client, feed_bytes):
    org = OrganizationFactory.create(slug="smile-dental")
    feed_import(raw=feed_bytes(patients=[feed_patient("P1"), feed_patient("P2", last_name="")]))
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    listing = client.get(reverse("admin:practices_feedimport_changelist")).content.decode()
    assert "Applied with rejections" in listing
    detail = client.get(
        reverse("admin:practices_feedimport_change", args=[FeedImport.objects.get().pk])
    ).content.decode()
    assert "/patients/1/last_name" in detail
    assert "is required" in detail


@pytest.mark.parametrize(
    "changelist", ["admin:practices_organization_changelist", "admin:payments_paymentsettings_changelist",
                   "admin:dunning_dunningsettings_changelist"],
)  # fmt: skip
def test_a_billing_manager_at_one_practice_and_front_desk_at_another_sees_only_the_first(client, changelist):
    """T1/T2 (issue 11): the organization list lowered the role to front desk and showed B, whose page is 403."""
    manager = MembershipFactory.create(role=Role.BILLING_MANAGER)
    other = OrganizationFactory.create(slug="other-practice")
    MembershipFactory.create(user=manager.user, organization=other, role=Role.FRONT_DESK)
    for organization in (manager.organization, other):
        payment_settings_get(organization=organization).save()
        dunning_settings_get(organization=organization).save()
    client.force_login(manager.user)

    page = client.get(reverse(changelist))

    assert page.status_code == 200
    shown = {getattr(row, "organization", row).pk for row in page.context["cl"].result_list}
    assert shown == {manager.organization.pk}
