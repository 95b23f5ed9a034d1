"""The patient payment page: P1 (links), P2 (MM/YYYY check and lock), P3 (payments), T4, T5."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications import paylinks
from notifications.models import Kind, Message
from notifications.paylinks import PAY_URL
from payments.checkout import DobOutcome, PaymentRefused, checkout_begin, dob_verify
from payments.links import payment_link_create, payment_link_lookup
from payments.logfilters import RedactPaymentTokens
from payments.models import Checkout, Payment, PaymentLink, PaymentSettings, PaymentStatus, SandboxSession
from payments.processors.sandbox import events_deliver
from practices.models import AuditEvent, Bill, BillState, Organization, Role
from tests.concurrency import in_threads
from tests.factories import AccountFactory, GuarantorFactory, MembershipFactory, OrganizationFactory
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
DOB = date(1980, 4, 12)
PHONE = "(801) 555-0199"


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", phone=PHONE)


def make_bill(organization: Organization, *, amount: str = "150.00", first_name: str = "Marisol") -> Bill:
    guarantor = GuarantorFactory.create(
        organization=organization, first_name=first_name, last_name="Quintanilla", date_of_birth=DOB
    )
    AccountFactory.create(
        guarantor=guarantor, bucket_0_30=Decimal("40.00"), bucket_31_60=Decimal("110.00"),
        total=Decimal("150.00"), patient_portion=Decimal("150.00"), aging_category="31_60",
    )  # fmt: skip
    return Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id=f"R-{guarantor.external_id}",
        source="request", state="active", amount_due=Decimal(amount), created_at=NOW,
        effective_created_date=NOW.date(), last_seen_at=NOW,
    )  # fmt: skip


def make_link(bill: Bill) -> tuple[PaymentLink, str]:
    link, url = payment_link_create(bill=bill)
    return link, url.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def bill(clock: time_machine.Traveller, organization: Organization) -> Bill:
    return make_bill(organization)


@pytest.fixture
def link_and_token(bill: Bill) -> tuple[PaymentLink, str]:
    return make_link(bill)


@pytest.fixture
def token(link_and_token: tuple[PaymentLink, str]) -> str:
    return link_and_token[1]


@pytest.fixture
def link(link_and_token: tuple[PaymentLink, str]) -> PaymentLink:
    return link_and_token[0]


def page(token: str) -> str:
    return reverse("pay:link", kwargs={"token": token})


def verify(client: Client, token: str, dob: str = "04/1980", *, follow: bool = False) -> Any:
    return redirected(client.post(page(token), {"step": "verify", "dob": dob}, follow=follow), token, follow)


def checkout(client: Client, token: str, amount: str) -> Any:
    """Choose ``amount`` on the payment page: answered with the processor's hosted page (the sandbox's)."""
    response = client.post(page(token), {"step": "pay", "amount": amount})
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith("/sandbox/checkout/"), response["Location"]
    return response


def deliver(client: Client) -> int:
    """The sandbox's webhook deliveries, through this client (in the browser they go over HTTP)."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        path = url.removeprefix("http://testserver")
        return client.post(
            path, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"]
        ).status_code

    return events_deliver(post=post)


def pay(client: Client, token: str, amount: str, *, confirm: bool = True) -> str:
    """The whole payment: the amount, "Pay" on the sandbox's page, and (unless ``confirm`` is off) its signed
    confirmation. Returns the return page's path (the processor's success URL)."""
    hosted = checkout(client, token, amount)["Location"]
    back = client.post(hosted, {"outcome": "pay"})
    assert back.status_code == 302, back.status_code
    if confirm:
        deliver(client)
    return str(back["Location"]).removeprefix("http://testserver")


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages)


def redirected(response: Any, token: str, followed: bool) -> Any:
    """Post/Redirect/Get (issue 12): every POST is answered with a redirect, so Back never posts again; a
    followed one lands on the link's page (an error) or its receipt."""
    if followed:
        assert [code for _url, code in response.redirect_chain] == [302], response.redirect_chain
        assert response.redirect_chain[0][0].startswith(page(token))
    else:
        assert response.status_code == 302, response.status_code
    return response


@pytest.fixture
def verified(client: Client, token: str) -> Client:
    response = verify(client, token)
    assert response.status_code == 302
    return client


