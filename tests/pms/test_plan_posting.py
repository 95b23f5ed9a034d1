"""H5 with C3, Open Dental: a plan taken here reaches Open Dental as its installments' payments, each posted
once like any payment; the plan itself is not posted. Open Dental's only plan-creating call, PayPlans POST
Dynamic, needs procedures or adjustments attached to the plan ("procNums and/or adjNums is required";
https://opendental.com/site/apipayplans.html), which we do not mirror (docs/decisions.md); export_plans is the
plan's path. What Open Dental received is read from the fake's log."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.confirmations import processor_event_apply
from payments.links import payment_link_create
from payments.models import InstallmentState, PaymentPlan, PlanKind, PlanState
from payments.plans import installments_charge_due, plan_start
from payments.processors.sandbox import SandboxProcessor, hosted_outcome
from pms.connections import connection_get, opendental_client
from pms.models import PaymentPost, PostState
from pms.posting import pms_post_payments
from pms.services import pms_sync
from practices.models import Bill, BillSource, Organization, Patient
from tests.fakes.opendental_server import FakeOpenDental
from tests.payments.paying import sandbox_events
from tests.pms.conftest import SYNC_AT

pytestmark = pytest.mark.django_db


@pytest.fixture
def smith(fake: FakeOpenDental, org: Organization) -> Patient:
    head = fake.add_family(LName="Smith", aging={"Bal_31_60": 150.0, "BalOver90": 50.0}, dependents=1)
    fake.add_statement(head["PatNum"], BalTotal=200.0, InsEst=0.0, DateSent="2026-11-20")
    fake.advance(minutes=1)
    pms_sync(organization=org, now=SYNC_AT)
    fake.now = timezone.now().astimezone(org.tzinfo).replace(tzinfo=None, microsecond=0)
    return Patient.objects.get(organization=org, external_id=str(head["PatNum"]))


def test_a_plans_installment_is_posted_once_as_a_payment_and_no_plan_is_posted(fake, org, smith):
    bill = Bill.objects.get(guarantor=smith, source=BillSource.STATEMENT)
    link, _url = payment_link_create(bill=bill)
    processor = SandboxProcessor()
    page = plan_start(link=link, kind=PlanKind.MONTHLY, months=2, processor=processor,
                      success_url="http://testserver/ok/{reference}/", cancel_url="http://testserver/no")  # fmt: skip
    hosted_outcome(
        session_id=page.session_id, outcome="save", webhook_url="http://testserver/webhooks/sandbox/"
    )
    for event in sandbox_events():
        processor_event_apply(processor="sandbox", event=event)
    plan = PaymentPlan.objects.get()
    assert plan.state == PlanState.ACTIVE

    assert installments_charge_due(now=timezone.now() + timedelta(minutes=1)).paid == 1
    connection = connection_get(organization=org)
    client = opendental_client(connection)
    try:
        first = pms_post_payments(organization=org, connection=connection, client=client)
        again = pms_post_payments(organization=org, connection=connection, client=client)
    finally:
        client.close()

    installment = plan.installments.get(sequence=1)
    assert installment.state == InstallmentState.PAID and installment.payment is not None
    assert (first.posted, again.posted) == (1, 0)
    (received,) = fake.received("POST", "/payments")
    assert received.body["PatNum"] == int(smith.external_id)
    assert received.body["PayAmt"] == "100.00"  # the first of two installments of 200.00
    assert PaymentPost.objects.get(payment=installment.payment).state == PostState.POSTED
    assert fake.received("POST", "/payplans") == [] and fake.received("PUT", "/payplans") == []
    # The plan goes to the PMS through export_plans, naming the payment that was posted.
    out = io.StringIO()
    call_command("export_plans", "--org", org.slug, stdout=out)
    assert f",1,{timezone.localdate(timezone.now(), org.tzinfo).isoformat()},100.00,paid," in out.getvalue()
    assert out.getvalue().splitlines()[1].endswith(f",{installment.payment_id}")
    assert Decimal(received.body["PayAmt"]) == installment.amount
