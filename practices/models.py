"""Organizations, staff memberships, and the mirror of the practice-management system (SPEC §2)."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as America/Denver.")


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="America/New_York", validators=[validate_timezone])
    phone = models.CharField(
        max_length=32, blank=True, help_text="Shown to patients (HELP replies, letters)."
    )
    email_from = models.EmailField(blank=True, help_text="Sender address for email; empty means the default.")
    twilio_messaging_service_sid = models.CharField(max_length=64, blank=True)
    twilio_from_number = models.CharField(max_length=16, blank=True)
    return_address_line1 = models.CharField(max_length=200, blank=True)
    return_address_line2 = models.CharField(max_length=200, blank=True)
    return_address_city = models.CharField(max_length=100, blank=True)
    return_address_state = models.CharField(max_length=2, blank=True)
    return_address_zip = models.CharField(max_length=10, blank=True)
    logo = models.FileField(upload_to="logos/", blank=True)
    # generated_at of the newest feed applied; an older feed is stale (I3).
    last_feed_generated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Role(models.TextChoices):
    FRONT_DESK = "front_desk", "Front desk"
    BILLING_MANAGER = "billing_manager", "Billing manager"
    ORG_ADMIN = "org_admin", "Organization admin"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_one_per_user_org"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.get_role_display()})"


class AddressStatus(models.TextChoices):
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"
    UNKNOWN = "unknown", "Unknown"


class TimezoneSource(models.TextChoices):
    FEED = "feed", "From the PMS"
    ZIP = "zip", "Mailing ZIP code"
    PHONE = "phone", "Phone area code"
    ORGANIZATION = "organization", "Organization"


class SmsConsent(models.TextChoices):
    """§13.2 ``sms_consent``: consent to texts as the PMS records it; with ``require_sms_consent`` on, only
    ``yes`` is texted."""

    YES = "yes", "Yes"
    NO = "no", "No"
    UNKNOWN = "unknown", "Unknown"


class Patient(models.Model):
    """A patient as mirrored from the PMS. A guarantor is a patient whose guarantor is itself."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="patients")
    external_id = models.CharField(max_length=64, help_text="The PMS id, unique per organization.")
    guarantor = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="dependents"
    )
    guarantor_external_id = models.CharField(max_length=64)
    is_guarantor = models.BooleanField(default=False)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField(null=True, blank=True)
    email = models.CharField(max_length=254, blank=True)
    mobile_phone = models.CharField(max_length=16, blank=True, help_text="E.164")
    # §13.2 feed additions: call-list numbers for the after-final worklist (A1); never texted.
    # A database default too: the importer's COPY upsert and the bench baselines name their columns.
    home_phone = models.CharField(
        max_length=16, blank=True, default="", db_default="", help_text="E.164; never texted."
    )
    work_phone = models.CharField(
        max_length=16, blank=True, default="", db_default="", help_text="E.164; never texted."
    )
    # §13.2 feed additions (all optional in the feed; database defaults for the same reason as the phones).
    sms_consent = models.CharField(
        max_length=7, choices=SmsConsent.choices, default=SmsConsent.UNKNOWN, db_default=SmsConsent.UNKNOWN
    )
    preferred_name = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text="Greetings use it ({{ patient.first_name }}).",
    )
    language = models.CharField(
        max_length=2, blank=True, default="", db_default="", help_text="ISO 639-1, e.g. es; empty: English."
    )
    care_of = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text="A name line on letters (c/o)."
    )
    deceased = models.BooleanField(
        default=False, db_default=False, help_text="Nothing is sent; the importer closes every campaign."
    )
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    address_city = models.CharField(max_length=100, blank=True)
    address_state = models.CharField(max_length=2, blank=True)
    address_zip = models.CharField(max_length=10, blank=True)
    address_status = models.CharField(
        max_length=8, choices=AddressStatus.choices, default=AddressStatus.UNKNOWN
    )
    timezone = models.CharField(max_length=64, blank=True, help_text="Empty: the organization's zone.")
    timezone_source = models.CharField(
        max_length=12, choices=TimezoneSource.choices, default=TimezoneSource.ORGANIZATION
    )
    last_visit_date = models.DateField(null=True, blank=True)
    on_payment_plan = models.BooleanField(default=False)
    open_claims = models.PositiveIntegerField(default=0)
    do_not_contact = models.BooleanField(default=False)
    pms_sms_opt_out = models.BooleanField(default=False, help_text="SMS consent flag kept in the PMS.")
    pms_email_opt_out = models.BooleanField(default=False, help_text="Email consent flag kept in the PMS.")
    # generated_at of the feed that last carried this patient.
    last_feed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"], name="patient_external_id_per_org"
            ),
        ]
        indexes = [
            # bulk-request eligibility scans the guarantors of one organization (R1).
            models.Index(
                fields=["organization", "external_id"],
                condition=Q(is_guarantor=True),
                name="patient_guarantors_by_org",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.external_id})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def effective_timezone(self) -> str:
        """The recipient's zone (Q3): the derived one, or else the organization's."""
        return self.timezone or self.organization.timezone

    @property
    def effective_tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.effective_timezone)