def assert_private(response: Any) -> None:
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"


def assert_no_patient_data(html: str) -> None:
    for secret in ("Marisol", "Quintanilla", "150.00", "110.00", "1980"):
        assert secret not in html


# P1


def test_the_token_has_at_least_128_bits_and_only_its_hash_is_stored(link: PaymentLink, token: str) -> None:
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    stored = PaymentLink.objects.get(pk=link.pk)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM payments_paymentlink")
        assert all(token not in str(value) for row in cursor.fetchall() for value in row)


def test_an_unknown_token_shows_the_neutral_page(client: Client, token: str) -> None:
    response = client.get(page("x" * 32))

    assert response.status_code == 404
    html = response.content.decode()
    assert "not available" in html
    assert "Smile Dental" not in html
    assert PHONE not in html
    assert_private(response)


def test_an_expired_link_shows_the_practice_phone_and_nothing_about_the_patient(
    client: Client, token: str, clock: time_machine.Traveller
) -> None:
    clock.shift(timedelta(days=30, seconds=1))

    response = client.get(page(token))

    assert response.status_code == 404
    html = response.content.decode()
    assert PHONE in html
    assert_no_patient_data(html)
    assert "Date of birth" not in html


@pytest.mark.parametrize("state", [BillState.PAID, BillState.CLOSED])
def test_a_link_whose_campaign_ended_shows_the_neutral_page(
    verified: Client, bill: Bill, token: str, state: str
) -> None:
    Bill.objects.filter(pk=bill.pk).update(state=state)

    response = verified.get(page(token))

    assert response.status_code == 404
    html = response.content.decode()
    assert PHONE in html
    assert_no_patient_data(html)


def test_a_live_link_answers_with_the_form(client: Client, token: str) -> None:
    response = client.get(page(token))

    assert response.status_code == 200
    assert_private(response)


# P2


def test_nothing_about_the_patient_or_the_balance_shows_before_the_date_of_birth_matches(
    client: Client, token: str
) -> None:
    response = client.get(page(token))

    html = response.content.decode()
    assert "Smile Dental" in html
    assert "Date of birth (MM/YYYY)" in html
    assert_no_patient_data(html)
    assert "Card number" not in html


def test_mm_yyyy_is_accepted_and_then_the_balance_and_its_aging_show(client: Client, token: str) -> None:
    response = verify(client, token, "04/1980")

    assert response.status_code == 302
    assert response["Location"] == page(token)
    assert_private(response)
    html = client.get(page(token)).content.decode()
    assert "Marisol" in html
    assert "Quintanilla" not in html
    assert "$150.00" in html
    assert "$110.00" in html  # the 31-60 bucket
    assert "31-60 days" in html
    assert 'value="150.00"' in html


