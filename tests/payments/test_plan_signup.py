"""Payment plans' offer and sign-up (H5): what a link may choose, the schedule in exact cents, and plan_start.

The sign-up goes through the fake Stripe server (tests/fakes/stripe_server.py) with the real SDK: a Customer
and a Checkout Session in ``mode=setup`` (https://docs.stripe.com/payments/save-and-reuse?platform=checkout,
https://docs.stripe.com/api/checkout/sessions/create), and through the sandbox processor.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from payments.links import payment_link_create
from payments.models import (
    Checkout,
    CheckoutMode,
    Installment,
    InstallmentState,
    PaymentLink,
    PaymentPlan,
    PaymentSettings,
    PlanKind,
    PlanState,
)
from payments.plans import (
    PlanRefused,
    plan_for_checkout,
    plan_open_for,
    plan_options,
    plan_schedule,
    plan_start,
)
from payments.processors.base import ProcessorError
from payments.processors.sandbox import SandboxProcessor
from practices.models import Bill, BillSource, BillState, Organization
from tests.factories import GuarantorFactory, OrganizationFactory
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db

# 18:30 in Denver on Dec 3, 2026: already Dec 4 in UTC, so "today" must be the organization's date.
EVENING = datetime(2026, 12, 4, 1, 30, tzinfo=UTC)


@pytest.fixture
def organization() -> Organization:
    return OrganizationFactory.create(slug="smile-dental", name="Smile Dental", timezone="America/Denver")


def campaign_link(organization: Organization, amount: str = "300.00") -> PaymentLink:
    guarantor = GuarantorFactory.create(organization=organization, date_of_birth=date(1980, 4, 12))
    bill = Bill.objects.create(
        organization=organization, guarantor=guarantor, bill_id=f"R-{guarantor.external_id}",
        source=BillSource.REQUEST, state=BillState.ACTIVE, amount_due=Decimal(amount), created_at=EVENING,
        effective_created_date=date(2026, 11, 20), last_seen_at=EVENING,
    )  # fmt: skip
    return payment_link_create(bill=bill, now=EVENING)[0]


def limits(organization: Organization, *, months: int, minimum: str) -> None:
    PaymentSettings.objects.update_or_create(
        organization=organization,
        defaults={"plan_max_months": months, "plan_min_installment": Decimal(minimum)},
    )


@pytest.mark.parametrize(
    ("total", "count", "first", "expected"),
    [
        ("100.00", 3, date(2026, 12, 3),
         [(date(2026, 12, 3), "33.33"), (date(2027, 1, 3), "33.33"), (date(2027, 2, 3), "33.34")]),
        # The 31st: February's last day, then the 31st again (not the 28th carried on).
        ("250.01", 4, date(2027, 1, 31),
         [(date(2027, 1, 31), "62.50"), (date(2027, 2, 28), "62.50"), (date(2027, 3, 31), "62.50"),
          (date(2027, 4, 30), "62.51")]),
        ("50.00", 2, date(2027, 12, 15), [(date(2027, 12, 15), "25.00"), (date(2028, 1, 15), "25.00")]),
        ("0.05", 1, date(2026, 12, 3), [(date(2026, 12, 3), "0.05")]),
        # A leap year's February 29th.
        ("60.00", 2, date(2028, 1, 30), [(date(2028, 1, 30), "30.00"), (date(2028, 2, 29), "30.00")]),
    ],
)  # fmt: skip
def test_the_schedule_is_monthly_in_exact_cents_and_the_last_takes_the_remainder(
    total: str, count: int, first: date, expected: list[tuple[date, str]]
) -> None:
    schedule = plan_schedule(total=Decimal(total), count=count, first_date=first)

    assert [(day, str(amount)) for day, amount in schedule] == expected
    assert sum(amount for _day, amount in schedule) == Decimal(total)


def test_the_options_allow_each_count_whose_installments_reach_the_minimum(
    organization: Organization,
) -> None:
    limits(organization, months=6, minimum="50.00")
    link = campaign_link(organization, "200.00")

    options = plan_options(link=link, now=EVENING)

    # 200/4 = 50.00 is allowed, 200/5 = 40.00 is not.
    assert options.months == [2, 3, 4]
    assert options.balance == Decimal("200.00")
    assert options.pay_later is True
    assert options.pay_later_latest == date(2027, 2, 1)  # Dec 3 in Denver + 60 days
    assert options.reason_none == ""


def test_plans_off_offer_nothing_and_one_month_offers_pay_later_only(organization: Organization) -> None:
    link = campaign_link(organization, "200.00")
    limits(organization, months=0, minimum="25.00")
    off = plan_options(link=link, now=EVENING)
    assert (off.months, off.pay_later) == ([], False)
    assert "does not offer payment plans" in off.reason_none

    limits(organization, months=1, minimum="25.00")
    later = plan_options(link=link, now=EVENING)
    assert (later.months, later.pay_later, later.reason_none) == ([], True, "")


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        settings.PAYMENT_PROCESSOR = "stripe"
        settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = server.secret_key, server.webhook_secret
        settings.STRIPE_API_BASE_URL = server.base_url
        yield server


@time_machine.travel(EVENING, tick=False)
def test_a_monthly_sign_up_saves_the_card_at_stripe_and_waits_for_it(
    fake: FakeStripe, organization: Organization
) -> None:
    link = campaign_link(organization, "100.00")

    page = plan_start(
        link=link, kind=PlanKind.MONTHLY, months=3, success_url="http://testserver/plan/{reference}/",
        cancel_url="http://testserver/pay/",
    )  # fmt: skip

    session = fake.sessions[page.session_id]
    assert page.url == session["url"]
    assert session["mode"] == "setup"
    checkout = Checkout.objects.get()
    assert (checkout.mode, checkout.session_id, checkout.amount) == (
        CheckoutMode.SETUP,
        page.session_id,
        None,
    )
    assert session["success_url"] == f"http://testserver/plan/{checkout.reference}/"
    assert session["client_reference_id"] == checkout.reference
    plan = plan_for_checkout(checkout)
    assert plan is not None
    assert (plan.state, plan.kind, plan.total, plan.installment_count) == (
        PlanState.PENDING_CARD, PlanKind.MONTHLY, Decimal("100.00"), 3,
    )  # fmt: skip
    assert plan_open_for(link.bill.guarantor) == plan
    rows = list(plan.installments.values_list("sequence", "due_date", "amount", "state"))
    assert rows == [
        (1, date(2026, 12, 3), Decimal("33.33"), InstallmentState.PENDING),
        (2, date(2027, 1, 3), Decimal("33.33"), InstallmentState.PENDING),
        (3, date(2027, 2, 3), Decimal("33.34"), InstallmentState.PENDING),
    ]
    assert len(set(plan.installments.values_list("idempotency_key", flat=True))) == 3
    # The guarantor is not on a plan before the card is saved.
    link.bill.guarantor.refresh_from_db()
    assert link.bill.guarantor.on_payment_plan is False


@time_machine.travel(EVENING, tick=False)
def test_a_processor_that_is_down_leaves_nothing_behind(fake: FakeStripe, organization: Organization) -> None:
    link = campaign_link(organization)
    fake.fail_next(status=500, times=3)

    with pytest.raises(ProcessorError) as raised:
        plan_start(link=link, kind=PlanKind.PAY_LATER, pay_date=date(2026, 12, 20),
                   success_url="http://testserver/ok/", cancel_url="http://testserver/no/")  # fmt: skip

    assert raised.value.unavailable is True
    assert (Checkout.objects.count(), PaymentPlan.objects.count(), Installment.objects.count()) == (0, 0, 0)


@time_machine.travel(EVENING, tick=False)
@pytest.mark.parametrize(
    ("kind", "months", "pay_date", "message"),
    [
        (PlanKind.MONTHLY, 7, None, "Choose between 2 and 6 monthly payments."),
        (PlanKind.MONTHLY, 1, None, "Choose between 2 and 6 monthly payments."),
        (PlanKind.MONTHLY, None, None, "Choose between 2 and 6 monthly payments."),
        (
            PlanKind.PAY_LATER,
            None,
            date(2026, 12, 3),
            "Choose a date after today and no later than 02/01/2027.",
        ),
        (
            PlanKind.PAY_LATER,
            None,
            date(2027, 2, 2),
            "Choose a date after today and no later than 02/01/2027.",
        ),
        (PlanKind.PAY_LATER, None, None, "Choose a date after today and no later than 02/01/2027."),
        ("weekly", None, None, "Choose monthly payments or a date to pay later."),
    ],
)
def test_a_bad_count_or_date_is_refused_with_a_clear_message_and_keeps_nothing(
    organization: Organization, kind: str, months: int | None, pay_date: date | None, message: str
) -> None:
    link = campaign_link(organization, "300.00")

    with pytest.raises(PlanRefused) as refused:
        plan_start(link=link, kind=kind, months=months, pay_date=pay_date, success_url="http://t/ok/",
                   cancel_url="http://t/no/", processor=SandboxProcessor())  # fmt: skip

    assert str(refused.value) == message
    assert PaymentPlan.objects.count() == 0


@time_machine.travel(EVENING, tick=False)
def test_a_balance_too_small_to_split_is_refused_but_may_pay_later(organization: Organization) -> None:
    link = campaign_link(organization, "40.00")  # 2 x 20.00 < 25.00

    with pytest.raises(PlanRefused, match="too small to split"):
        plan_start(link=link, kind=PlanKind.MONTHLY, months=2, success_url="http://t/ok/",
                   cancel_url="http://t/no/", processor=SandboxProcessor())  # fmt: skip
    plan_start(link=link, kind=PlanKind.PAY_LATER, pay_date=date(2027, 2, 1), success_url="http://t/ok/",
               cancel_url="http://t/no/", processor=SandboxProcessor())  # fmt: skip

    plan = PaymentPlan.objects.get()
    assert list(plan.installments.values_list("due_date", "amount")) == [(date(2027, 2, 1), Decimal("40.00"))]


@time_machine.travel(EVENING, tick=False)
def test_signing_up_again_replaces_the_plan_that_waited_for_a_card(organization: Organization) -> None:
    link = campaign_link(organization, "300.00")
    for months in (3, 4):
        plan_start(link=link, kind=PlanKind.MONTHLY, months=months, success_url="http://t/ok/",
                   cancel_url="http://t/no/", processor=SandboxProcessor())  # fmt: skip

    first, second = PaymentPlan.objects.order_by("pk")
    assert (first.state, second.state) == (PlanState.CANCELLED, PlanState.PENDING_CARD)
    assert set(first.installments.values_list("state", flat=True)) == {InstallmentState.CANCELLED}
    assert second.installment_count == 4
