"""C3: payments taken here are posted back to Open Dental exactly once, as a payment on the guarantor with
our reference in its note (Payments POST: PatNum, PayAmt, PayDate, PayNote; checked with Payments GET by
PatNum and DateEntry, https://www.opendental.com/site/apipayments.html). What Open Dental received is read
from the fake's log, not from our own records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.models import Payment, PaymentStatus
from pms import posting
from pms.connections import connection_get, opendental_client
from pms.models import Connection, PaymentPost, PostState
from pms.posting import LEASE, pms_post_payments
from pms.services import pms_sync
from practices.models import Account, Bill, BillSource, BillState, Organization, Patient
from tests.fakes.opendental_server import FakeOpenDental
from tests.pms.conftest import SYNC_AT

pytestmark = pytest.mark.django_db


@pytest.fixture
def smith(fake: FakeOpenDental, org: Organization) -> Patient:
    """A family that owes 200 on a statement, mirrored by a first sync."""
    head = fake.add_family(LName="Smith", aging={"Bal_31_60": 150.0, "BalOver90": 50.0}, dependents=1)
    fake.add_statement(head["PatNum"], BalTotal=200.0, InsEst=0.0, DateSent="2026-11-20")
    fake.advance(minutes=1)
    pms_sync(organization=org, now=SYNC_AT)
    # From here on the office's clock is today's, as it is when payments are posted (DateEntry is its date).
    fake.now = datetime.now(org.tzinfo).replace(tzinfo=None, microsecond=0)
    return Patient.objects.get(organization=org, external_id=str(head["PatNum"]))


def pay(patient: Patient, amount: str) -> Payment:
    bill = Bill.objects.get(guarantor=patient, source=BillSource.STATEMENT)
    # Only the fields every version of Payment has (the processor's own are being reworked, issue 14).
    payment = Payment.objects.create(organization=patient.organization, bill=bill, amount=Decimal(amount),
                                     status=PaymentStatus.SUCCEEDED)  # fmt: skip
    Bill.objects.filter(pk=bill.pk).update(amount_due=bill.amount_due - Decimal(amount))
    return payment


def post_all(org: Organization, **kwargs: object) -> posting.PostingResult:
    connection = connection_get(organization=org)
    client = opendental_client(connection)
    try:
        return pms_post_payments(organization=org, connection=connection, client=client, **kwargs)  # type: ignore[arg-type]
    finally:
        client.close()


def test_a_payment_is_posted_on_the_guarantor_with_our_reference_in_its_note(fake, org, smith):
    payment = pay(smith, "75.50")
    result = post_all(org)
    assert (result.posted, result.found, result.failed, result.pending) == (1, 0, 0, 0)
    (received,) = fake.received("POST", "/payments")
    post = PaymentPost.objects.get(payment=payment)
    assert received.body["PatNum"] == int(smith.external_id)  # the guarantor, not a family member
    assert received.body["PayAmt"] == "75.50"
    assert post.reference in received.body["PayNote"]
    assert (post.state, post.pms_payment_id, post.attempts) == (PostState.POSTED, "1", 1)
    assert fake.payments[0]["PayNote"] == received.body["PayNote"]


def test_posting_again_posts_nothing_twice(fake, org, smith):
    pay(smith, "20.00")
    post_all(org)
    again = post_all(org)
    assert (again.posted, again.found) == (0, 0)
    assert len(fake.received("POST", "/payments")) == 1


def test_a_crash_between_the_post_and_our_record_never_posts_twice(fake, org, smith, monkeypatch):
    """The process dies after Open Dental created the payment, before we wrote that down."""
    payment = pay(smith, "30.00")
    real = posting._mark_posted

    def crash(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(posting, "_mark_posted", crash)
    with pytest.raises(SystemExit):
        post_all(org)
    post = PaymentPost.objects.get(payment=payment)
    assert (post.state, post.attempts) == (PostState.PENDING, 1)  # the attempt was committed before the post
    assert len(fake.payments) == 1

    monkeypatch.setattr(posting, "_mark_posted", real)
    result = post_all(
        org, now=datetime.now(UTC) + LEASE + timedelta(seconds=1)
    )  # the dead run's lease ran out
    assert (result.posted, result.found) == (0, 1)
    assert len(fake.received("POST", "/payments")) == 1 and len(fake.payments) == 1
    (check,) = fake.received("GET", "/payments")
    assert check.params["PatNum"] == smith.external_id and "DateEntry" in check.params
    post.refresh_from_db()
    assert (post.state, post.pms_payment_id) == (PostState.POSTED, "1")


def test_an_answer_lost_on_the_way_back_is_found_by_its_reference(fake, org, smith):
    payment = pay(smith, "12.34")
    fake.drop_next(path="/payments", after_processing=True)
    first = post_all(org)
    assert first.pending == 1 and "could not be posted" in first.errors[0]
    second = post_all(org)
    assert second.found == 1
    assert len(fake.payments) == 1 and len(fake.received("POST", "/payments")) == 1
    assert PaymentPost.objects.get(payment=payment).state == PostState.POSTED


def test_an_unreachable_open_dental_leaves_the_payment_for_the_next_sync(fake, org, smith, monkeypatch):
    monkeypatch.setattr(posting.OpenDentalClient, "_pause", lambda self, *args: None)
    payment = pay(smith, "10.00")
    fake.fail_next(status=503, path="/payments")
    result = post_all(org)
    assert result.pending == 1 and fake.payments == []
    post = PaymentPost.objects.get(payment=payment)
    assert post.state == PostState.PENDING and "503" in post.last_error
    # The next try looks first (the 503 might have come after the work), finds nothing, and posts.
    assert post_all(org).posted == 1
    assert [r.method for r in fake.requests if r.path == "/payments"] == ["POST", "GET", "POST"]


def test_a_payment_open_dental_refuses_is_failed_for_staff_not_retried(fake, org, smith):
    payment = pay(smith, "10.00")
    fake.update_patient(int(smith.external_id), PatStatus="Deleted")
    result = post_all(org)
    assert result.failed == 1 and "Patient is deleted." in result.errors[0]
    assert PaymentPost.objects.get(payment=payment).state == PostState.FAILED
    post_all(org)
    assert len(fake.received("POST", "/payments")) == 1


def test_payments_from_before_the_connection_are_left_to_export_payments(fake, org, smith):
    payment = pay(smith, "10.00")
    Connection.objects.filter(organization=org).update(
        posting_starts_at=payment.created_at + timedelta(seconds=1)
    )
    assert post_all(org).posted == 0 and fake.payments == []


def test_a_run_holding_the_lease_keeps_another_run_off_the_payment(fake, org, smith):
    payment = pay(smith, "10.00")
    PaymentPost.objects.create(organization=org, payment=payment, reference="DUN-HELD",
                               claimed_until=datetime.now(UTC) + LEASE)  # fmt: skip
    assert post_all(org).pending == 1 and fake.payments == []


def test_sync_pms_posts_back_before_reading_so_the_balance_read_includes_the_payment(fake, org, smith):
    payment = pay(smith, "80.00")
    fake.advance(hours=1)
    result = pms_sync(organization=org, now=SYNC_AT + timedelta(hours=1))
    assert result.posting.posted == 1 and result.as_json()["payments"]["posted"] == 1
    # Open Dental applied it to the oldest charges first (FIFO): 50 over 90 days, then 30 of the 31-60.
    account = Account.objects.get(guarantor=smith)
    assert (account.bucket_over_90, account.bucket_31_60, account.patient_portion) == (
        Decimal("0.00"), Decimal("120.00"), Decimal("120.00"),
    )  # fmt: skip
    bill = Bill.objects.get(guarantor=smith)
    assert (bill.amount_due, bill.state) == (Decimal("120.00"), BillState.ACTIVE)
    assert PaymentPost.objects.get(payment=payment).state == PostState.POSTED