def test_mm_dd_yy_is_rejected_with_a_format_error_naming_mm_yyyy(
    client: Client, token: str, link: PaymentLink
) -> None:
    response = verify(client, token, "04/12/80", follow=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert "MM/YYYY, for example" in html
    assert "We could not verify" not in html
    assert_no_patient_data(html)
    link.refresh_from_db()
    assert link.failed_attempts == 0


@pytest.mark.parametrize("dob", ["05/1980", "04/1981", "11/1999"])
def test_a_wrong_date_shows_the_generic_error_whichever_part_is_wrong(
    client: Client, token: str, link: PaymentLink, dob: str
) -> None:
    response = verify(client, token, dob, follow=True)

    assert response.status_code == 200
    html = response.content.decode()
    assert "We could not verify those details." in html
    assert_no_patient_data(html)
    link.refresh_from_db()
    assert link.failed_attempts == 1


def test_five_failures_lock_the_link_for_15_minutes_even_for_the_right_answer(
    client: Client, token: str, clock: time_machine.Traveller
) -> None:
    for _ in range(4):
        assert "We could not verify" in verify(client, token, "05/1980", follow=True).content.decode()
    assert (
        "Too many attempts. Try again in 15 minutes."
        in verify(client, token, "05/1980", follow=True).content.decode()
    )

    locked = verify(client, token, "04/1980", follow=True)
    assert locked.status_code == 200
    assert "Too many attempts" in locked.content.decode()
    assert "Too many attempts" in client.get(page(token)).content.decode()
    clock.shift(timedelta(minutes=14, seconds=59))
    assert (
        "Too many attempts. Try again in 1 minute."
        in verify(client, token, "04/1980", follow=True).content.decode()
    )
    assert_no_patient_data(client.get(page(token)).content.decode())

    clock.shift(timedelta(seconds=2))
    assert verify(client, token, "04/1980").status_code == 302
    assert "Marisol" in client.get(page(token)).content.decode()


def test_after_a_lock_runs_out_counting_starts_again(
    client: Client, token: str, link: PaymentLink, clock: time_machine.Traveller
) -> None:
    for _ in range(5):
        verify(client, token, "05/1980")
    clock.shift(timedelta(minutes=16))

    assert "We could not verify" in verify(client, token, "05/1980", follow=True).content.decode()

    link.refresh_from_db()
    assert (link.failed_attempts, link.locked_until) == (1, None)


def test_success_resets_the_counter(client: Client, token: str, link: PaymentLink) -> None:
    for _ in range(4):
        verify(client, token, "05/1980")

    assert verify(client, token, "04/1980").status_code == 302

    link.refresh_from_db()
    assert link.failed_attempts == 0
    other = Client()
    for _ in range(4):
        verify(other, token, "05/1980")
    assert verify(other, token, "04/1980").status_code == 302


def test_the_counter_lives_in_the_database_not_in_a_stale_copy(link: PaymentLink) -> None:
    # Parallel requests each hold their own copy of the link loaded before any guess was counted.
    copies = [PaymentLink.objects.select_related("bill__guarantor").get(pk=link.pk) for _ in range(6)]

    outcomes = [dob_verify(link=copy, month_year="05/1980") for copy in copies[:5]]

    assert outcomes == [DobOutcome.MISMATCH] * 4 + [DobOutcome.LOCKED]
    assert dob_verify(link=copies[5], month_year="04/1980") == DobOutcome.LOCKED


def test_verification_lasts_30_minutes(verified: Client, token: str, clock: time_machine.Traveller) -> None:
    clock.shift(timedelta(minutes=29))
    assert "Marisol" in verified.get(page(token)).content.decode()

    clock.shift(timedelta(minutes=2))
    html = verified.get(page(token)).content.decode()

    assert "Date of birth (MM/YYYY)" in html
    assert_no_patient_data(html)


def test_verifying_one_link_does_not_open_another(verified: Client, organization: Organization) -> None:
    other_bill = make_bill(organization, first_name="Beatriz")
    _, other_token = make_link(other_bill)

    html = verified.get(page(other_token)).content.decode()

    assert "Beatriz" not in html
    assert "Date of birth (MM/YYYY)" in html


def test_the_forms_are_csrf_protected(token: str) -> None:
    client = Client(enforce_csrf_checks=True)

    assert client.post(page(token), {"step": "verify", "dob": "04/1980"}).status_code == 403
    assert "csrfmiddlewaretoken" in client.get(page(token)).content.decode()


# P3, H1, H2: the patient chooses an amount, pays on the processor's hosted page (here the sandbox's), and the
# payment exists once its signed confirmation has reached the webhook.


def test_choosing_an_amount_sends_the_patient_to_the_processors_hosted_page(
    verified: Client, token: str, bill: Bill
) -> None:
    response = checkout(verified, token, "50.00")

    session = SandboxSession.objects.get()
    assert response["Location"] == f"/sandbox/checkout/{session.pk}/"
    started = Checkout.objects.get()
    assert (started.amount, started.processor, started.session_id, started.bill) == (
        Decimal("50.00"), "sandbox", session.pk, bill,
    )  # fmt: skip
    assert session.amount_cents == 5000
    assert session.success_url == f"http://testserver{page(token)}checkout/{started.reference}/"
    hosted = verified.get(response["Location"]).content.decode()
    assert "Sandbox processor: test mode" in hosted
    assert "Pay $50.00 with the test card" in hosted
    assert not Payment.objects.exists()


def test_the_payment_exists_only_once_the_signed_confirmation_arrives(
    verified: Client, token: str, bill: Bill
) -> None:
    back = pay(verified, token, "50.00", confirm=False)

    processing = verified.get(back)
    assert processing.status_code == 200
    assert_private(processing)
    assert "Processing your payment" in processing.content.decode()
    assert 'http-equiv="refresh"' in processing.content.decode()
    assert not Payment.objects.exists()
    bill.refresh_from_db()
    assert bill.amount_due == Decimal("150.00")

    assert deliver(verified) == 2
    receipt = verified.get(back)

    payment = Payment.objects.get()
    assert receipt.status_code == 302
    assert receipt["Location"] == reverse("pay:receipt", kwargs={"token": token, "payment_id": payment.pk})
    assert (payment.status, payment.amount, payment.processor) == (
        PaymentStatus.SUCCEEDED,
        Decimal("50.00"),
        "sandbox",
    )
    assert payment.processor_reference.startswith("pi_sbx_")
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state, bill.ended_at) == (Decimal("100.00"), BillState.ACTIVE, None)
    assert "$100.00" in verified.get(page(token)).content.decode()


