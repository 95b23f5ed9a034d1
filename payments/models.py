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
    DECLINED = "declined", "Declined"


class Payment(models.Model):
    """A patient payment taken through the gateway (P3), exported for posting into the PMS."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="payments"
    )
    bill = models.ForeignKey("practices.Bill", on_delete=models.PROTECT, related_name="payments")
    link = models.ForeignKey(PaymentLink, on_delete=models.SET_NULL, null=True, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=10, choices=PaymentStatus.choices)
    gateway = models.CharField(max_length=30)
    gateway_reference = models.CharField(max_length=100, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive")]

    def __str__(self) -> str:
        return f"{self.amount} on {self.bill_id} ({self.status})"
