from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from notifications.models import Channel, Kind, Message, State
from practices.models import Bill, Role
from tests.factories import GuarantorFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def _message(patient, **kw):
    defaults = {"organization": patient.organization, "patient": patient, "channel": Channel.SMS, "kind": Kind.REQUEST,
                "body": "x", "destination": "+18015550100", "state": State.SENT}  # fmt: skip
    return Message.objects.create(**{**defaults, **kw})


def test_list_messages_prints_the_contract_json():
    org = OrganizationFactory.create(slug="smile")
    ana = GuarantorFactory.create(organization=org, external_id="P1")
    moment = datetime(2026, 11, 24, 15, tzinfo=UTC)
    bill = Bill.objects.create(organization=org, guarantor=ana, bill_id="S-1", source="statement", amount_due="10.00",
                               created_at=moment, effective_created_date=moment.date(), last_seen_at=moment)  # fmt: skip
    first = _message(ana, bill=bill, scheduled_for=moment, provider_id="SM1")
    _message(
        GuarantorFactory.create(organization=org, external_id="P2"),
        state=State.UNDELIVERED,
        reason="no_destination",
    )
    _message(GuarantorFactory.create(organization=OrganizationFactory.create(slug="other"), external_id="P1"))
    out = StringIO()
    call_command("list_messages", "--org", "smile", "--guarantor", "P1", "--json", stdout=out)
    assert json.loads(out.getvalue()) == [
        {"id": first.pk, "guarantor_id": "P1", "bill_id": "S-1", "channel": "sms", "kind": "request", "state": "sent",
         "scheduled_for": "2026-11-24T15:00:00+00:00", "provider_id": "SM1", "error_code": "", "reason": ""}
    ]  # fmt: skip
    out = StringIO()
    call_command("list_messages", "--org", "smile", "--state", "undelivered", "--json", stdout=out)
    assert [row["reason"] for row in json.loads(out.getvalue())] == ["no_destination"]


def test_list_messages_refuses_an_unknown_state_or_organization():
    OrganizationFactory.create(slug="smile")
    with pytest.raises(CommandError) as exc:
        call_command("list_messages", "--org", "smile", "--state", "lost", stdout=StringIO())
    assert exc.value.returncode == 2
    with pytest.raises(CommandError):
        call_command("list_messages", "--org", "nope", stdout=StringIO())


def test_the_message_admin_is_scoped_and_filters_undeliverable(client):
    org = OrganizationFactory.create()
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    mine = _message(GuarantorFactory.create(organization=org), state=State.UNDELIVERED)
    _message(GuarantorFactory.create(organization=org), state=State.DELIVERED)
    theirs = _message(
        GuarantorFactory.create(organization=OrganizationFactory.create()), state=State.UNDELIVERED
    )
    response = client.get(reverse("admin:notifications_message_changelist") + "?problem=undeliverable")
    assert [m.pk for m in response.context["cl"].result_list] == [mine.pk]
    assert client.get(reverse("admin:notifications_message_change", args=[theirs.pk])).status_code == 404
