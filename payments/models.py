"""Payment settings, payment requests (campaign starts), snoozes, payment links and payments (SPEC §4, §5, §9)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

ALL_AGING = ["0_30", "31_60", "61_90", "over_90"]
DEFAULT_SNOOZE_REASONS = [
    "Patient called: paying soon",
    "Insurance still processing",
    "Hardship: talk to billing first",
    "Disputed balance",
    "Recently paid at the front desk",
]


def _all_aging() -> list[str]:
    return list(ALL_AGING)


def _request_channels() -> list[str]:
    return ["sms", "email"]


def _snooze_reasons() -> list[str]:
    return list(DEFAULT_SNOOZE_REASONS)


def claims_over(open_claims: int, limit: int | None) -> bool:
    """K6 (and R10's converse): the guarantor has more open insurance claims than ``max_open_claims`` allows
    (none: no limit). The one statement of the rule for Python callers: the dunning engine's facts, the
    outbox's re-check at send and the guarantor page; R10's SQL form is ``open_claims <= limit``."""
    return limit is not None and open_claims > limit


class PaymentSettings(models.Model):
    """Per-organization payment settings (§4). Quiet hours live in notifications (NotificationSettings)."""

    organization = models.OneToOneField(
        "practices.Organization", on_delete=models.CASCADE, related_name="payment_settings"
    )
    min_payment_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    eligible_aging = models.JSONField(default=_all_aging, help_text="Any of 0_30, 31_60, 61_90, over_90.")
    max_open_claims = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit (R10).")
    request_channels = models.JSONField(default=_request_channels, help_text="Any of sms, email.")
    snooze_reasons = models.JSONField(default=_snooze_reasons, blank=True)
    link_lifetime_days = models.PositiveIntegerField(default=30)
    # H5: the most monthly installments a patient may choose (0: no plans and no pay-later; 1: pay-later
    # only) and the smallest installment; defaults in docs/decisions.md.
    plan_max_months = models.PositiveSmallIntegerField(
        default=6,
        db_default=6,
        help_text="H5: the most monthly installments (0 turns plans and pay-later off).",
    )
    plan_min_installment = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("25.00"), db_default=Decimal("25.00"),
        help_text="H5: each installment is at least this much.",
    )  # fmt: skip

    class Meta:
        verbose_name_plural = "payment settings"

    def __str__(self) -> str:
        return f"Payment settings of {self.organization.name}"


class RequestMode(models.TextChoices):
    BULK = "bulk", "Bulk"
    SINGLE = "single", "Single (one-off)"


class PaymentRequest(models.Model):
    """A payment request that started a campaign (B2, B4, B5): one per request bill."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="payment_requests"
    )
    guarantor = models.ForeignKey(
        "practices.Patient", on_delete=models.CASCADE, related_name="payment_requests"
    )
    bill = models.OneToOneField("practices.Bill", on_delete=models.CASCADE, related_name="payment_request")
    mode = models.CharField(max_length=6, choices=RequestMode.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    requested_at = models.DateTimeField()
    request_date = models.DateField(help_text="The organization's date of the request (its campaign start).")

    class Meta:
        indexes = [
            # R8: a single request since the guarantor's last visit.
            models.Index(
                fields=["guarantor", "request_date"],
                condition=Q(mode="single"),
                name="payreq_single_by_guarantor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} request {self.bill_id}"


SNOOZE_REASON_MAX_LENGTH = 200


class Snooze(models.Model):
    """B3: the guarantor leaves the list (and gets no dunning) while today < until, unless lifted early."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="snoozes"
    )
    guarantor = models.ForeignKey("practices.Patient", on_delete=models.CASCADE, related_name="snoozes")
    until = models.DateField(help_text="Re-enrol date.")
    reason = models.CharField(max_length=SNOOZE_REASON_MAX_LENGTH)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            # R5: "is this guarantor snoozed on date D" for the bulk list.
            models.Index(
                fields=["guarantor", "until"],
                condition=Q(lifted_at__isnull=True),
                name="snooze_open_by_guarantor",
            ),
        ]

    def __str__(self) -> str:
        return f"Snoozed until {self.until}: {self.reason}"


class PaymentLink(models.Model):
    """P1: an unguessable token per campaign, stored hashed, expiring; P2: locked after 5 failures."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="payment_links"
    )
    bill = models.ForeignKey("practices.Bill", on_delete=models.CASCADE, related_name="payment_links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # P2 escalation: the number of 15-minute lockouts so far; after a few the link stops for good
    # (``blocked_at``) until staff re-issue it, so that MM/YYYY cannot be walked through within a link's life.
    lockouts = models.PositiveSmallIntegerField(default=0, db_default=0)
    blocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The staff's "blocked payment links" list, per organization.
            models.Index(
                fields=["organization"], condition=models.Q(blocked_at__isnull=False), name="link_blocked"
            ),
        ]

    def __str__(self) -> str:
        return f"Payment link for {self.bill_id}"


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    # A refund the processor has accepted but not completed (Stripe's refund ``status`` pending or
    # requires_action): it holds what it returns (nothing more can be refunded over it) but reopens nothing and
    # is neither exported nor posted until it succeeds; one that fails or is canceled ends ``failed``.
    PENDING = "pending", "Pending (refund not completed yet)"
    FAILED = "failed", "Failed (refund failed or canceled)"
    # Only the card form of before hosted checkout (issue 14) recorded declines; a hosted checkout's declines
    # stay with the processor and its Checkout.
    DECLINED = "declined", "Declined"


class PaymentKind(models.TextChoices):
    """A payment, or money going back on one (H3): exported and posted to the PMS as a negative payment."""

    PAYMENT = "payment", "Payment"
    REFUND = "refund", "Refund"
    DISPUTE = "dispute", "Dispute (chargeback)"
    # Money that came back after a refund or dispute (a dispute won, a refund that failed after it succeeded): a
    # positive row naming the payment, exported and posted as a positive payment reversing the negative one.
    REVERSAL = "reversal", "Reversal (dispute won, refund failed)"


class ReviewReason(models.TextChoices):
    """Why a payment needs a person (H2, H3): the money moved, and something about it is not routine."""

    NONE = "", "—"
    LINK_ENDED = "link_ended", "Paid after the link or campaign had ended"
    OVERPAID = "overpaid", "Paid more than was owed at confirmation"
    DISPUTED = "disputed", "Disputed by the card holder"


class Payment(models.Model):
    """Money taken on a campaign through the processor (P3, H2), or returned on such a payment (H3: a refund or a
    dispute, a negative amount pointing at the payment); exported for posting into the PMS.

    Recorded only from the processor's signed confirmation (``payments.confirmations``), once per processor id:
    the PaymentIntent of a payment, the Refund or the Dispute of money going back."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="payments"
    )
    bill = models.ForeignKey("practices.Bill", on_delete=models.PROTECT, related_name="payments")
    link = models.ForeignKey(PaymentLink, on_delete=models.SET_NULL, null=True, blank=True)
    checkout = models.ForeignKey(
        "Checkout", on_delete=models.SET_NULL, null=True, blank=True, related_name="payments", db_index=False
    )
    kind = models.CharField(
        max_length=8, choices=PaymentKind.choices, default=PaymentKind.PAYMENT, db_default=PaymentKind.PAYMENT
    )
    refund_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="returns", db_index=False
    )
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="Negative for a refund or dispute."
    )
    status = models.CharField(max_length=10, choices=PaymentStatus.choices)
    processor = models.CharField(max_length=30)
    processor_reference = models.CharField(
        max_length=255, blank=True, help_text="The processor's id: PaymentIntent, Refund or Dispute."
    )
    card_last4 = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    needs_review = models.CharField(
        max_length=12, choices=ReviewReason.choices, blank=True, default="", db_default=""
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip

    class Meta:
        constraints = [
            # A payment takes money, a refund or dispute gives it back and names the payment (H3), a reversal
            # takes it again (a dispute won) and names the payment too.
            models.CheckConstraint(
                condition=Q(kind="payment", amount__gt=0, refund_of__isnull=True)
                | Q(kind__in=["refund", "dispute"], amount__lt=0, refund_of__isnull=False)
                | Q(kind="reversal", amount__gt=0, refund_of__isnull=False),
                name="payment_amount_sign_by_kind",
            ),
            # H2: one row per processor id, whatever events and retries announce it.
            models.UniqueConstraint(
                fields=["processor", "processor_reference"],
                condition=~Q(processor_reference=""),
                name="payment_once_per_processor_id",
            ),
        ]
        indexes = [
            # What has gone back on a payment (refund limits, the receipt).
            models.Index(fields=["refund_of"], condition=Q(refund_of__isnull=False), name="payment_returns"),
            # The staff's list of payments to review (H2), per organization.
            models.Index(
                fields=["organization"],
                condition=~Q(needs_review="") & Q(reviewed_at__isnull=True),
                name="payment_needs_review",
            ),
            models.Index(fields=["checkout"], condition=Q(checkout__isnull=False), name="payment_checkout"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} on {self.bill_id} ({self.status})"


class CheckoutMode(models.TextChoices):
    PAYMENT = "payment", "Payment"
    SETUP = "setup", "Save a card"


class CheckoutStatus(models.TextChoices):
    OPEN = "open", "Open (the patient is on the processor's page)"
    COMPLETE = "complete", "Complete"
    EXPIRED = "expired", "Expired"


class Checkout(models.Model):
    """A hosted checkout started for a payment link (H1): the amount the patient chose, the processor's session.

    ``reference`` is ours, random, and travels with the processor's objects (Stripe: ``client_reference_id``
    and metadata), so a confirmation finds its link and campaign. Mode ``setup``: a page that saves a card for a
    plan (H5); ``setup_reference`` is then the processor's SetupIntent once completed."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="checkouts"
    )
    link = models.ForeignKey(PaymentLink, on_delete=models.CASCADE, related_name="checkouts")
    bill = models.ForeignKey("practices.Bill", on_delete=models.CASCADE, related_name="checkouts")
    mode = models.CharField(max_length=7, choices=CheckoutMode.choices, default=CheckoutMode.PAYMENT)
    reference = models.CharField(max_length=40, unique=True)
    processor = models.CharField(max_length=30)
    session_id = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=8, choices=CheckoutStatus.choices, default=CheckoutStatus.OPEN)
    setup_reference = models.CharField(max_length=255, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    last_failure = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["processor", "session_id"], name="checkout_once_per_session"),
            models.CheckConstraint(
                condition=Q(mode="setup") | Q(amount__gt=0), name="checkout_payment_has_amount"
            ),
        ]

    def __str__(self) -> str:
        return f"Checkout {self.reference} ({self.status})"