def test_a_completed_bills_link_keeps_working_and_a_payment_in_full_ends_it(
    verified: Client, token: str, bill: Bill
) -> None:
    """D11: past its final notice the bill still owes; the link in that notice must take the payment."""
    Bill.objects.filter(pk=bill.pk).update(state=BillState.COMPLETED)

    assert "$150.00" in verified.get(page(token)).content.decode()
    pay(verified, token, "150.00")

    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("0.00"), BillState.PAID)
    assert AuditEvent.objects.get(action="payment.record").changes["state"] == ["completed", "paid"]


def test_a_payment_is_audited(verified: Client, token: str) -> None:
    pay(verified, token, "50.00")

    event = AuditEvent.objects.get(action="payment.record")
    assert event.actor_label == "sandbox"
    assert event.object_id == str(Payment.objects.get().pk)
    assert event.changes["amount_due"] == ["150.00", "100.00"]


def test_the_receipt_shows_the_payment_and_offers_a_pdf(verified: Client, token: str) -> None:
    response = verified.get(verified.get(pay(verified, token, "50.00"))["Location"])

    assert response.status_code == 200
    assert_private(response)
    html = response.content.decode()
    payment = Payment.objects.get()
    assert "$50.00" in html
    assert "$100.00" in html
    assert payment.processor_reference in html
    assert "November 24, 2026" in html
    pdf = verified.get(reverse("pay:receipt-pdf", kwargs={"token": token, "payment_id": payment.pk}))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert_private(pdf)
    text = pdf_text(pdf.content)
    for expected in ("Smile Dental", "Payment receipt", "Marisol Quintanilla", "$50.00", "$100.00",
                     payment.processor_reference, "November 24, 2026"):  # fmt: skip
        assert expected in text, expected


def test_the_receipt_and_its_pdf_need_the_verified_session(verified: Client, token: str) -> None:
    receipt_url = verified.get(pay(verified, token, "50.00"))["Location"]
    payment = Payment.objects.get()

    for url in (receipt_url, reverse("pay:receipt-pdf", kwargs={"token": token, "payment_id": payment.pk})):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == page(token)


def test_a_receipt_is_only_for_the_links_own_payments(
    verified: Client, token: str, organization: Organization
) -> None:
    other_bill = make_bill(organization, first_name="Beatriz")
    _, other_token = make_link(other_bill)
    other = Client()
    verify(other, other_token)
    other_payment_url = other.get(pay(other, other_token, "20.00"))["Location"]
    other_payment_id = other_payment_url.rstrip("/").rsplit("/", 1)[-1]

    response = verified.get(reverse("pay:receipt", kwargs={"token": token, "payment_id": other_payment_id}))

    assert response.status_code == 404
    assert "$20.00" not in response.content.decode()


def test_a_partial_payment_keeps_the_campaign_and_paying_the_rest_ends_it(
    verified: Client, token: str, bill: Bill
) -> None:
    pay(verified, token, "50.00")
    bill.refresh_from_db()
    assert bill.state == BillState.ACTIVE

    back = pay(verified, token, "100.00")

    bill.refresh_from_db()
    assert (bill.amount_due, bill.state, bill.ended_at) == (Decimal("0.00"), BillState.PAID, NOW)
    ended = verified.get(page(token))
    assert ended.status_code == 404
    assert PHONE in ended.content.decode()
    assert_no_patient_data(ended.content.decode())
    receipt = verified.get(verified.get(back)["Location"])
    assert receipt.status_code == 200
    assert "paid in full" in receipt.content.decode()


