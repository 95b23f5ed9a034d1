"""Payments taken here, posted back to Open Dental exactly once (C3).

Each payment gets a PaymentPost with a random reference, written before anything is sent. A try takes a lease
on the row (a conditional UPDATE), and, when an earlier try may have reached Open Dental (``attempts`` > 0),
first looks for the reference in the notes of the guarantor's payments there (Payments GET with PatNum and
DateEntry); only when it is not there does it record the attempt (committed) and POST the payment (Payments
POST: PatNum, PayAmt, PayDate, PayNote; https://www.opendental.com/site/apipayments.html). So a crash between
the post and our record, or an answer lost on the way back, never posts twice: the next try finds it.

Money going back (H3) is posted the same way, as a payment with a negative PayAmt on the guarantor: a refund
once it has succeeded, a dispute, and a reversal (a dispute won) with a positive one; each only after what it
returns is in Open Dental, its note naming that payment's reference and PayNum. PayType is not sent: Open Dental
gives every API payment the type of its ApiPaymentType preference (Setup > Advanced Setup > API), so a refund
has the type of the payment it returns.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments.confirmations import REFUND_FAILED_SUFFIX
from payments.models import Payment, PaymentKind, PaymentStatus
from pms.models import Connection, PaymentPost, PostState
from pms.opendental.client import OpenDentalClient, OpenDentalError, OpenDentalRefused
from practices.models import CENTS, Organization

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)  # longer than one check and one post can take, retries and Retry-After included


@dataclass
class PostingResult:
    posted: int = 0  # posted by this run
    found: int = 0  # an earlier try had posted it: found by its reference, not posted again
    failed: int = 0  # refused by Open Dental (e.g. the guarantor is deleted there): for staff to post by hand
    pending: int = 0  # not posted this time (Open Dental unreachable, or another run holds it)
    errors: list[str] = field(default_factory=list)

    def add(self, other: PostingResult) -> None:
        self.posted += other.posted
        self.found += other.found
        self.failed += other.failed
        self.pending = other.pending
        self.errors = [*self.errors, *other.errors]

    def as_json(self) -> dict[str, Any]:
        return {"posted": self.posted, "found": self.found, "failed": self.failed, "pending": self.pending}


def new_reference() -> str:
    return "DUN-" + secrets.token_hex(8).upper()


def payment_note(payment: Payment, reference: str, *, of: PaymentPost | None = None) -> str:
    """The PMS payment's note: what it is, the PMS payment it returns or reverses (``of``: its post), and our
    reference last (what a later try looks for, as "ref <reference>"); nothing clinical (T4)."""
    before = f"online payment {of.reference} (PayNum {of.pms_payment_id or '?'})" if of is not None else ""
    if payment.kind == PaymentKind.REFUND:
        return f"Refund through the processor of {before}, ref {reference}"
    if payment.kind == PaymentKind.DISPUTE:
        return f"Card dispute (chargeback) of {before}, ref {reference}"
    if payment.kind == PaymentKind.REVERSAL:
        what = (
            "Refund failed" if payment.processor_reference.endswith(REFUND_FAILED_SUFFIX) else "Dispute won"
        )
        return f"{what}: reverses {before.replace('online payment ', 'the return ', 1)}, ref {reference}"
    return f"Online payment through the patient payment page, ref {reference}"


def payments_to_post(*, organization: Organization, connection: Connection) -> list[Payment]:
    """Succeeded money movements since posting began, oldest first: payments, and refunds, disputes and reversals
    (H3) of payments that were themselves posted here; money going back on a payment from before (exported
    with export_payments) is exported too, not posted. A pending refund waits until it succeeds; a failed one
    is never posted."""
    if connection.posting_starts_at is None:
        return []
    return list(
        Payment.objects.filter(
            organization=organization,
            status=PaymentStatus.SUCCEEDED,
            created_at__gte=connection.posting_starts_at,
        )
        .exclude(pms_post__state__in=[PostState.POSTED, PostState.FAILED])
        .exclude(refund_of__created_at__lt=connection.posting_starts_at)
        .select_related("bill__guarantor")
        .order_by("created_at", "pk")
    )


def _predecessor(payment: Payment) -> Payment | None:
    """What ``payment`` returns or reverses, which must be in the PMS before it: the payment of a refund or a
    dispute; the refund or dispute a reversal takes back (its processor reference less the suffix)."""
    if payment.kind == PaymentKind.REVERSAL:
        returned = payment.processor_reference.rsplit("/", 1)[0]
        return Payment.objects.filter(processor=payment.processor, processor_reference=returned).first()
    if payment.refund_of_id is not None:
        return Payment.objects.filter(pk=payment.refund_of_id).first()
    return None


def _claim(post: PaymentPost, now: datetime) -> bool:
    return bool(
        PaymentPost.objects.filter(pk=post.pk, state=PostState.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + LEASE)
    )


def _find(client: OpenDentalClient, post: PaymentPost, patnum: int, organization: Organization) -> str | None:
    """The PayNum of the Open Dental payment carrying ``post``'s reference, if an earlier try made one."""
    since = (
        (post.first_attempt_at or post.created_at).astimezone(organization.tzinfo) - timedelta(days=1)
    ).date()
    for found in client.get_all("payments", {"PatNum": patnum, "DateEntry": since.isoformat()}):
        if f"ref {post.reference}" in str(found.get("PayNote") or ""):
            return str(found.get("PayNum") or "")
    return None