PAY_LATER_MAX_DAYS = 60


class PlanKind(models.TextChoices):
    MONTHLY = "monthly", "Monthly installments"
    PAY_LATER = "pay_later", "Pay later"


class PlanState(models.TextChoices):
    PENDING_CARD = "pending_card", "Waiting for the card to be saved"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed (paid in full)"
    FAILED = "failed", "Failed (an installment could not be charged)"
    CANCELLED = "cancelled", "Cancelled"


PLAN_OPEN_STATES = (PlanState.PENDING_CARD, PlanState.ACTIVE)


class PaymentPlan(models.Model):
    """A payment plan the patient chose on the payment page (H5): the campaign's balance in monthly installments,
    or paid later in one (pay-later). The card stays with the processor: ``customer_reference`` and
    ``payment_method_reference`` are its ids, taken from the signed confirmation of the card-save checkout."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="payment_plans"
    )
    guarantor = models.ForeignKey(
        "practices.Patient", on_delete=models.CASCADE, related_name="payment_plans", db_index=False
    )
    bill = models.ForeignKey("practices.Bill", on_delete=models.PROTECT, related_name="payment_plans")
    checkout = models.OneToOneField(
        Checkout, on_delete=models.PROTECT, related_name="plan", help_text="The card-save checkout."
    )
    kind = models.CharField(max_length=9, choices=PlanKind.choices)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    installment_count = models.PositiveSmallIntegerField()
    processor = models.CharField(max_length=30)
    customer_reference = models.CharField(max_length=255, blank=True)
    payment_method_reference = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=12, choices=PlanState.choices, default=PlanState.PENDING_CARD)
    created_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(total__gt=0, installment_count__gte=1), name="plan_total_and_count_positive"
            ),
            models.CheckConstraint(
                condition=~Q(kind="pay_later") | Q(installment_count=1), name="plan_pay_later_is_one"
            ),
            # One open plan per guarantor: a second sign-up cannot start while one waits or runs.
            models.UniqueConstraint(
                fields=["guarantor"], condition=Q(state__in=["pending_card", "active"]), name="plan_one_open"
            ),
        ]
        indexes = [
            # The guarantor page and the import's re-assertion of on_payment_plan (open plans of a guarantor).
            models.Index(fields=["guarantor", "state"], name="plan_by_guarantor"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} plan {self.pk} of {self.total} ({self.state})"


class InstallmentState(models.TextChoices):
    PENDING = "pending", "Waiting for the plan to start"
    SCHEDULED = "scheduled", "Scheduled"
    CHARGING = "charging", "Being charged"
    RETRYING = "retrying", "Declined: to be tried again"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Installment(models.Model):
    """One charge of a plan, on its date (H5). ``idempotency_key`` is unique and sent to the processor with each
    attempt (``<key>:<attempt>``), so two workers, or a worker retrying after a crash, never charge it twice.
    Amounts are exact cents: each installment is the total divided evenly, the last takes the remainder."""

    plan = models.ForeignKey(PaymentPlan, on_delete=models.CASCADE, related_name="installments")
    sequence = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    state = models.CharField(max_length=9, choices=InstallmentState.choices, default=InstallmentState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True)
    payment = models.OneToOneField(
        Payment, on_delete=models.SET_NULL, null=True, blank=True, related_name="installment"
    )
    payment_reference = models.CharField(max_length=255, blank=True, help_text="The last PaymentIntent.")
    last_failure = models.CharField(max_length=300, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="installment_once_per_sequence"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="installment_amount_positive"),
        ]
        indexes = [
            # The charging tick: installments whose attempt is due (payments.plans.installments_claim).
            models.Index(
                fields=["next_attempt_at"], condition=Q(state__in=["scheduled", "retrying"]),
                name="installment_due",
            ),
            # The same tick: claims left by a worker that died mid-charge.
            models.Index(fields=["claimed_at"], condition=Q(state="charging"), name="installment_charging"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"Installment {self.sequence} of plan {self.plan_id}: {self.amount} on {self.due_date}"


class ProcessorEvent(models.Model):
    """A processor event already applied, by its id (H2, T3): a retried or duplicated event finds its row and
    changes nothing. Written in the transaction of what the event did, so a failure leaves no row and the
    processor's retry applies it then."""

    processor = models.CharField(max_length=30)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=60)
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["processor", "event_id"], name="processor_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.processor} {self.type} {self.event_id}"


