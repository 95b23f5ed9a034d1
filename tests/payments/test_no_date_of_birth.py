"""P2 for a guarantor with no date of birth on file (I1a, issue 13).

Open Dental writes a patient without a birthdate as ``0001-01-01``; the importer stores that as no date of
birth. The MM/YYYY check then has nothing to compare with: counting guesses would lock the patient out for
15 minutes at a time and finally block the link, for a check no answer could pass. The page instead asks
for nothing and sends the patient to the practice; nothing about the patient or the balance is shown (P2).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from payments.checkout import DobOutcome, dob_verify
from payments.links import payment_link_create
from payments.models import PaymentLink
from practices.importer import feed_import
from practices.models import Bill, Organization
from tests.factories import OrganizationFactory, feed_patient, feed_statement

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


@pytest.fixture
def link_and_token(feed_bytes) -> tuple[PaymentLink, str]:
    OrganizationFactory.create(slug="smile-dental", name="Smile Dental", phone="+18015550199")
    with time_machine.travel(NOW, tick=False):
        summary = feed_import(
            raw=feed_bytes(
                patients=[feed_patient("1042", date_of_birth="0001-01-01", first_name="Marisol")],
                statements=[feed_statement("S-1", "1042", amount_due="150.00")],
            )
        )
    assert summary.errors == []
    link, url = payment_link_create(bill=Bill.objects.get())
    return link, url.rstrip("/").rsplit("/", 1)[-1]


def test_the_page_asks_for_nothing_and_gives_the_number_to_call(client: Client, link_and_token) -> None:
    _, token = link_and_token
    html = client.get(reverse("pay:link", kwargs={"token": token})).content.decode()
    assert "We can't confirm your identity online for this account." in html
    assert 'href="tel:+18015550199">(801) 555-0199</a>' in html
    assert "<form" not in html
    assert "Marisol" not in html and "150.00" not in html


def test_guesses_are_not_counted_so_the_link_is_never_locked_or_blocked(
    client: Client, link_and_token
) -> None:
    link, token = link_and_token
    for _ in range(16):  # past three lockouts' worth of failures
        client.post(reverse("pay:link", kwargs={"token": token}), {"step": "verify", "dob": "01/0001"})
    link.refresh_from_db()
    assert (link.failed_attempts, link.locked_until, link.lockouts, link.blocked_at) == (0, None, 0, None)
    assert dob_verify(link=link, month_year="04/1980") == DobOutcome.NO_DATE_OF_BIRTH


def test_once_the_pms_has_a_date_of_birth_the_check_asks_for_it(
    client: Client, link_and_token, feed_bytes
) -> None:
    _, token = link_and_token
    feed_import(
        raw=feed_bytes(
            generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("1042", date_of_birth="1980-04-12")]
        )
    )
    html = client.get(reverse("pay:link", kwargs={"token": token})).content.decode()
    assert 'name="dob"' in html
    assert Organization.objects.count() == 1


def test_staff_see_on_the_guarantor_page_that_the_patient_cannot_verify_online(
    client: Client, link_and_token
) -> None:
    from practices.models import Patient, Role
    from tests.factories import MembershipFactory

    guarantor = Patient.objects.get(external_id="1042")
    Patient.objects.filter(pk=guarantor.pk).update(
        home_phone="+18015550111", preferred_name="Mari", language="es", care_of="Rosa Ortega"
    )
    membership = MembershipFactory.create(organization=guarantor.organization, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    page = reverse("payments_dashboard:guarantor", args=[guarantor.organization.slug, "1042"])
    html = client.get(page).content.decode()
    assert "None on file: the payment page cannot verify the patient and asks them to call" in html
    assert '<dt>Home phone</dt><dd>(•••) •••-0111 <span class="muted">(never texted)</span>' in html
    assert "<dt>Goes by</dt><dd>Mari</dd>" in html and "<dt>Letters care of</dt><dd>Rosa Ortega</dd>" in html
    assert "<dt>Text consent</dt><dd>Unknown" in html