def test_a_declined_card_on_the_hosted_page_takes_nothing(verified: Client, token: str, bill: Bill) -> None:
    hosted = checkout(verified, token, "50.00")["Location"]

    response = verified.post(hosted, {"outcome": "decline"})
    deliver(verified)

    assert response.status_code == 200
    assert "Your card was declined" in response.content.decode()
    assert not Payment.objects.exists()
    assert Checkout.objects.get().failed_attempts == 1
    bill.refresh_from_db()
    assert (bill.amount_due, bill.state) == (Decimal("150.00"), BillState.ACTIVE)


def test_leaving_the_hosted_page_says_nothing_was_charged(verified: Client, token: str) -> None:
    checkout(verified, token, "50.00")
    cancel_url = SandboxSession.objects.get().cancel_url

    response = verified.get(cancel_url.removeprefix("http://testserver"), follow=True)

    assert "Nothing was charged" in response.content.decode()
    assert not Payment.objects.exists()


def test_an_amount_above_the_amount_due_is_refused(verified: Client, token: str, bill: Bill) -> None:
    response = redirected(
        verified.post(page(token), {"step": "pay", "amount": "150.01"}, follow=True), token, True
    )

    assert response.status_code == 200
    assert "cannot be more than the amount due ($150.00)" in response.content.decode()
    assert not Checkout.objects.exists()


@pytest.mark.parametrize(
    ("minimum", "amount_due", "amount", "accepted"),
    [
        ("25.00", "150.00", "24.99", False),
        ("25.00", "150.00", "25.00", True),
        ("25.00", "15.00", "14.99", False),  # less than the minimum is owed: the whole balance, no less
        ("25.00", "15.00", "15.00", True),
        ("0.00", "150.00", "0.01", True),
    ],
)
def test_the_patient_pays_at_least_the_minimum_or_the_whole_balance_if_less(
    verified: Client, token: str, bill: Bill, organization: Organization, minimum: str, amount_due: str,
    amount: str, accepted: bool,
) -> None:  # fmt: skip
    """H1."""
    PaymentSettings.objects.update_or_create(
        organization=organization, defaults={"min_payment_amount": Decimal(minimum)}
    )
    Bill.objects.filter(pk=bill.pk).update(amount_due=Decimal(amount_due))

    response = verified.post(page(token), {"step": "pay", "amount": amount})

    assert Checkout.objects.exists() is accepted
    if accepted:
        assert response["Location"].startswith("/sandbox/checkout/")
    else:
        assert "The smallest payment accepted is" in verified.get(page(token)).content.decode()


def test_the_page_says_which_amounts_are_accepted(
    verified: Client, token: str, organization: Organization
) -> None:
    PaymentSettings.objects.update_or_create(
        organization=organization, defaults={"min_payment_amount": Decimal("25.00")}
    )

    html = verified.get(page(token)).content.decode()

    assert "Pay any amount from $25.00 up to $150.00." in html


@pytest.mark.parametrize("amount", ["0", "-5", "12.345", "ten", "", "NaN"])
def test_a_zero_negative_or_malformed_amount_is_refused(verified: Client, token: str, amount: str) -> None:
    response = redirected(
        verified.post(page(token), {"step": "pay", "amount": amount}, follow=True), token, True
    )

    assert response.status_code == 200
    assert 'class="field-error"' in response.content.decode()
    assert not Checkout.objects.exists()


def test_a_processor_that_is_down_shows_try_again_and_starts_nothing(
    verified: Client, token: str, settings: Any
) -> None:
    with FakeStripe() as fake:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE_URL = fake.secret_key, fake.base_url
        settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
        fake.fail_next(status=503, times=5)

        response = redirected(
            verified.post(page(token), {"step": "pay", "amount": "50.00"}, follow=True), token, True
        )

    html = response.content.decode()
    assert "The payment service is not answering right now. Nothing was charged; please try again" in html
    assert 'value="50.00"' in html
    assert not Checkout.objects.exists()