class SandboxSession(models.Model):
    """The sandbox processor's own record of a hosted session (``payments.processors.sandbox``): what Stripe
    would keep on its side. Nothing of ours reads it but the sandbox."""

    id = models.CharField(primary_key=True, max_length=64)
    mode = models.CharField(max_length=8)  # payment, setup, or charge (an off-session charge)
    status = models.CharField(max_length=10, default="open")
    amount_cents = models.PositiveIntegerField(null=True, blank=True)
    amount_refunded_cents = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=200, blank=True)
    client_reference_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    success_url = models.CharField(max_length=1000, blank=True)
    cancel_url = models.CharField(max_length=1000, blank=True)
    payment_intent = models.CharField(max_length=64, blank=True, db_index=True)
    customer = models.CharField(max_length=64, blank=True)
    payment_method = models.CharField(max_length=64, blank=True)
    setup_intent = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Sandbox {self.mode} {self.id} ({self.status})"


class SandboxEvent(models.Model):
    """An event the sandbox signed, waiting to be POSTed to its webhook (or delivered)."""

    id = models.CharField(primary_key=True, max_length=64)
    payload = models.TextField()
    webhook_url = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(delivered_at__isnull=True), name="sandbox_event_pending"
            )
        ]

    def __str__(self) -> str:
        return f"Sandbox event {self.id}"


