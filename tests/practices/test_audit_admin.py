"""The audit in the admin (T5, SPEC §6 "old → new, visible in the admin"): each change reads "label: old → new",
one per line, with the label the person saw and the value as they set it (issue 12: it showed the stored JSON)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from dunning.models import DunningSettings, Preset
from practices.models import AuditEvent, Role
from practices.services import organization_create
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client):
    org = organization_create(slug="smile-dental", name="Smile Dental", timezone_name="America/Denver")
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    return membership


def detail(client, event: AuditEvent) -> str:
    page = client.get(reverse("admin:practices_auditevent_change", args=[event.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_an_admin_change_reads_label_old_to_new_one_per_line(client, manager):
    row = DunningSettings.objects.get(organization=manager.organization)
    url = reverse("admin:dunning_dunningsettings_change", args=[row.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value is not None and value is not False}
    data.update(preset=Preset.objects.get(slug="accelerated-14").pk, min_electronic="5.00",
                skip_paper_when_electronic="on", reset_fields=["amount_due", "due_date"])  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.status_code == 200 else ""
    )
    event = AuditEvent.objects.get(action="admin.change")
    page = detail(client, event)
    expected = {
        "preset": "Dunning configuration: Standard 30-day → Accelerated 14-day",
        "min_electronic": "Minimum dollar threshold, electronic (email + SMS): 0.00 → 5.00",
        "reset_fields": "Reset bill fields: amount_due → amount_due, due_date",
        "skip_paper_when_electronic": "Skip paper when electronic available: False → True",
    }
    assert set(event.changes) == set(expected)
    lines = [expected[name] for name in event.changes]
    assert "<br>".join(lines) in page  # one per line
    assert '["Standard 30-day", "Accelerated 14-day"]' not in page and "{&quot;" not in page
    listing = client.get(reverse("admin:practices_auditevent_changelist")).content.decode()
    assert lines[0] in listing


def test_an_org_settings_change_reads_in_the_form_set_takes(client, manager):
    call_command("org_settings", "--org", "smile-dental", "--set", "min_electronic=2.5", "reset_fields=",
                 "max_open_claims=3", "eligible_aging=61_90,over_90", "timezone=America/Boise",
                 "quiet_hours=20:30-09:00", stdout=StringIO())  # fmt: skip
    page = detail(client, AuditEvent.objects.get(action="settings.change"))
    for line in [
        "Minimum dollar threshold, electronic (email + SMS): 0.00 → 2.50",
        "Reset bill fields: amount_due → —",
        "Max open claims: none → 3",
        "Eligible aging: 0_30,31_60,61_90,over_90 → 61_90,over_90",
        "Timezone: America/Denver → America/Boise",
        "quiet_hours: 21:00-08:00 → 20:30-09:00",
    ]:
        assert line in page
    assert "[&quot;" not in page and "None" not in page.split('id="content-main"')[1]


def test_an_event_without_pairs_lists_its_values(client, manager):
    event = AuditEvent.objects.create(organization=manager.organization, actor_label="system",
                                      action="admin.delete", object_type="dunning.DunningSettings",
                                      object_id="1", changes={"deleted": "Dunning settings of Smile Dental"})  # fmt: skip
    assert "deleted: Dunning settings of Smile Dental" in detail(client, event)
    created = AuditEvent.objects.get(action="organization.create")
    assert "Slug: — → smile-dental" in detail(client, created)