def test_no_template_has_a_card_field() -> None:
    """P3, SAQ A: no card number, expiry or security code is ever posted to our server."""
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = template.read_text().lower()
        for field in (
            "card_number",
            "cc-number",
            "cc-exp",
            "cc-csc",
            'name="cvc"',
            'name="expiry"',
            "card number",
        ):
            assert field not in text, (template, field)


def test_a_payment_without_a_verified_session_asks_for_the_date_of_birth(client: Client, token: str) -> None:
    response = redirected(
        client.post(page(token), {"step": "pay", "amount": "50.00"}, follow=True), token, True
    )

    assert response.status_code == 200
    assert "confirm your date of birth again" in response.content.decode()
    assert not Checkout.objects.exists()


def test_back_from_the_processor_after_the_verification_ran_out_asks_again_then_shows_the_payment(
    verified: Client, token: str, clock: time_machine.Traveller
) -> None:
    back = pay(verified, token, "50.00")
    clock.shift(timedelta(minutes=31))

    again = verified.get(back)
    assert again["Location"] == page(token)
    assert "confirm your date of birth again" in verified.get(page(token)).content.decode()

    answer = verify(verified, token)
    assert answer["Location"] == back
    assert verified.get(back)["Location"].startswith(f"{page(token)}receipt/")


def test_the_service_refuses_a_checkout_on_an_ended_campaign(link: PaymentLink, bill: Bill) -> None:
    Bill.objects.filter(pk=bill.pk).update(state=BillState.PAID)

    with pytest.raises(PaymentRefused):
        checkout_begin(
            link=link, amount=Decimal("10.00"), success_url=lambda ref: "http://t/", cancel_url="http://t/"
        )
    assert not Checkout.objects.exists()


# Concurrency (needs PostgreSQL's row locks; SQLite serialises every writer anyway).


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_guesses_cannot_run_past_the_counter(link: PaymentLink) -> None:
    copies = [PaymentLink.objects.select_related("bill__guarantor").get(pk=link.pk) for _ in range(12)]

    outcomes = in_threads(*[lambda copy=copy: dob_verify(link=copy, month_year="05/1980") for copy in copies])

    assert set(outcomes) == {DobOutcome.MISMATCH, DobOutcome.LOCKED}, outcomes
    assert outcomes.count(DobOutcome.MISMATCH) <= 4
    link.refresh_from_db()
    assert link.failed_attempts == 5
    assert link.locked_until is not None
    assert dob_verify(link=link, month_year="04/1980") == DobOutcome.LOCKED


def test_an_import_generated_before_a_payment_does_not_undo_it(feed_bytes):
    """I6 vs P3: the feed's balance predates our payment; the campaign keeps the payment off."""
    from practices.importer import feed_import
    from practices.models import Patient
    from tests.factories import feed_patient

    org = OrganizationFactory.create(slug="smile-dental", timezone="America/Denver")
    feed_import(raw=feed_bytes(generated_at="2026-11-24T06:00:00Z",
                               patients=[feed_patient("P1", balance={"0_30": "100.00"})]))  # fmt: skip
    guarantor = Patient.objects.get(external_id="P1")
    moment = datetime(2026, 11, 24, 16, tzinfo=UTC)
    bill = Bill.objects.create(organization=org, guarantor=guarantor, bill_id="REQ-1", source="request",
                               amount_due=Decimal("100.00"), created_at=moment,
                               effective_created_date=moment.date(), last_seen_at=moment)  # fmt: skip
    link, _ = payment_link_create(bill=bill)
    with time_machine.travel(datetime(2026, 11, 24, 17, tzinfo=UTC), tick=False):
        Payment.objects.create(organization=org, bill=bill, link=link, amount=Decimal("30.00"), status=PaymentStatus.SUCCEEDED,
                               processor="sandbox")  # fmt: skip
    Bill.objects.filter(pk=bill.pk).update(amount_due=Decimal("70.00"))
    # A feed generated at 16:30, before the payment: the PMS still says 100.00.
    feed_import(
        raw=feed_bytes(
            generated_at="2026-11-24T16:30:00Z", patients=[feed_patient("P1", balance={"0_30": "100.00"})]
        )
    )
    assert Bill.objects.get(pk=bill.pk).amount_due == Decimal("70.00")
    # A feed generated after the PMS posted it: 70.00 from the PMS, nothing taken off twice.
    feed_import(
        raw=feed_bytes(
            generated_at="2026-11-25T06:00:00Z", patients=[feed_patient("P1", balance={"0_30": "70.00"})]
        )
    )
    assert Bill.objects.get(pk=bill.pk).amount_due == Decimal("70.00")