# --- Results (SPEC §16): link events for attribution (V2), the daily figures the Results page adds up, and
# the daily AR snapshot taken at each import (V1). The code that writes and reads them is payments.results.


class LinkEventKind(models.TextChoices):
    OPENED = "opened", "Link opened"
    VERIFIED = "verified", "Date of birth verified"


class LinkEvent(models.Model):
    """A patient opened a message's payment link (``?m=<ref>``, V2), or verified their date of birth after
    opening it (counted for the most recent opened message of the campaign).

    The message's channel, kind, step and the amount it asked for are copied here: they never change, and the
    daily figures group by them without reading the outbox again."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bill = models.ForeignKey("practices.Bill", on_delete=models.CASCADE, related_name="+", db_index=False)
    message = models.ForeignKey(
        "notifications.Message", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    event = models.CharField(max_length=8, choices=LinkEventKind.choices)
    channel = models.CharField(max_length=5)
    message_kind = models.CharField(max_length=12)
    step_key = models.CharField(max_length=64, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            # V2: the most recent opened message of a campaign before a payment or a verification.
            models.Index(fields=["bill", "event", "at"], name="linkevent_bill_latest"),
            # A message's first open (or verification): the funnel counts each message once.
            models.Index(fields=["message", "event", "at"], name="linkevent_message_first"),
            # The daily figures: an organization's events of a day.
            models.Index(fields=["organization", "at"], name="linkevent_org_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()}: message {self.message_id} at {self.at:%Y-%m-%d %H:%M}"


class Metric(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    # Messages that went out or could not: sent, or undeliverable without ever being sent (the rate's base).
    ATTEMPTED = "attempted", "Attempted"
    UNDELIVERABLE = "undeliverable", "Undeliverable"
    OPENED = "opened", "Link opened"
    VERIFIED = "verified", "Verified"
    PAID = "paid", "Paid"
    PAPER_PAID = "paper_paid", "Paid on campaigns reached by paper"
    PAY_DELAY = "pay_delay", "Days from first message to payment"


class DailyFigure(models.Model):
    """One figure of one day of an organization (its own zone's calendar day), by the message's channel, kind
    and step (and the reason, for undeliverable; the number of days, for the time to pay).

    Written once per day after the day has settled (``payments.results.services``), never rewritten; the Results page
    adds up the rows of its range and computes the days that have not settled yet from the live tables."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    metric = models.CharField(max_length=13, choices=Metric.choices)
    channel = models.CharField(max_length=5, blank=True)
    kind = models.CharField(max_length=12, blank=True)
    step_key = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=24, blank=True)
    days = models.IntegerField(default=0)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))

    class Meta:
        constraints = [
            # Also the index of the page's read: an organization's rows of a range of days.
            models.UniqueConstraint(
                fields=["organization", "day", "metric", "channel", "kind", "step_key", "reason", "days"],
                name="daily_figure_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.metric} {self.channel}/{self.kind}: {self.count} ({self.amount})"


class BuiltDay(models.Model):
    """The day's figures are in DailyFigure (a day without any activity has no figure, but has its row here)."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    built_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "day"], name="built_day_once")]

    def __str__(self) -> str:
        return f"Figures of {self.day}"


class ARSnapshot(models.Model):
    """V1: the organization's accounts receivable by aging bucket on an import date (the last import of the
    day wins), and the number of guarantors owing."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    bucket_0_30 = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    bucket_31_60 = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    bucket_61_90 = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    bucket_over_90 = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    guarantors = models.PositiveIntegerField(
        default=0, help_text="Guarantors with a balance owed (total > 0)."
    )
    taken_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "day"], name="ar_snapshot_once_a_day")]

    def __str__(self) -> str:
        return f"AR on {self.day}: {self.total}"
