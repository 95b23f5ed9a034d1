"""The message outbox and what surrounds it (SPEC §8): states, opt-outs, templates, letter batches."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


def validate_frequency_cap(value: str) -> None:
    from django.core.exceptions import ValidationError

    from notifications.frequency import parse_frequency_cap
    from practices.org_settings import SettingError

    try:
        parse_frequency_cap(value or "none")
    except SettingError as exc:
        raise ValidationError(str(exc)) from None


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    PAPER = "paper", "Paper"


ELECTRONIC = (Channel.SMS, Channel.EMAIL)


class Kind(models.TextChoices):
    REQUEST = "request", "Payment request"
    STATEMENT = "statement", "Statement"
    REMINDER = "reminder", "Reminder"
    DUE = "due", "Due"
    PAST_DUE = "past_due", "Past due"
    FINAL = "final", "Final notice"
    BILL_UPDATE = "bill_update", "Bill update"
    RESEND = "resend", "Resend"
    # H4: a payment's email receipt, written by payments (no template, no campaign: the message has no bill).
    RECEIPT = "receipt", "Payment receipt"
    # H5: a plan's installment was declined (tried again on a date), or declined for the last time (the plan
    # ended); written by payments.plans from these kinds' system templates, without a bill.
    PLAN_RETRY = "plan_retry", "Payment plan: payment declined, will retry"
    PLAN_FAILED = "plan_failed", "Payment plan: ended after declines"


# H5: the plan notices have system templates by text and email only (a declined card is news of the day).
ELECTRONIC_ONLY_KINDS: tuple[str, ...] = (Kind.PLAN_RETRY, Kind.PLAN_FAILED)


class State(models.TextChoices):
    PENDING = "pending", "Pending"
    SCHEDULED = "scheduled", "Scheduled (held)"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    UNKNOWN = "unknown", "Unknown (review)"


# N1: the states a message may move to from each state. Nothing moves backwards; provider callbacks that
# arrive out of order (sent after delivered) find no allowed transition and change nothing.
TRANSITIONS: dict[str, frozenset[str]] = {
    State.PENDING: frozenset(
        {State.SCHEDULED, State.SENDING, State.SKIPPED, State.CANCELLED, State.UNDELIVERED, State.FAILED}
    ),
    State.SCHEDULED: frozenset({State.PENDING, State.SENDING, State.SKIPPED, State.CANCELLED}),
    # sending -> scheduled only when a claimed message turns out to fall in quiet hours or a transient
    # provider error asks for a later attempt; the provider has not accepted it.
    # sending -> delivered: the provider's delivery report can beat our own write of `sent` (issue 11).
    State.SENDING: frozenset(
        {
            State.SENT,
            State.DELIVERED,
            State.UNDELIVERED,
            State.FAILED,
            State.UNKNOWN,
            State.CANCELLED,
            State.SCHEDULED,
        }
    ),
    State.SENT: frozenset({State.DELIVERED, State.UNDELIVERED, State.FAILED}),
    State.UNKNOWN: frozenset({State.SENT, State.DELIVERED, State.UNDELIVERED, State.FAILED}),
    State.DELIVERED: frozenset(),
    State.UNDELIVERED: frozenset(),
    State.FAILED: frozenset(),
    State.SKIPPED: frozenset(),
    State.CANCELLED: frozenset(),
}
# N2: the one move out of a state the provider holds that is not a delivery outcome. Twilio can report 21610
# (the recipient had replied STOP to this sender) in a status callback after accepting the message; it never
# reached them, so it ends `cancelled`. Kept out of TRANSITIONS on purpose, so that no ordinary cancel
# (`message_transition(to=CANCELLED)`: the pre-send re-check, an opt-out) can end a message Twilio has
# taken: only `delivery.sms_status_apply` makes this move, from these states.
PROVIDER_OPT_OUT_SOURCES: frozenset[str] = frozenset({State.SENDING, State.SENT, State.UNKNOWN})
OPEN_STATES = (State.PENDING, State.SCHEDULED)
UNDELIVERABLE_STATES = (State.UNDELIVERED, State.FAILED)


class Reason(models.TextChoices):
    """Why a message was skipped, cancelled or could not be delivered (shown on the undeliverable list)."""

    NONE = "", "—"
    NO_DESTINATION = "no_destination", "No mobile number / email / valid address on file"
    INVALID_NUMBER = "invalid_number", "Invalid phone number"
    LANDLINE = "landline", "Not a mobile number (landline)"
    UNREACHABLE = "unreachable", "Handset unreachable (a resend may work)"
    UNKNOWN_HANDSET = "unknown_handset", "Unknown or out-of-service number"
    OPTED_OUT = "opted_out", "Recipient opted out"
    BOUNCED = "bounced", "Email bounced"
    REJECTED = "rejected", "Email rejected by the provider"
    PROVIDER_FAILED = "provider_failed", "The provider could not send it"
    PROVIDER_UNDELIVERED = "provider_undelivered", "The carrier could not deliver it"
    BILL_NOT_ACTIVE = "bill_not_active", "The campaign ended before sending"
    DO_NOT_CONTACT = "do_not_contact", "Patient flagged do-not-contact"
    STALE_SENDING = "stale_sending", "No answer from the provider in time; check before resending"
    RETRIES_EXHAUSTED = "retries_exhausted", "The provider kept failing"
    UNREACHABLE_ROUTE = "unreachable_route", "Number not reachable by text on this route"
    CARRIER_FILTERED = "carrier_filtered", "Blocked by carrier filtering (the content, not the number)"
    OLDER_GENERATION = "older_generation", "The bill was reset after this message was decided"
    NO_SMS_CONSENT = "no_sms_consent", "No SMS consent in the PMS (the organization requires it)"
    DECEASED = "deceased", "Patient deceased (from the PMS)"
    # K6: a dunning message whose guarantor's open claims grew past max_open_claims after it was queued; the
    # engine's hold takes the step back (dunning.engine.claims.decision_hold), so it goes once they settle (D2).
    CLAIMS_PENDING = "claims_pending", "Waiting for insurance: open claims over the organization's limit"
    # Why a message is held (``scheduled``), K1/K2/Q1: it goes when the hold ends (``scheduled_for``).
    QUIET_HOURS = "quiet_hours", "Held: quiet hours in the recipient's time zone"
    STATE_HOURS = "state_hours", "Held: outside the hours the recipient's state allows"
    SUNDAY = "sunday", "Held: no messages on Sundays (organization setting)"
    HOLIDAY = "holiday", "Held: no messages on US federal holidays (organization setting)"
    FREQUENCY_CAP = "frequency_cap", "Held: the guarantor's contact-frequency cap is reached"
    HOUSEHOLD_CAP = "household_cap", "Held: the household's contact-frequency cap is reached"
    STATE_LIMIT = "state_limit", "Held: the recipient's state limits messages per period"
    HOURLY_LIMIT = "hourly_limit", "Held: the organization's hourly text limit is reached"


# The reasons of a held message; a message that goes clears them.
HOLD_REASONS = frozenset(
    {
        Reason.QUIET_HOURS,
        Reason.STATE_HOURS,
        Reason.SUNDAY,
        Reason.HOLIDAY,
        Reason.FREQUENCY_CAP,
        Reason.HOUSEHOLD_CAP,
        Reason.STATE_LIMIT,
        Reason.HOURLY_LIMIT,
    }
)


class Message(models.Model):
    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="messages"
    )
    # Indexed by message_patient_channel_state, which leads with the patient.
    patient = models.ForeignKey(
        "practices.Patient", on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # The subject: a bill (campaign), its generation and the step that produced the message. notifications
    # reads the bill's state for the pre-send re-check (N1) and knows nothing else of the owning app.
    bill = models.ForeignKey(
        "practices.Bill", on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    generation = models.PositiveIntegerField(default=0)
    step_key = models.CharField(
        max_length=64, blank=True, help_text="The schedule step (or request) it stands for."
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    template = models.ForeignKey("Template", on_delete=models.SET_NULL, null=True, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Values the body was rendered with.")
    destination = models.CharField(max_length=254, blank=True, help_text="E.164 number or email address.")
    postal_address = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    reason = models.CharField(max_length=24, choices=Reason.choices, blank=True, default="")
    # What held it, in words for staff (the state rule and its citation, the cap and the count); with a database
    # default because the dunning run's COPY names its columns.
    hold_detail = models.CharField(max_length=300, blank=True, default="", db_default="")
    scheduled_for = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_id = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The four optional links below are set on few messages (resends, batches, staff actions): partial
    # indexes (in Meta) keep the millions of messages a dunning run writes out of them.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    resend_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="resends", db_index=False
    )
    consent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    consent_at = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        "LetterBatch",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        db_index=False,
    )

    class Meta:
        constraints = [
            # D1: one message per (bill, generation, step, channel), however often the engine runs.
            models.UniqueConstraint(
                fields=["bill", "generation", "step_key", "channel"],
                condition=~Q(step_key=""),
                name="message_once_per_step",
            ),
            models.CheckConstraint(condition=Q(state__in=State.values), name="message_state_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="message_channel_valid"),
        ]
        indexes = [
            # The quiet-hours tick: scheduled messages whose time has come.
            models.Index(
                fields=["scheduled_for"], condition=Q(state="scheduled"), name="message_scheduled_due"
            ),
            # The sweeper: messages stuck in sending.
            models.Index(
                fields=["sending_started_at"], condition=Q(state="sending"), name="message_sending_since"
            ),
            # Status callbacks by provider id.
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="message_provider_id"),
            # The undeliverable list, newest first, per organization.
            models.Index(
                fields=["organization", "-updated_at"],
                condition=Q(state__in=["undelivered", "failed"]),
                name="message_undeliverable",
            ),
            # The nightly paper batch.
            models.Index(
                fields=["organization"],
                condition=Q(channel="paper", state="pending"),
                name="message_paper_due",
            ),
            models.Index(fields=["patient", "channel", "state"], name="message_patient_channel_state"),
            models.Index(fields=["batch"], condition=Q(batch__isnull=False), name="message_batch"),
            models.Index(
                fields=["resend_of"], condition=Q(resend_of__isnull=False), name="message_resend_of"
            ),
            models.Index(
                fields=["created_by"], condition=Q(created_by__isnull=False), name="message_created_by"
            ),
            models.Index(
                fields=["consent_by"], condition=Q(consent_by__isnull=False), name="message_consent_by"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} to {self.patient_id} ({self.state})"


class OptOutSource(models.TextChoices):
    SMS_KEYWORD = "sms_keyword", "SMS keyword (STOP/START)"
    PROVIDER_ERROR = "provider_error", "Provider refused: recipient opted out (21610)"
    EMAIL_COMPLAINT = "email_complaint", "Email spam complaint"
    EMAIL_UNSUBSCRIBE = "email_unsubscribe", "Email unsubscribe"
    EMAIL_RESUBSCRIBE = "email_resubscribe", "Email resubscribe (ESP)"
    STAFF = "staff", "Staff"
    # K3 grants and revocations that do not change an address opt-out (OptOut): they are ledger rows only.
    PMS_FLAG = "pms_flag", "PMS consent flag (feed import)"
    QUICK_ADD = "quick_add", "Consent recorded by staff (quick-add)"
    # K4: a reply that is no keyword but reads as a request to stop ("please stop texting me", "número equivocado").
    SMS_PHRASE = "sms_phrase", "SMS reply read as a request to stop"


class OptOut(models.Model):
    """A patient's own opt-out of a channel at an address (number or email). Never cleared by a PMS feed.

    Keyed by the address, not the patient: a STOP from a number applies to every patient of the organization
    reached at that number. ``active`` goes false on START (re-subscribe)."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="opt_outs"
    )
    channel = models.CharField(max_length=5, choices=Channel.choices)
    address = models.CharField(max_length=254)
    active = models.BooleanField(default=True)
    source = models.CharField(max_length=20, choices=OptOutSource.choices)
    keyword = models.CharField(max_length=20, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "channel", "address"], name="opt_out_once_per_address"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.address} {'opted out' if self.active else 'subscribed'}"