def _mark_posted(post: PaymentPost, pay_num: str, now: datetime) -> None:
    PaymentPost.objects.filter(pk=post.pk).update(
        state=PostState.POSTED, pms_payment_id=pay_num[:32], posted_at=now, claimed_until=None, last_error=""
    )


def post_payment(
    *, client: OpenDentalClient, payment: Payment, organization: Organization, now: datetime | None = None
) -> str:
    """Post one payment (a refund, a dispute or a reversal: with its signed amount, once what it returns is
    posted); returns "posted", "found" (an earlier try had), "failed" (refused, or what it returns was), "pending"
    (Open Dental unreachable; the row says why) or "busy" (another run holds it, or what it returns is not
    posted yet)."""
    moment = now or timezone.now()
    before: PaymentPost | None = None
    if payment.kind != PaymentKind.PAYMENT:
        predecessor = _predecessor(payment)
        before = PaymentPost.objects.filter(payment=predecessor).first() if predecessor is not None else None
        if before is None or before.state == PostState.PENDING:
            return "busy"
    post, _ = PaymentPost.objects.get_or_create(
        payment=payment, defaults={"organization": organization, "reference": new_reference()}
    )
    if post.state != PostState.PENDING:
        return "found" if post.state == PostState.POSTED else "failed"
    if before is not None and before.state == PostState.FAILED:
        PaymentPost.objects.filter(pk=post.pk, state=PostState.PENDING).update(
            state=PostState.FAILED, claimed_until=None,
            last_error=f"{payment.get_kind_display().lower()} of payment {before.payment_id}, which Open Dental "
            "refused: post both by hand",
        )  # fmt: skip
        return "failed"
    if not _claim(post, moment):
        return "busy"
    post.refresh_from_db()
    guarantor = payment.bill.guarantor.external_id
    if not guarantor.isdigit():
        PaymentPost.objects.filter(pk=post.pk).update(
            state=PostState.FAILED, claimed_until=None,
            last_error=f"guarantor id {guarantor!r} is not an Open Dental PatNum",
        )  # fmt: skip
        return "failed"
    try:
        if post.attempts:
            pay_num = _find(client, post, int(guarantor), organization)
            if pay_num is not None:
                _mark_posted(post, pay_num, timezone.now())
                logger.info("payment %s was already in Open Dental as PayNum %s", payment.pk, pay_num)
                return "found"
        # Recorded (and committed: no transaction is open here) before the post, so that a crash after it is
        # seen by the next try, which then looks before posting.
        PaymentPost.objects.filter(pk=post.pk).update(
            attempts=F("attempts") + 1, first_attempt_at=Coalesce(F("first_attempt_at"), moment)
        )
        created = client.post(
            "payments",
            {
                "PatNum": int(guarantor),
                "PayAmt": str(payment.amount.quantize(CENTS)),
                "PayDate": payment.created_at.astimezone(organization.tzinfo).date().isoformat(),
                "PayNote": payment_note(payment, post.reference, of=before),
            },
        )
    except OpenDentalRefused as exc:
        PaymentPost.objects.filter(pk=post.pk).update(
            state=PostState.FAILED, claimed_until=None, last_error=str(exc)[:1000]
        )
        return "failed"
    except OpenDentalError as exc:
        PaymentPost.objects.filter(pk=post.pk).update(claimed_until=None, last_error=str(exc)[:1000])
        return "pending"
    pay_num = str(created.get("PayNum") or "") if isinstance(created, dict) else ""
    _mark_posted(post, pay_num, timezone.now())
    return "posted"


def pms_post_payments(
    *,
    organization: Organization,
    connection: Connection,
    client: OpenDentalClient,
    now: datetime | None = None,
) -> PostingResult:
    """Post every payment not yet in the PMS, oldest first; stops at the first one the PMS did not take
    (unreachable), leaving the rest for the next sync."""
    result = PostingResult()
    todo = payments_to_post(organization=organization, connection=connection)
    for index, payment in enumerate(todo):
        outcome = post_payment(client=client, payment=payment, organization=organization, now=now)
        if outcome == "posted":
            result.posted += 1
        elif outcome == "found":
            result.found += 1
        elif outcome == "failed":
            result.failed += 1
            error = PaymentPost.objects.filter(payment=payment).values_list("last_error", flat=True).first()
            result.errors.append(f"payment {payment.pk} was refused by Open Dental: {error}")
        elif outcome == "busy":
            result.pending += 1
        else:
            error = PaymentPost.objects.filter(payment=payment).values_list("last_error", flat=True).first()
            result.pending += len(todo) - index
            result.errors.append(
                f"payment {payment.pk} could not be posted to Open Dental ({error}); it and the "
                f"{len(todo) - index - 1} after it are tried again at the next sync"
            )
            return result
    return result