class AgingCategory(models.TextChoices):
    NONE = "", "None"
    D0_30 = "0_30", "0-30 days"
    D31_60 = "31_60", "31-60 days"
    D61_90 = "61_90", "61-90 days"
    OVER_90 = "over_90", "Over 90 days"


BUCKETS: tuple[str, ...] = ("0_30", "31_60", "61_90", "over_90")
CENTS = Decimal("0.01")


class Account(models.Model):
    """A guarantor's family balance in aging buckets (SPEC §2). Derived columns are written by the importer."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="accounts")
    guarantor = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="account")
    bucket_0_30 = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    bucket_31_60 = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    bucket_61_90 = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    bucket_over_90 = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    insurance_estimate = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    patient_portion = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    aging_category = models.CharField(max_length=8, choices=AgingCategory.choices, blank=True, default="")
    as_of = models.DateTimeField(help_text="generated_at of the feed that carried this balance.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(patient_portion__gte=0), name="account_portion_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Account of {self.guarantor_id}: {self.patient_portion}"


class BillSource(models.TextChoices):
    STATEMENT = "statement", "Statement (PMS)"
    REQUEST = "request", "Payment request"


class BillState(models.TextChoices):
    ACTIVE = "active", "Active"
    PAID = "paid", "Paid"
    CLOSED = "closed", "Closed"
    COMPLETED = "completed", "Completed"


# D11: a completed bill has nothing left to decide, but its last messages still go, its link still works and
# its amount still follows the PMS and payments; only paid and closed bills have ended.
BILL_ENDED_STATES = (BillState.PAID, BillState.CLOSED)
BILL_OWING_STATES = (BillState.ACTIVE, BillState.COMPLETED)


class ClosedReason(models.TextChoices):
    """Why staff closed a bill after its final notice (A2); blank for every other end."""

    NONE = "", "—"
    COLLECTIONS = "collections", "Sent to collections"
    WRITTEN_OFF = "written_off", "Written off"
    DECEASED = "deceased", "Guarantor deceased (from the PMS)"


class DunningStatus(models.TextChoices):
    NONE = "", "None"
    NEW = "new", "New"
    DUE = "due", "Due"
    PAST_DUE = "past_due", "Past due"
    FINAL = "final", "Final"


class SentByPms(models.TextChoices):
    """§13.2 ``sent_by_pms``: how the PMS itself already sent the statement; the engine skips that channel's
    age-0 step (reason ``sent_by_pms``)."""

    MAIL = "mail", "Mailed by the PMS"
    EMAIL = "email", "Emailed by the PMS"
    NONE = "none", "Not sent by the PMS"


class Bill(models.Model):
    """The unit dunning works on; its life is the 'campaign' of the UI (SPEC §2)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="bills")
    guarantor = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="bills")
    bill_id = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=BillSource.choices)
    statement_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    amount_due = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(help_text="First seen (the generated_at of its first feed).")
    effective_created_date = models.DateField(help_text="The dunning clock: bill age counts from here.")
    generation = models.PositiveIntegerField(default=1)
    dunning_status = models.CharField(max_length=8, choices=DunningStatus.choices, blank=True, default="")
    state = models.CharField(max_length=10, choices=BillState.choices, default=BillState.ACTIVE)
    last_seen_at = models.DateTimeField(help_text="generated_at of the last feed that carried this bill.")
    ended_at = models.DateTimeField(null=True, blank=True)
    # D13: the next date a dunning step falls due (NULL: to be computed); a daily run reads only the bills
    # with next_dunning_date <= today, through the partial index below.
    next_dunning_date = models.DateField(null=True, blank=True)
    # D10: the amount changed without a reset since the last run; the next run decides a bill_update message.
    amount_changed = models.BooleanField(default=False)
    # K6: the last run held this bill's due steps for its guarantor's open insurance claims; each run first
    # releases the held bills whose claims have settled (dunning.engine.run._release_settled_claims).
    claims_held = models.BooleanField(default=False, db_default=False)
    closed_reason = models.CharField(
        max_length=12, choices=ClosedReason.choices, blank=True, default="", db_default="",
        help_text="A2: collections or written off, recorded on the after-final worklist.",
    )  # fmt: skip
    # §13.2: the dependent a statement is for (a walkout or single-patient statement); NULL when the feed
    # names none. Indexed below, partially: most bills have none.
    patient = models.ForeignKey(
        Patient,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="statements_for",
        db_index=False,
    )
    sent_by_pms = models.CharField(
        max_length=5, choices=SentByPms.choices, default=SentByPms.NONE, db_default=SentByPms.NONE
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "bill_id"], name="bill_id_per_org"),
            # A2: only a closed bill carries a closing reason.
            models.CheckConstraint(
                condition=Q(closed_reason="") | Q(state="closed", closed_reason__in=ClosedReason.values),
                name="bill_closed_reason_only_when_closed",
            ),
            models.CheckConstraint(condition=Q(generation__gte=1), name="bill_generation_positive"),
            models.CheckConstraint(condition=Q(state__in=BillState.values), name="bill_state_valid"),
            # B2: a double click or a retried request never makes two request campaigns for one guarantor.
            models.UniqueConstraint(
                fields=["guarantor"],
                condition=Q(state="active", source="request"),
                name="bill_one_active_request",
            ),
        ]
        indexes = [
            # "is this guarantor in an active campaign" (R6) and the closing passes of the importer (I6).
            models.Index(fields=["guarantor"], condition=Q(state="active"), name="bill_active_by_guarantor"),
            # The daily dunning run: active bills with something due on or before today (D13).
            models.Index(
                fields=["organization", "next_dunning_date"],
                condition=Q(state="active"),
                name="bill_dunning_due",
            ),
            # The after-final worklist (A1): an organization's completed bills.
            models.Index(
                fields=["organization"], condition=Q(state="completed"), name="bill_completed_by_org"
            ),
            models.Index(fields=["patient"], condition=Q(patient__isnull=False), name="bill_patient"),
            # K6: the bills held for their guarantor's claims, released by each run once the claims settle.
            models.Index(
                fields=["organization"],
                condition=Q(state="active", claims_held=True),
                name="bill_claims_held",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} ({self.get_state_display()})"


class AuditEvent(models.Model):
    """Who changed what, when (T5). Written by services, shown read-only in the admin."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_label = models.CharField(max_length=150, help_text="The user, or the command/task that acted.")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class ApiToken(models.Model):
    """A per-organization token for the ingestion API; only its SHA-256 is stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class FeedSource(models.TextChoices):
    COMMAND = "command", "import_feed command"
    API = "api", "Ingestion API"
    DEMO = "demo", "seed_demo"
    # §13.2 C1: a feed the Open Dental connector built from the practice's API (`sync_pms`, the daily beat).
    OPENDENTAL = "opendental", "Open Dental connector"


class FeedStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    PARTIAL = "partial", "Applied with rejections"
    DUPLICATE = "duplicate", "Duplicate (nothing changed)"
    STALE = "stale", "Rejected: stale"
    UNUSABLE = "unusable", "Rejected: unusable document"
    FAILED = "failed", "Failed: nothing applied (see the error)"


class FeedImport(models.Model):
    """A PMS feed exactly as received, with what became of it (I3)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="feed_imports")
    source = models.CharField(max_length=10, choices=FeedSource.choices)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    import_date = models.DateField(
        null=True, blank=True, help_text="generated_at as a date in the org's zone (I0)."
    )
    checksum = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the raw bytes.")
    raw = models.TextField()
    status = models.CharField(max_length=10, choices=FeedStatus.choices)
    applied_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    duplicate_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"Feed {self.pk} of {self.organization_id} ({self.status})"