class OptOutEvent(models.Model):
    """The consent ledger (K3): every grant and revocation of consent, per organization, channel and address,
    with its source, time, actor and the exact text that caused it, kept as proof.

    ``active`` is the state after the event: true is a revocation (opt-out), false a grant (opt-in, START,
    consent). Rows with ``opt_out`` changed the address opt-out (OptOut); rows without it (the PMS consent flag,
    a quick-add consent) are records only: the PMS flag is read from the patient and never written to OptOut.
    ``patient`` is set when the event concerns one patient (the PMS flag, a quick-add); address events apply to
    everyone reached at the address. ``actor_name`` keeps who it was if the user is deleted."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="consent_events", db_index=False
    )
    channel = models.CharField(max_length=5, choices=Channel.choices)
    address = models.CharField(max_length=254, blank=True)
    opt_out = models.ForeignKey(
        OptOut, on_delete=models.CASCADE, related_name="events", null=True, blank=True
    )
    patient = models.ForeignKey(
        "practices.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="consent_events",
        db_index=False,
    )
    active = models.BooleanField()
    source = models.CharField(max_length=20, choices=OptOutSource.choices)
    keyword = models.CharField(max_length=20, blank=True)
    text = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    actor_name = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField()

    class Meta:
        verbose_name = "consent ledger row"
        verbose_name_plural = "consent ledger"
        indexes = [
            # consent_history(): a guarantor's addresses in one organization, newest first; the CSV export.
            models.Index(fields=["organization", "address", "at"], name="consent_event_address"),
            # consent_history(): the rows recorded for the patients themselves (PMS flag, quick-add).
            models.Index(
                fields=["patient", "at"], condition=Q(patient__isnull=False), name="consent_event_patient"
            ),
        ]

    def __str__(self) -> str:
        return f"{'opt-out' if self.active else 'opt-in'} {self.source} at {self.at:%Y-%m-%d %H:%M}"


class ProviderEvent(models.Model):
    """A provider webhook event already applied, by the provider's own event id (T3, N3): a retried event
    finds its row and changes nothing, records nothing twice."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id}"


