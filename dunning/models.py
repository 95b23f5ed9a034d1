"""Dunning presets, organization dunning settings, and the engine's decision trail (SPEC §6, §7)."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from notifications.models import Channel

STEP_KINDS = ["statement", "reminder", "due", "past_due", "final"]
RESET_FIELDS = ["amount_due", "statement_date", "due_date", "guarantor_id"]
# SPEC §16: paper letters are priced at an organization setting, $0.75 a letter unless set.
DEFAULT_PAPER_COST = Decimal("0.75")


class StepKind(models.TextChoices):
    STATEMENT = "statement", "Statement"
    REMINDER = "reminder", "Reminder"
    DUE = "due", "Due"
    PAST_DUE = "past_due", "Past due"
    FINAL = "final", "Final notice"


class Preset(models.Model):
    """A named schedule shipped with the product (read-only to billing managers; ops may add more)."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    cycle_days = models.PositiveIntegerField(help_text="Days in one dunning cycle (S2).")
    paper_cycle_days = models.PositiveIntegerField(help_text="Paper steps sit at multiples of this (S3).")
    built_in = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cycle_days__gt=0) & Q(paper_cycle_days__gt=0), name="preset_cycles_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PresetStep(models.Model):
    """(bill_age_days, kind, channel, template): template empty means the system default for kind and channel."""

    preset = models.ForeignKey(Preset, on_delete=models.CASCADE, related_name="steps")
    bill_age_days = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=StepKind.choices)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    template = models.ForeignKey("notifications.Template", on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["bill_age_days", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["preset", "bill_age_days", "channel"], name="preset_step_once_per_age_channel"
            ),
        ]

    def __str__(self) -> str:
        return f"day {self.bill_age_days}: {self.kind} by {self.channel}"

    def cycle(self) -> int:
        """The cycle a step belongs to: bill_age_days // cycle_days + 1 (SPEC §6)."""
        return self.bill_age_days // self.preset.cycle_days + 1

    @property
    def step_key(self) -> str:
        # The D1 uniqueness key of the messages and decisions this step produces.
        return f"step:{self.pk}"


class BillAging(models.TextChoices):
    NATURAL = "natural", "Natural (from the statement date)"
    DUNNING_STATUS = "dunning_status", "Dunning status from the PMS"


def _default_reset_fields() -> list[str]:
    return ["amount_due"]


class DunningSettings(models.Model):
    """One row per organization; each field is one seed setting (S1-S12)."""

    organization = models.OneToOneField(
        "practices.Organization", on_delete=models.CASCADE, related_name="dunning_settings"
    )
    preset = models.ForeignKey(
        Preset, on_delete=models.PROTECT, null=True, blank=True,
        help_text="S1. The schedule of statements, reminders and letters. Empty: no dunning.",
    )  # fmt: skip
    min_electronic = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"),
        help_text="S4. Texts and emails go out only when the bill's amount due is more than this.",
    )  # fmt: skip
    min_print = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"),
        help_text="S5. Paper letters go out only when the bill's amount due is more than this.",
    )  # fmt: skip
    bill_aging = models.CharField(
        max_length=16, choices=BillAging.choices, default=BillAging.NATURAL,
        help_text="S6. Natural: a bill's age counts from its first statement date. Dunning status: the PMS's "
        "status (new, due, past due, final) places the bill on the schedule.",
    )  # fmt: skip
    communicate_on_update = models.BooleanField(
        default=False,
        help_text="S7. Send a short 'your bill changed' text/email when the amount due changes.",
    )
    bill_reset_flag = models.BooleanField(
        default=False, help_text="S8. Restart the schedule when the PMS marks a statement 'reset bill'."
    )
    reset_on_fields = models.BooleanField(
        default=False, help_text="S9. Restart the schedule when one of the fields below changes."
    )
    reset_fields = models.JSONField(
        default=_default_reset_fields, blank=True, help_text="S10. The fields for S9."
    )
    drop_to_paper_on_opt_out = models.BooleanField(
        default=False,
        help_text="S11. Send a letter instead of a due/past-due text or email the patient opted out of.",
    )
    skip_paper_when_electronic = models.BooleanField(
        default=False,
        help_text="S12. Skip letters when the patient can be reached by text or email, and for invalid addresses.",
    )
    run_at = models.TimeField(default=time(7, 0), help_text="Local time of the daily dunning run.")
    paper_cost = models.DecimalField(
        max_digits=8, decimal_places=2, default=DEFAULT_PAPER_COST,
        help_text="What one mailed letter costs the practice (print, envelope, postage); the impact preview "
        "and the results price paper letters with it.",
    )  # fmt: skip

    class Meta:
        verbose_name_plural = "dunning settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(paper_cost__gte=0), name="dunning_settings_paper_cost_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Dunning settings of {self.organization.name}"