# P2 escalation (issue 11): the third lockout blocks the link until staff re-issue it.


def _lock_out(client: Client, token: str, clock: time_machine.Traveller) -> None:
    for _ in range(5):
        verify(client, token, "05/1980")
    clock.shift(timedelta(minutes=16))


def test_the_third_lockout_blocks_the_link_for_good_and_tells_staff(
    client: Client, token: str, link: PaymentLink, clock: time_machine.Traveller
) -> None:
    for _ in range(2):
        _lock_out(client, token, clock)
    assert dob_verify(link=link, month_year="04/1980") == DobOutcome.VERIFIED  # two lockouts: still usable
    for _ in range(3):
        _lock_out(client, token, clock)

    response = verify(client, token, "04/1980", follow=True)  # even the right answer

    assert "no longer works" in response.content.decode()
    assert PHONE in response.content.decode()
    link.refresh_from_db()
    assert (link.lockouts, link.blocked_at is not None) == (3, True)
    assert AuditEvent.objects.filter(action="payment_link.blocked", object_id=str(link.pk)).count() == 1


def test_staff_reissue_a_blocked_link_and_the_guarantor_gets_a_new_one(
    client: Client, token: str, link: PaymentLink, bill: Bill, organization: Organization,
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    PaymentLink.objects.filter(pk=link.pk).update(lockouts=3, blocked_at=timezone.now())
    staff = MembershipFactory.create(organization=organization, role=Role.FRONT_DESK).user
    client.force_login(staff)
    guarantor_page = reverse(
        "payments_dashboard:guarantor", args=[organization.slug, bill.guarantor.external_id]
    )
    assert "Re-issue payment link" in client.get(guarantor_page).content.decode()

    response = client.post(
        reverse(
            "payments_dashboard:link-reissue", args=[organization.slug, bill.guarantor.external_id, link.pk]
        )
    )

    assert response.status_code == 302
    assert "Re-issue payment link" not in client.get(guarantor_page).content.decode()
    new_link = PaymentLink.objects.exclude(pk=link.pk).get(bill=bill)
    resent = Message.objects.filter(bill=bill, kind=Kind.RESEND)
    assert resent.exists()
    assert all(PAY_URL in m.body and token not in m.body for m in resent)
    assert all(paylinks.pay_url(m.context).endswith("/") for m in resent)
    assert payment_link_lookup(token=token) is None  # the blocked link is over
    assert new_link.blocked_at is None
    assert AuditEvent.objects.get(action="payment_link.reissue").actor == staff


def test_a_payment_link_token_never_reaches_the_log(token: str) -> None:
    """T4 (issue 11): Django logged "Not Found: /p/<token>/" for an ended link."""
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (page(token),), None
    )
    assert RedactPaymentTokens().filter(record)
    assert token not in record.getMessage()
    assert record.getMessage() == "Not Found: /p/•••/"


# Issue 12: what the patient sees.


def test_after_a_partial_payment_the_balance_by_age_reflects_it(verified: Client, token: str) -> None:
    """The buckets are the PMS's (40.00 at 0-30 days, 110.00 at 31-60) until it posts our payment; a payment
    comes off the oldest charges first (docs/decisions.md)."""
    pay(verified, token, "50.00")

    html = verified.get(page(token)).content.decode()

    assert "$100.00" in html  # the amount due
    assert '<th scope="row">31–60 days</th><td class="num nowrap">$60.00</td>' in html
    assert '<th scope="row">0–30 days</th><td class="num nowrap">$40.00</td>' in html
    assert "$110.00" not in html

    pay(verified, token, "70.00")

    html = verified.get(page(token)).content.decode()
    assert '<th scope="row">31–60 days</th><td class="num nowrap">$0.00</td>' in html
    assert '<th scope="row">0–30 days</th><td class="num nowrap">$30.00</td>' in html
    assert "Oldest balance: 0-30 days" in html