class ReviewState(models.TextChoices):
    OPEN = "open", "To review"
    OPTED_OUT = "opted_out", "Opted out"
    DISMISSED = "dismissed", "Not an opt-out"


class Confirmation(models.TextChoices):
    """The one confirmation text after an opt-out (K4): in our answer to the webhook, or sent by a worker
    after staff opted the number out from the queue; none when the number was already opted out."""

    NONE = "", "None"
    IN_REPLY = "in_reply", "In the reply to the text"
    PENDING = "pending", "Waiting for a worker"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class InboundReview(models.Model):
    """An inbound text that is no keyword but is, or might be, a request to stop texting (K4), per
    organization the sender's number concerns. ``open`` ones wait on the replies review queue for a person;
    the ones the phrase table opted out at once are kept ``opted_out`` with no ``decided_by``, so staff can
    see what the table did. ``rule``: the row of notifications.revocation that matched."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="inbound_reviews", db_index=False
    )
    number = models.CharField(max_length=32, help_text="The sender, E.164.")
    text = models.TextField()
    message_sid = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField()
    patients = models.ManyToManyField("practices.Patient", blank=True, related_name="+")
    state = models.CharField(max_length=10, choices=ReviewState.choices, default=ReviewState.OPEN)
    rule = models.CharField(max_length=40, blank=True)
    language = models.CharField(max_length=2, default="en")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    confirmation = models.CharField(max_length=10, choices=Confirmation.choices, blank=True, default="")
    confirmation_sid = models.CharField(max_length=64, blank=True)
    confirmation_error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            # A retried webhook (the same MessageSid) finds its rows.
            models.UniqueConstraint(
                fields=["organization", "message_sid"],
                condition=~Q(message_sid=""),
                name="inbound_review_once",
            ),
        ]
        indexes = [
            # inbound_reviews(): an organization's queue and its decided tab, newest first.
            models.Index(fields=["organization", "state", "received_at"], name="inbound_review_queue"),
            # inbound_review_close(): a STOP closes the open items of its number.
            models.Index(fields=["number"], condition=Q(state="open"), name="inbound_review_open_number"),
        ]

    def __str__(self) -> str:
        return f"Reply from …{self.number[-4:]} ({self.get_state_display()})"


class Template(models.Model):
    """A message template (N4). Organization NULL: a system default shipped with the product."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="templates"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    name = models.CharField(max_length=100)
    subject = models.CharField(max_length=200, blank=True, help_text="Email only.")
    body = models.TextField()
    # §13.2: the language the template is written in (ISO 639-1); its translations are TemplateTranslation.
    language = models.CharField(max_length=2, default="en", db_default="en", help_text="ISO 639-1, e.g. es.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "channel"],
                condition=Q(organization__isnull=True),
                name="template_one_system_default",
            ),
        ]
        ordering = ["organization_id", "kind", "channel", "name"]

    def __str__(self) -> str:
        owner = "System default" if self.organization_id is None else self.name
        return f"{owner} — {self.get_kind_display()} ({self.channel})"