class Action(models.TextChoices):
    SEND = "send", "Send"
    SKIP = "skip", "Skip"


class SkipReason(models.TextChoices):
    NONE = "", "—"
    SUPERSEDED = "superseded", "Superseded by a later step (catch-up)"
    BELOW_THRESHOLD = "below_threshold", "Amount at or below the threshold"
    OPTED_OUT = "opted_out", "Patient opted out of this channel"
    ELECTRONIC_AVAILABLE = "electronic_available", "Patient reachable electronically"
    INVALID_ADDRESS = "invalid_address", "Mailing address invalid"
    DO_NOT_CONTACT = "do_not_contact", "Do not contact"
    REQUEST = "request", "Stands for the payment request already sent"
    DROP_TO_PAPER = "drop_to_paper", "Sent as a letter instead (opted out electronically)"
    SENT_BY_PMS = "sent_by_pms", "The PMS already sent this statement on this channel"
    NO_SMS_CONSENT = "no_sms_consent", "No SMS consent in the PMS (consent required)"
    CLAIMS_PENDING = "claims_pending", "Insurance claims pending (over the open-claims limit)"


class DunningDecision(models.Model):
    """One decision of the engine for a (bill, generation, step, channel): the bill's trail (D12).

    Unique, so a step is decided once per generation however many times or however concurrently the
    engine runs (D1).

    An append-only trail written by the engine alone, in the transaction that holds its bills locked, some
    fifteen rows per bill on a catch-up: its references are not checked by database foreign keys (checking
    four per row took longer than writing the rows, SPEC §11). Django still cascades and nulls them on
    delete, and the lookups are indexed: bill by ``decision_once_per_step``, organization by
    ``decision_by_org_date``."""

    organization = models.ForeignKey(
        "practices.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    bill = models.ForeignKey(
        "practices.Bill", on_delete=models.CASCADE, related_name="dunning_decisions", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    generation = models.PositiveIntegerField()
    step = models.ForeignKey(
        PresetStep, on_delete=models.SET_NULL, null=True, blank=True, db_constraint=False
    )
    step_key = models.CharField(max_length=64)
    run_date = models.DateField()
    bill_age_days = models.IntegerField()
    step_age_days = models.IntegerField()
    kind = models.CharField(max_length=12)
    channel = models.CharField(max_length=5)
    action = models.CharField(max_length=4, choices=Action.choices)
    reason = models.CharField(max_length=24, choices=SkipReason.choices, blank=True, default="")
    message = models.ForeignKey(
        "notifications.Message", on_delete=models.SET_NULL, null=True, blank=True, db_index=False,
        db_constraint=False,
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bill", "generation", "step_key", "channel"], name="decision_once_per_step"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "run_date"], name="decision_by_org_date"),
            # Most decisions are skips without a message.
            models.Index(fields=["message"], condition=Q(message__isnull=False), name="decision_message"),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} g{self.generation} {self.kind}/{self.channel}: {self.action} {self.reason}"


class DunningRun(models.Model):
    """The daily run of an organization for a date; unique so beat and a replay never overlap (D1)."""

    organization = models.ForeignKey("practices.Organization", on_delete=models.CASCADE, related_name="+")
    run_date = models.DateField()
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    decisions = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "run_date"], name="dunning_run_once_per_day")
        ]

    def __str__(self) -> str:
        return f"Run of {self.organization_id} for {self.run_date}"