@pytest.mark.parametrize(
    ("buckets", "paid_before", "paid_after", "expected", "category"),
    [
        # (0-30, 31-60, 61-90, over 90) from the PMS; payments before and after the PMS's figures.
        (("40", "110", "0", "0"), "0", "50", ("40", "60", "0", "0"), "31_60"),
        (("40", "110", "0", "0"), "0", "150", ("0", "0", "0", "0"), ""),
        (("10", "20", "30", "40"), "0", "75", ("10", "15", "0", "0"), "31_60"),
        # Already in the PMS's figures: not taken off twice.
        (("40", "110", "0", "0"), "50", "0", ("40", "110", "0", "0"), "31_60"),
        # A credit in a bucket is left alone; what is paid past every owing bucket is a credit in the newest.
        (("-5", "30", "0", "0"), "0", "30", ("-5", "0", "0", "0"), ""),
        (("20", "0", "0", "0"), "0", "25", ("-5", "0", "0", "0"), ""),
    ],
)
def test_the_balance_by_age_takes_off_the_payments_the_pms_has_not_posted(
    organization: Organization,
    buckets: tuple[str, ...],
    paid_before: str,
    paid_after: str,
    expected: tuple[str, ...],
    category: str,
) -> None:
    from payments.checkout import account_aging_now

    guarantor = GuarantorFactory.create(organization=organization)
    as_of = datetime(2026, 11, 24, 6, tzinfo=UTC)
    account = AccountFactory.create(
        guarantor=guarantor, as_of=as_of,
        **{f"bucket_{key}": Decimal(value) for key, value in zip(("0_30", "31_60", "61_90", "over_90"), buckets)},
    )  # fmt: skip
    bill = Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id="R-1", source="request", amount_due=Decimal("1"),
        created_at=as_of, effective_created_date=as_of.date(), last_seen_at=as_of,
    )  # fmt: skip
    for amount, at in ((paid_before, as_of - timedelta(hours=1)), (paid_after, as_of + timedelta(hours=1))):
        if Decimal(amount):
            payment = Payment.objects.create(organization=organization, bill=bill, amount=Decimal(amount),
                                             status=PaymentStatus.SUCCEEDED, processor="sandbox")  # fmt: skip
            Payment.objects.filter(pk=payment.pk).update(created_at=at)
    Payment.objects.create(organization=organization, bill=bill, amount=Decimal("5.00"),
                           status=PaymentStatus.DECLINED, processor="sandbox")  # fmt: skip

    aging = account_aging_now(account=account)

    assert tuple(aging.buckets[key] for key in ("0_30", "31_60", "61_90", "over_90")) == tuple(
        Decimal(value) for value in expected
    )
    assert aging.category == category


def test_the_locked_page_has_no_form_and_gives_the_number_to_call(
    client: Client, token: str, organization: Organization
) -> None:
    Organization.objects.filter(pk=organization.pk).update(phone="+18015550199")
    for _ in range(5):
        verify(client, token, "05/1980")

    html = client.get(page(token)).content.decode()

    assert "Too many attempts. Try again in 15 minutes." in html
    assert "<form" not in html
    assert 'href="tel:+18015550199">(801) 555-0199</a>' in html
    assert "+18015550199<" not in html
    assert_no_patient_data(html)


@pytest.mark.parametrize("blocked", [False, True])
def test_a_practice_without_a_phone_is_never_called_at_nothing(
    client: Client, token: str, link: PaymentLink, organization: Organization, blocked: bool
) -> None:
    Organization.objects.filter(pk=organization.pk).update(phone="")
    PaymentLink.objects.filter(pk=link.pk).update(
        locked_until=NOW + timedelta(minutes=15), blocked_at=NOW if blocked else None
    )

    html = client.get(page(token)).content.decode()

    assert "please contact Smile Dental" in html.replace("Please", "please")
    assert " at ." not in html
    assert "tel:" not in html
    assert "<form" not in html


def test_the_pages_print_the_practice_phone_as_a_person_dials_it(
    client: Client, token: str, organization: Organization, clock: time_machine.Traveller
) -> None:
    Organization.objects.filter(pk=organization.pk).update(phone="+18015550199")
    clock.shift(timedelta(days=30, seconds=1))

    html = client.get(page(token)).content.decode()  # the link has expired

    assert 'Please call us at <a href="tel:+18015550199">(801) 555-0199</a>' in html