class TemplateTranslation(models.Model):
    """A template in another language (§13.2): sent instead of its template to patients of that language;
    without one the template itself goes (English is the fallback). Organization NULL: shipped with the
    product (the Spanish system defaults); an organization may translate its own templates and the system
    defaults, and its translation comes before the system's."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="translations")
    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, null=True, blank=True,
        related_name="template_translations",
    )  # fmt: skip
    language = models.CharField(max_length=2, help_text="ISO 639-1, e.g. es.")
    subject = models.CharField(max_length=200, blank=True, help_text="Email only.")
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["template", "language"],
                condition=Q(organization__isnull=True),
                name="translation_one_system_per_language",
            ),
            models.UniqueConstraint(
                fields=["template", "organization", "language"],
                condition=Q(organization__isnull=False),
                name="translation_one_per_org_language",
            ),
        ]
        ordering = ["template_id", "language", "organization_id"]

    def __str__(self) -> str:
        return f"{self.template} in {self.language}"

    def as_template(self) -> Template:
        """The template as this translation words it (unsaved): what a message of it renders and refers to
        (the message's template is the original, its body the translation's)."""
        original = self.template
        return Template(
            pk=original.pk, organization_id=original.organization_id, kind=original.kind, channel=original.channel,
            name=original.name, subject=self.subject, body=self.body, language=self.language,
        )  # fmt: skip


class NotificationSettings(models.Model):
    """Per-organization sending settings owned by notifications (quiet hours, Q1)."""

    organization = models.OneToOneField(
        "practices.Organization", on_delete=models.CASCADE, related_name="notification_settings"
    )
    quiet_start = models.TimeField(default="21:00", help_text="Quiet hours start (recipient's local time).")
    quiet_end = models.TimeField(default="08:00", help_text="Quiet hours end (recipient's local time).")
    # §10 compliance key, §13.2: only patients whose PMS says sms_consent "yes" are texted.
    require_sms_consent = models.BooleanField(
        default=False, db_default=False, help_text="§13.2: text only patients whose PMS records SMS consent."
    )
    # K2: ``N/Dd`` (at most N messages in any D days, per guarantor and per household); empty: no cap.
    frequency_cap = models.CharField(
        max_length=12,
        blank=True,
        default="",
        validators=[validate_frequency_cap],
        help_text="K2: at most N messages in any D days per guarantor and household, written N/Dd (e.g. 3/7d); "
        "empty for no cap. Staff resends are counted but allowed.",
    )
    # K1: the organization's own rules, in the recipient's zone (every candidate zone, Q3).
    send_on_sundays = models.BooleanField(default=True, help_text="K1: off holds Sunday messages to Monday.")
    send_on_holidays = models.BooleanField(
        default=True, help_text="K1: off holds messages on US federal holidays (and their observed days)."
    )
    # K5: texts per clock hour for the whole organization (carrier registration limits); NULL: no limit.
    hourly_sms_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="K5: at most this many texts per clock hour for the organization (its carrier registration's "
        "throughput); the rest wait, in order, for the next hour. Empty: no limit.",
    )

    class Meta:
        verbose_name = "sending settings"
        verbose_name_plural = "sending settings"

    def __str__(self) -> str:
        return f"Sending settings of {self.organization}"


class SmsHourCount(models.Model):
    """K5: the texts an organization's workers took for one clock hour (UTC) under ``hourly_sms_limit``.

    The atomic counter behind the limit: a chunk of messages reserves its slots in one locked read and update
    of this row, so two workers never send more than the limit between them, and gives back what it did not
    use. Rows older than a day are deleted by the sweeper."""

    # Indexed by sms_hour_count_once, which leads with the organization.
    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "hour"], name="sms_hour_count_once"),
        ]

    def __str__(self) -> str:
        return f"{self.count} texts of {self.organization_id} in the hour of {self.hour:%Y-%m-%d %H:00}"


class BatchState(models.TextChoices):
    RENDERED = "rendered", "Rendered, waiting to be mailed"
    MAILED = "mailed", "Mailed"


class LetterBatch(models.Model):
    """One night's paper letters of an organization: one PDF and a CSV manifest (L1)."""

    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="letter_batches"
    )
    batch_date = models.DateField()
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.RENDERED)
    pdf = models.FileField(upload_to="letters/")
    manifest = models.FileField(upload_to="letters/")
    letter_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    mailed_at = models.DateTimeField(null=True, blank=True)
    mailed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-batch_date", "-id"]

    def __str__(self) -> str:
        return f"Letters of {self.batch_date} ({self.letter_count})"


