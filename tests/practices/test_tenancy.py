"""T1/T2: every admin queryset is limited to the user's organizations, with rights by role."""

from __future__ import annotations

import pytest
from django.urls import reverse

from practices.models import AuditEvent, Membership, Role
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs():
    a = OrganizationFactory.create(slug="org-a")
    b = OrganizationFactory.create(slug="org-b")
    return a, b


def login(client, org, role):
    membership = MembershipFactory.create(organization=org, role=role)
    client.force_login(membership.user)
    return membership.user


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLING_MANAGER, Role.ORG_ADMIN])
def test_another_organizations_patient_is_a_404_in_the_admin(client, two_orgs, role):
    a, b = two_orgs
    login(client, a, role)
    mine = GuarantorFactory.create(organization=a)
    theirs = GuarantorFactory.create(organization=b)
    assert client.get(reverse("admin:practices_patient_change", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:practices_patient_change", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("admin:practices_patient_history", args=[theirs.pk])).status_code == 404


def test_the_patient_list_shows_only_the_users_organizations(client, two_orgs):
    a, b = two_orgs
    login(client, a, Role.FRONT_DESK)
    GuarantorFactory.create(organization=a, last_name="Mine")
    GuarantorFactory.create(organization=b, last_name="Theirs")
    content = client.get(reverse("admin:practices_patient_changelist")).content.decode()
    assert "Mine" in content
    assert "Theirs" not in content


def test_other_organizations_accounts_bills_and_memberships_are_404(client, two_orgs):
    a, b = two_orgs
    login(client, a, Role.ORG_ADMIN)
    account = AccountFactory.create(guarantor=GuarantorFactory.create(organization=b))
    membership = MembershipFactory.create(organization=b)
    assert client.get(reverse("admin:practices_account_change", args=[account.pk])).status_code == 404
    assert client.get(reverse("admin:practices_membership_change", args=[membership.pk])).status_code == 404
    assert client.get(reverse("admin:practices_organization_change", args=[b.pk])).status_code == 404
    assert client.get(reverse("admin:practices_organization_change", args=[a.pk])).status_code == 200


def test_a_superuser_sees_every_organization(client, two_orgs):
    _a, b = two_orgs
    client.force_login(UserFactory.create(is_superuser=True))
    theirs = GuarantorFactory.create(organization=b)
    assert client.get(reverse("admin:practices_patient_change", args=[theirs.pk])).status_code == 200


def test_mirrored_patients_are_read_only(client, two_orgs):
    a, _ = two_orgs
    login(client, a, Role.ORG_ADMIN)
    patient = GuarantorFactory.create(organization=a, first_name="Ana")
    response = client.post(
        reverse("admin:practices_patient_change", args=[patient.pk]), {"first_name": "Eve"}
    )
    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.first_name == "Ana"


def test_front_desk_cannot_manage_memberships_but_an_org_admin_can(client, two_orgs):
    a, _ = two_orgs
    front = login(client, a, Role.FRONT_DESK)
    assert client.get(reverse("admin:practices_membership_changelist")).status_code == 403
    Membership.objects.filter(user=front).update(role=Role.ORG_ADMIN)
    client.force_login(front)
    assert client.get(reverse("admin:practices_membership_changelist")).status_code == 200


def test_an_org_admin_cannot_add_a_member_to_another_organization(client, two_orgs):
    a, b = two_orgs
    login(client, a, Role.ORG_ADMIN)
    newcomer = UserFactory.create(username="newcomer")
    response = client.post(
        reverse("admin:practices_membership_add"),
        {"username": "newcomer", "organization": b.pk, "role": "front_desk"},
    )
    assert response.status_code == 200  # the form comes back with an error
    assert not Membership.objects.filter(user=newcomer).exists()
    response = client.post(
        reverse("admin:practices_membership_add"),
        {"username": "newcomer", "organization": a.pk, "role": "front_desk"},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer).organization == a


def test_an_org_admin_change_to_the_organization_is_audited(client, two_orgs):
    a, _ = two_orgs
    user = login(client, a, Role.ORG_ADMIN)
    url = reverse("admin:practices_organization_change", args=[a.pk])
    data = {"name": "Renamed", "timezone": "America/Boise", "phone": "", "email_from": ""}
    response = client.post(url, data)
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="admin.change")
    assert event.actor == user
    assert event.changes["timezone"] == ["America/Denver", "America/Boise"]


def test_a_billing_manager_cannot_edit_the_organization(client, two_orgs):
    a, _ = two_orgs
    login(client, a, Role.BILLING_MANAGER)
    response = client.post(
        reverse("admin:practices_organization_change", args=[a.pk]), {"name": "X", "timezone": "UTC"}
    )
    assert response.status_code == 403


def test_admin_lists_and_choices_follow_the_admins_own_role_in_each_organization(client, two_orgs):
    a, b = two_orgs
    user = login(client, a, Role.ORG_ADMIN)
    MembershipFactory.create(user=user, organization=b, role=Role.FRONT_DESK)
    client.force_login(user)
    mine = MembershipFactory.create(organization=a)
    MembershipFactory.create(organization=b)
    listed = client.get(reverse("admin:practices_membership_changelist")).context["cl"].result_list
    assert {m.organization_id for m in listed} == {a.pk}
    assert mine in listed
    form = client.get(reverse("admin:practices_membership_add")).context["adminform"].form
    assert list(form.fields["organization"].queryset) == [a]


def test_an_admin_delete_is_audited(client, two_orgs):
    a, _ = two_orgs
    user = login(client, a, Role.ORG_ADMIN)
    member = MembershipFactory.create(organization=a)
    response = client.post(reverse("admin:practices_membership_delete", args=[member.pk]), {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.delete")
    assert (event.actor, event.object_id, event.organization) == (user, str(member.pk), a)
