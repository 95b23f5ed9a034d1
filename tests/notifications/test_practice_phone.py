"""The practice's phone in message bodies (N4, issue 12): printed in US national format by the one builder,
``message_values()``, and never empty: a practice with no phone on file got "please call us at ."."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from notifications.models import Template
from notifications.templating import message_values, render_message
from practices.models import Organization
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def values_for(organization: Organization) -> dict[str, str]:
    return message_values(
        first_name="Ana", last_name="Diaz", organization=organization, amount_due=Decimal("120.00"),
        pay_ref="ref-1", due_date=date(2026, 12, 10), statement_date=date(2026, 11, 20),
    )  # fmt: skip


def test_the_practice_phone_is_printed_in_national_format_and_kept_in_e164() -> None:
    organization = OrganizationFactory.create(phone="+18015550199")

    values = values_for(organization)

    assert values["practice.phone"] == "(801) 555-0199"
    organization.refresh_from_db()
    assert organization.phone == "+18015550199"


def test_every_system_default_reads_as_a_sentence_for_a_practice_without_a_phone() -> None:
    organization = OrganizationFactory.create(phone="")
    values = values_for(organization)

    bodies = [
        render_message(template=t, values=values)[1] for t in Template.objects.filter(organization=None)
    ]

    calling = [body for body in bodies if "call us at" in body]
    assert calling, "the system defaults ask patients to call"
    for body in bodies:
        assert not re.search(r"\bat\s*[.,]", body), body
    assert all("please call us at the office." in body for body in calling)


def test_the_system_defaults_print_the_phone_as_a_person_dials_it() -> None:
    organization = OrganizationFactory.create(phone="+18015550199")
    values = values_for(organization)

    bodies = [
        render_message(template=t, values=values)[1] for t in Template.objects.filter(organization=None)
    ]

    assert any("please call us at (801) 555-0199." in body for body in bodies)
    assert not any("+1801" in body for body in bodies)