# K5: Lookup v2's line types (https://www.twilio.com/docs/lookup/v2-api/line-type-intelligence#type-property-values)
# that can take a text. A number of another known type is refused at quick-add; a number Twilio could not type
# ("", "unknown") is allowed, as when the check cannot be made (docs/decisions.md, K5).
TEXTABLE_LINE_TYPES = frozenset({"mobile", "nonFixedVoip", "personal"})
UNTYPED_LINE_TYPES = frozenset({"", "unknown"})


class NumberLookup(models.Model):
    """K5: what Twilio Lookup said of a quick-added number, kept so that each number is looked up (and paid
    for) once per organization. Only answers are kept: a failed or timed-out lookup leaves no row and is asked
    again at the next quick-add of the number."""

    # Indexed by number_lookup_once, which leads with the organization.
    organization = models.ForeignKey(
        "practices.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    number = models.CharField(max_length=32)  # E.164
    line_type = models.CharField(max_length=20, blank=True)
    carrier_name = models.CharField(max_length=200, blank=True)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="number_lookup_once"),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.line_type or 'unknown'} ({self.carrier_name or 'no carrier'})"

    @property
    def textable(self) -> bool:
        """False only for a known type that cannot take a text (landline, fixed VoIP, toll-free, ...)."""
        return self.line_type in TEXTABLE_LINE_TYPES or self.line_type in UNTYPED_LINE_TYPES