class AfterFinalOutcomeKind(models.TextChoices):
    """What staff recorded for a bill after its final notice (A2)."""

    PROMISE_TO_PAY = "promise_to_pay", "Promise to pay"
    PAYMENT_PLAN = "payment_plan", "Payment plan (set up in the PMS)"
    RESTART_REMINDERS = "restart_reminders", "Restart reminders"
    COLLECTIONS = "collections", "Sent to collections"
    WRITTEN_OFF = "written_off", "Written off"


OUTCOME_NOTE_MAX_LENGTH = 500


class AfterFinalOutcome(models.Model):
    """One outcome staff recorded on the after-final worklist for a bill's generation (A2, audited T5).

    Written by ``dunning.after_final.after_final_record`` alone; the bill's latest outcome of its current
    generation is what the worklist shows."""

    organization = models.ForeignKey("practices.Organization", on_delete=models.CASCADE, related_name="+")
    # Looked up by after_final_latest, which leads with the bill.
    bill = models.ForeignKey(
        "practices.Bill", on_delete=models.CASCADE, related_name="after_final_outcomes", db_index=False
    )
    generation = models.PositiveIntegerField(help_text="The bill's generation the outcome was recorded on.")
    outcome = models.CharField(max_length=20, choices=AfterFinalOutcomeKind.choices)
    promise_date = models.DateField(
        null=True, blank=True, help_text="The date the guarantor promised to pay by."
    )
    snooze = models.ForeignKey(
        "payments.Snooze", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The snooze a promise to pay started.",
    )  # fmt: skip
    note = models.CharField(max_length=OUTCOME_NOTE_MAX_LENGTH, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=AfterFinalOutcomeKind.values), name="after_final_outcome_valid"
            ),
            # A promise carries its date; nothing else has one.
            models.CheckConstraint(
                condition=Q(outcome="promise_to_pay", promise_date__isnull=False)
                | (~Q(outcome="promise_to_pay") & Q(promise_date__isnull=True)),
                name="after_final_promise_has_a_date",
            ),
        ]
        indexes = [
            # The latest outcome of a bill's generation (the worklist's subquery, the command's "outcome").
            models.Index(fields=["bill", "generation", "-created_at"], name="after_final_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} g{self.generation}: {self.get_outcome_display()}"


class PreviewKind(models.TextChoices):
    DUNNING = "dunning", "Dunning settings"
    PAYMENT = "payment", "Payment settings"


class PreviewStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SettingsPreview(models.Model):
    """A settings impact preview (SPEC §17 W1): what a proposed change of payment or dunning settings would do
    over the next days against the organization's live data, beside the current settings.

    Made before the change is saved and computed by a background task (``dunning.impact_preview``), which
    writes only this row (status, progress, result). When the change is saved with it, ``audit_event`` is the
    audit event of that save, so the audit shows what was known when it was saved."""

    organization = models.ForeignKey("practices.Organization", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=PreviewKind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    start_date = models.DateField(help_text="The first day of the forecast (the organization's today).")
    days = models.PositiveSmallIntegerField(default=30)
    current = models.JSONField(help_text="The settings in force when the preview was asked for.")
    proposed = models.JSONField(help_text="The unsaved settings of the form.")
    status = models.CharField(max_length=8, choices=PreviewStatus.choices, default=PreviewStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    stage = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    audit_event = models.OneToOneField(
        "practices.AuditEvent", on_delete=models.SET_NULL, null=True, blank=True, related_name="impact_preview",
        help_text="The audit event of the save this preview was kept with.",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="settings_preview_progress_percent"),
            models.CheckConstraint(
                condition=Q(kind__in=PreviewKind.values), name="settings_preview_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=PreviewStatus.values), name="settings_preview_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Impact preview {self.pk} ({self.get_kind_display()}, {self.get_status_display()})"
