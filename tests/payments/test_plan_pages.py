"""H5, the patient's pages of payment plans and pay-later, through the Django client on the embedded default
(the sandbox processor): offered beside paying now only after the date of birth matched (P2); the choice of a
count or a date; the schedule shown before anything is set up; refusals as clear messages; the confirmation
going to the processor's hosted card-save page; the return page saying "processing" until the plan is active,
then its schedule; a processor that is down shows "try again" and keeps nothing (Stripe's path, the fake Stripe
answering 503). No card field in any template: tests/payments/test_payment_page.py checks every one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from payments.links import payment_link_create
from payments.models import (
    Checkout,
    Installment,
    PaymentPlan,
    PaymentSettings,
    PlanKind,
    PlanState,
    SandboxSession,
)
from payments.processors.sandbox import events_deliver
from practices.models import Bill, Organization
from tests.factories import AccountFactory, GuarantorFactory, OrganizationFactory
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 10:00 on Nov 24 in Denver
DOB = date(1980, 4, 12)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def sandbox(settings: Any) -> None:
    settings.PAYMENT_PROCESSOR = "sandbox"


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


@pytest.fixture
def bill(organization: Organization) -> Bill:
    guarantor = GuarantorFactory.create(organization=organization, first_name="Marisol", date_of_birth=DOB)
    AccountFactory.create(guarantor=guarantor, bucket_0_30=Decimal("150.00"), total=Decimal("150.00"),
                          patient_portion=Decimal("150.00"), aging_category="0_30")  # fmt: skip
    return Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id="R-1", source="request", state="active",
        amount_due=Decimal("150.00"), created_at=NOW, effective_created_date=NOW.date(), last_seen_at=NOW,
    )  # fmt: skip


@pytest.fixture
def token(bill: Bill) -> str:
    _link, url = payment_link_create(bill=bill)
    return url.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def verified(client: Client, token: str) -> Client:
    response = client.post(reverse("pay:link", args=[token]), {"step": "verify", "dob": "04/1980"})
    assert response.status_code == 302
    return client


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def review_url(token: str, **query: str) -> str:
    return reverse("pay:plan-review", args=[token]) + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def deliver(client: Client) -> int:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(
            url.removeprefix("http://testserver"), body, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
        ).status_code  # fmt: skip

    return events_deliver(post=post)


def test_pay_over_time_and_pay_later_are_offered_beside_paying_now_once_verified(
    verified: Client, token: str
):
    page = text(verified.get(reverse("pay:link", args=[token])))

    assert "Continue to secure payment" in page
    assert "Need more time? Pay over time Pay later" in page
    assert "on a date up to January 23, 2027" in page  # 60 days after Nov 24 in Denver


def test_the_plan_pages_ask_for_the_date_of_birth_first(client: Client, token: str):
    response = client.get(reverse("pay:plan", args=[token]) + "?kind=monthly")

    assert response.status_code == 302 and response["Location"] == reverse("pay:link", args=[token])
    page = client.get(response["Location"])
    assert "Marisol" not in page.content.decode() and "150.00" not in page.content.decode()
    # Once verified, the patient is taken back to the plan page.
    back = client.post(reverse("pay:link", args=[token]), {"step": "verify", "dob": "04/1980"})
    assert back["Location"] == reverse("pay:plan", args=[token]) + "?kind=monthly"


def test_the_choice_lists_each_count_allowed_with_its_installment(verified: Client, token: str):
    page = text(verified.get(reverse("pay:plan", args=[token]) + "?kind=monthly"))

    # plan_max_months 6, plan_min_installment $25 (the defaults): 2 to 6 payments of $150.00.
    assert "How many monthly payments?" in page
    for label in (
        "2 monthly payments of $75.00",
        "4 monthly payments of $37.50 ",
        "6 monthly payments of $25.00",
    ):
        assert label in page
    assert "7 monthly payments" not in page


def test_the_schedule_is_shown_before_anything_is_set_up(verified: Client, token: str):
    page = text(verified.get(review_url(token, kind="monthly", months="4")))

    assert "Review your payment plan" in page
    assert "1 Nov 24, 2026 $37.50 2 Dec 24, 2026 $37.50 3 Jan 24, 2027 $37.50 4 Feb 24, 2027 $37.50" in page
    assert "Total $150.00" in page
    assert not PaymentPlan.objects.exists() and not Checkout.objects.exists()


def test_the_last_installment_takes_the_remainder(verified: Client, token: str):
    Bill.objects.update(amount_due=Decimal("100.00"))

    page = text(verified.get(review_url(token, kind="monthly", months="3")))

    assert "1 Nov 24, 2026 $33.33 2 Dec 24, 2026 $33.33 3 Jan 24, 2027 $33.34" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "monthly", "months": "7"}, "Choose between 2 and 6 monthly payments."),
        ({"kind": "monthly", "months": "x"}, "Choose how many monthly payments."),
        (
            {"kind": "pay_later", "pay_date": "2027-01-24"},
            "Choose a date after today and no later than 01/23/2027.",
        ),
        (
            {"kind": "pay_later", "pay_date": "2026-11-24"},
            "Choose a date after today and no later than 01/23/2027.",
        ),
        ({"kind": "pay_later", "pay_date": "soon"}, "Enter the date to pay as MM/DD/YYYY."),
    ],
)
def test_a_choice_out_of_bounds_goes_back_with_a_clear_message(verified: Client, token: str, query, message):
    response = verified.get(review_url(token, **query), follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("pay:plan", args=[token]))
    assert f'role="alert">{message}<' in response.content.decode()


def test_plans_off_say_so_on_the_payment_page_and_the_plan_page(verified: Client, token: str):
    PaymentSettings.objects.update_or_create(
        organization=Organization.objects.get(slug="smile-dental"), defaults={"plan_max_months": 0}
    )
    message = "Smile Dental does not offer payment plans online. Please call the practice."

    assert message in text(verified.get(reverse("pay:link", args=[token])))
    assert "Pay over time" not in text(verified.get(reverse("pay:link", args=[token])))
    assert message in text(verified.get(reverse("pay:plan", args=[token]) + "?kind=monthly"))
    response = verified.post(
        review_url(token, kind="monthly", months="3"), {"kind": "monthly", "months": "3"}
    )
    assert message in text(verified.get(response["Location"]))
    assert not PaymentPlan.objects.exists()


def test_confirming_goes_to_the_hosted_card_save_page_and_back_to_processing(verified: Client, token: str):
    response = verified.post(review_url(token, kind="pay_later", pay_date="2026-12-15"),
                             {"kind": "pay_later", "pay_date": "2026-12-15"})  # fmt: skip

    assert response.status_code == 302 and response["Location"].startswith("/sandbox/checkout/cs_")
    plan = PaymentPlan.objects.get()
    assert (plan.kind, plan.state, plan.total, plan.installment_count) == (
        PlanKind.PAY_LATER, PlanState.PENDING_CARD, Decimal("150.00"), 1,
    )  # fmt: skip
    assert list(Installment.objects.values_list("due_date", "amount")) == [
        (date(2026, 12, 15), Decimal("150.00"))
    ]
    hosted = verified.get(response["Location"])
    assert "Save a card for your payment plan" in text(hosted)

    back = verified.post(response["Location"], {"outcome": "save"})

    done_url = reverse("pay:plan-done", args=[token, plan.checkout.reference])
    assert back["Location"] == f"http://testserver{done_url}"
    processing = verified.get(done_url)
    assert "Setting up your payment plan" in text(processing)
    assert '<meta http-equiv="refresh"' in processing.content.decode()
    assert SandboxSession.objects.get(pk=plan.checkout.session_id).status == "complete"


def test_the_return_page_shows_the_schedule_once_the_signed_confirmation_started_the_plan(
    verified: Client, token: str
):
    response = verified.post(
        review_url(token, kind="monthly", months="3"), {"kind": "monthly", "months": "3"}
    )
    verified.post(response["Location"], {"outcome": "save"})
    plan = PaymentPlan.objects.get()
    assert deliver(verified) >= 1  # the sandbox's signed events, through /webhooks/sandbox/

    page = text(verified.get(reverse("pay:plan-done", args=[token, plan.checkout.reference])))

    plan.refresh_from_db()
    assert plan.state == PlanState.ACTIVE
    assert "Your payment plan is set up" in page
    assert "1 Nov 24, 2026 $50.00" in page and "3 Jan 24, 2027 $50.00" in page
    assert "Total $150.00" in page


def test_a_processor_that_is_down_shows_try_again_and_keeps_nothing(
    verified: Client, token: str, settings: Any
):
    with FakeStripe() as fake:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE_URL = fake.secret_key, fake.base_url
        settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
        fake.fail_next(status=503, times=5)

        response = verified.post(review_url(token, kind="monthly", months="3"), {"kind": "monthly", "months": "3"},
                                 follow=True)  # fmt: skip

    assert response.redirect_chain[-1][0] == review_url(token, kind="monthly", months="3")
    assert "Nothing was set up and nothing was charged: please try again" in text(response)
    assert "1 Nov 24, 2026 $50.00" in text(response)  # the choice is kept
    assert not PaymentPlan.objects.exists() and not Checkout.objects.exists()


def test_on_stripe_confirming_goes_to_stripes_hosted_setup_page(verified: Client, token: str, settings: Any):
    with FakeStripe() as fake:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE_URL = fake.secret_key, fake.base_url
        settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret

        review = verified.get(review_url(token, kind="monthly", months="2"))
        response = verified.post(
            review_url(token, kind="monthly", months="2"), {"kind": "monthly", "months": "2"}
        )
        base_url = fake.base_url

    plan = PaymentPlan.objects.get()
    assert response.status_code == 302 and response["Location"].startswith(base_url)
    assert plan.checkout.session_id in response["Location"] and plan.processor == "stripe"
    # The form's answer redirects to Stripe's page: the review page's CSP lets the form go there.
    assert base_url.rstrip("/") in review["Content-Security-Policy"]


def test_the_return_page_of_a_plan_that_ended_says_so_and_to_call(verified: Client, token: str):
    response = verified.post(
        review_url(token, kind="monthly", months="2"), {"kind": "monthly", "months": "2"}
    )
    verified.post(response["Location"], {"outcome": "save"})
    plan = PaymentPlan.objects.get()
    PaymentPlan.objects.filter(pk=plan.pk).update(state=PlanState.CANCELLED, end_reason="Cancelled by staff.")

    page = text(verified.get(reverse("pay:plan-done", args=[token, plan.checkout.reference])))

    assert "This plan has ended (cancelled). Please call Smile Dental" in page
    assert "by staff" not in page  # the reason is the staff's note, not for the patient
    assert "Setting up" not in page
