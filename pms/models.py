"""PMS connectors (SPEC §13.2): an organization's connection to its practice-management system, and the
payments posted back to it.

The app sits at the edge of the one-way data flow: it builds a feed from the PMS and hands it to the importer
of ``practices`` (C1), and it reads ``payments`` to post them back (C3). Nothing imports it.
"""

from __future__ import annotations

from datetime import time

from django.db import models
from django.db.models import Q

# Open Dental billing types (practice-defined names, see its Definitions: Billing Types) that mean "send no
# statements" or "sent to collections" in the offices we have seen; C2 makes them do_not_contact. Compared
# without regard to case; the billing manager edits the list (org_settings pms_no_contact_billing_types).
DEFAULT_NO_CONTACT_BILLING_TYPES = [
    "Collections", "Sent to Collections", "Bad Debt", "No Statements", "Do Not Bill", "Do Not Send Statements",
]  # fmt: skip


def _default_no_contact_billing_types() -> list[str]:
    return list(DEFAULT_NO_CONTACT_BILLING_TYPES)


class PmsKind(models.TextChoices):
    NONE = "none", "None (feeds or export_payments)"
    OPENDENTAL = "opendental", "Open Dental"


class Connection(models.Model):
    """How to reach the organization's PMS, and where its last sync left off. The keys are Fernet tokens
    (``pms/keys.py``); nothing shows them, only whether they are set."""

    organization = models.OneToOneField(
        "practices.Organization", on_delete=models.CASCADE, related_name="pms_connection"
    )
    pms = models.CharField(max_length=12, choices=PmsKind.choices, default=PmsKind.NONE)
    base_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="Empty: Open Dental's Remote API, https://api.opendental.com/api/v1",
    )
    developer_key_encrypted = models.TextField(blank=True, editable=False)
    customer_key_encrypted = models.TextField(blank=True, editable=False)
    sync_time = models.TimeField(default=time(5, 0), help_text="Local time of the daily sync.")
    no_contact_billing_types = models.JSONField(
        default=_default_no_contact_billing_types, blank=True,
        help_text="Billing types (names, any case) that mean no statements or collections: do_not_contact.",
    )  # fmt: skip
    # C3: payments taken from this moment on are posted back; earlier ones went through export_payments.
    posting_starts_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Open Dental's serverDateTime when the last complete read began; the next incremental read asks for the
    # records changed since (DateTStamp). Empty: the next sync is a full one.
    change_stamp = models.CharField(max_length=32, blank=True, editable=False)
    last_full_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_status = models.CharField(max_length=10, blank=True, editable=False)
    last_sync_reason = models.TextField(blank=True, editable=False)
    last_sync_feed = models.ForeignKey(
        "practices.FeedImport",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # The local date the beat last started this organization's daily sync (one a day, claimed atomically).
    scheduled_on = models.DateField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(pms__in=PmsKind.values), name="pms_connection_kind")
        ]

    def __str__(self) -> str:
        return f"PMS connection of {self.organization_id} ({self.pms})"


class PostState(models.TextChoices):
    PENDING = "pending", "Pending"
    POSTED = "posted", "Posted"
    FAILED = "failed", "Failed (refused by the PMS)"


class PaymentPost(models.Model):
    """A payment taken here, posted back to the PMS exactly once (C3). The reference goes into the PMS
    payment's note, and an attempt is recorded before it is made: a later try first looks for the reference
    among the PMS's payments, so a crash between the post and our record never posts twice."""

    organization = models.ForeignKey("practices.Organization", on_delete=models.CASCADE, related_name="+")
    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="pms_post")
    reference = models.CharField(max_length=40, unique=True)
    state = models.CharField(max_length=8, choices=PostState.choices, default=PostState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    pms_payment_id = models.CharField(max_length=32, blank=True, help_text="Open Dental's PayNum.")
    posted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # A lease taken with a conditional UPDATE before the check and the post: two syncs of one organization
    # (the beat and a sync_pms by hand) never work on one payment at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(state__in=PostState.values), name="payment_post_state"),
        ]
        indexes = [
            # The posting run: an organization's posts still pending.
            models.Index(fields=["organization"], condition=Q(state="pending"), name="payment_post_pending"),
        ]

    def __str__(self) -> str:
        return f"Post of payment {self.payment_id} ({self.state})"
