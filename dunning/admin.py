"""Admin of the dunning app: presets (ops edit, billing managers view; T2), organization dunning settings
(billing managers; S1-S12, audited T5) and the daily runs (read-only).

DunningDecision is registered with the bill trail elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from dunning.impact_admin import ImpactPreviewAdminMixin
from dunning.models import (
    RESET_FIELDS,
    AfterFinalOutcome,
    DunningDecision,
    DunningRun,
    DunningSettings,
    Preset,
    PresetStep,
    StepKind,
)
from dunning.presets import SYSTEM_DEFAULT, preset_schedule, preset_validate
from dunning.services import ResendError, decision_resend
from notifications.models import Channel, Template
from practices.models import Role
from practices.tenancy import OrganizationScopedAdmin, SystemWrittenAdmin, user_has_role

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

_CHANNEL_LABELS = dict(Channel.choices)


def _is_ops(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.is_superuser)


def _may_view_presets(request: HttpRequest) -> bool:
    # T2: presets are global; any billing manager sees them (the S1 drop-down searches them), ops edit them.
    user = request.user
    return bool(user.is_active and user.is_staff and user_has_role(user, Role.BILLING_MANAGER))


def schedule_table(preset: Preset | None, *, organization_id: int | None = None) -> str:
    """The preset's schedule as an HTML table (S1): cycle, bill age, notification type, channel, template.

    Every template links to its preview with sample values: a chosen one shows its id, an empty one
    "System default" (linked to the system default of its kind and channel). From an organization's settings
    (``organization_id``), the preview shows that organization's own values."""
    query = f"?organization={organization_id}" if organization_id is not None else ""
    if preset is None:
        return "No preset: this organization's bills are not dunned."
    rows = preset_schedule(preset)
    if not rows:
        return "This preset has no steps."
    defaults = dict(
        ((kind, channel), pk)
        for pk, kind, channel in Template.objects.filter(organization__isnull=True).values_list(
            "pk", "kind", "channel"
        )
    )
    cells = []
    for row in rows:
        if row["template"] == SYSTEM_DEFAULT:
            default_id = defaults.get((row["kind"], row["channel"]))
            template = (
                format_html(
                    '<a href="{}{}">{}</a>',
                    reverse("admin:notifications_template_preview", args=[default_id]),
                    query,
                    SYSTEM_DEFAULT,
                )
                if default_id is not None
                else SYSTEM_DEFAULT
            )
        else:
            template = format_html(
                '<a href="{}{}">{}</a>',
                reverse("admin:notifications_template_preview", args=[row["template"]]),
                query,
                row["template"],
            )
        cells.append(
            (
                row["cycle"],
                row["bill_age_days"],
                StepKind(row["kind"]).label,
                _CHANNEL_LABELS.get(row["channel"], row["channel"]),
                template,
            )
        )
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", cells)
    return format_html(
        '<table class="dunning-schedule"><thead><tr><th>Cycle</th><th>Bill age (days)</th>'
        "<th>Notification type</th><th>Channel</th><th>Template</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


# --- presets --------------------------------------------------------------------------------------------


class PresetStepForm(forms.ModelForm):
    class Meta:
        model = PresetStep
        fields = ["bill_age_days", "kind", "channel", "template"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        template, channel = cleaned.get("template"), cleaned.get("channel")
        if template is not None and channel and template.channel != channel:
            self.add_error(
                "template", f"This is a {template.channel} template; the step is sent by {channel}."
            )
        return cleaned


class PresetStepFormSet(BaseInlineFormSet):
    """Validates the whole schedule with ``preset_validate`` against the cycle days being saved."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        cycle_days = getattr(self.instance, "cycle_days", None)
        paper_cycle_days = getattr(self.instance, "paper_cycle_days", None)
        if cycle_days is None or paper_cycle_days is None:
            return  # the preset's own form reports the missing values
        steps = [
            (form.cleaned_data["bill_age_days"], form.cleaned_data["kind"], form.cleaned_data["channel"])
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get(DELETION_FIELD_NAME, False)
        ]
        errors = preset_validate(cycle_days=cycle_days, paper_cycle_days=paper_cycle_days, steps=steps)
        if errors:
            raise ValidationError(errors)


class PresetStepInline(admin.TabularInline):
    model = PresetStep
    form = PresetStepForm
    formset = PresetStepFormSet
    fields = ["bill_age_days", "kind", "channel", "template"]
    extra = 0
    min_num = 0

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "template":
            # Presets serve every organization, so a step may only name a system default template.
            kwargs["queryset"] = Template.objects.filter(organization__isnull=True)
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "template" and field is not None:
            field.empty_label = "System default"
        return field

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_view_presets(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_ops(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_ops(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_ops(request)


class _PresetAnnotations(TypedDict):
    step_total: int


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin[Preset]):
    """Global schedules: ops (superusers) add and change them, billing managers view them (T2).

    Built-in presets (shipped by migration) cannot be deleted, and their slug is fixed."""

    inlines = [PresetStepInline]
    list_display = ["name", "slug", "cycle_days", "paper_cycle_days", "step_count", "built_in"]
    list_filter = ["built_in"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "description", "cycle_days", "paper_cycle_days", "built_in", "schedule"]
    ordering = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WithAnnotations[Preset, _PresetAnnotations]]:
        return super().get_queryset(request).annotate(step_total=Count("steps"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.built_in:
            return ["slug", "built_in", "schedule"]
        return ["built_in", "schedule"]

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Sequence[str]]:
        return {} if obj is not None and obj.built_in else super().get_prepopulated_fields(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _may_view_presets(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _may_view_presets(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_ops(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_ops(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Per object also from the delete_selected action, so a selection with a built-in preset is refused.
        return _is_ops(request) and not (obj is not None and obj.built_in)

    @admin.display(description="steps", ordering="step_total")
    def step_count(self, obj: WithAnnotations[Preset, _PresetAnnotations]) -> int:
        return obj.step_total

    @admin.display(description="schedule (saved)")
    def schedule(self, obj: Preset | None = None) -> str:
        if obj is None or obj.pk is None:
            return "Save the preset to see its schedule."
        return schedule_table(obj)


# --- organization dunning settings ----------------------------------------------------------------------

_LABELS = {
    "preset": "Dunning configuration",
    "min_electronic": "Minimum dollar threshold, electronic (email + SMS)",
    "min_print": "Minimum dollar threshold, print",
    "bill_aging": "Bill aging",
    "communicate_on_update": "Communications on bill update",
    "bill_reset_flag": "Enable billReset flag",
    "reset_on_fields": "Reset bill on fields changing",
    "reset_fields": "Reset bill fields",
    "drop_to_paper_on_opt_out": "Drop to paper on opt-out",
    "skip_paper_when_electronic": "Skip paper when electronic available",
    "run_at": "Daily run time",
    "paper_cost": "Paper cost per letter",
}
_HELP = {
    "preset": "The schedule of statements, reminders and letters; its steps are shown below as soon as it is "
    "chosen and apply once saved. Empty: bills are not dunned.",
    "min_electronic": "Texts and emails go out only when the bill's amount due is more than this. "
    "0.00 sends for any amount due.",
    "min_print": "Letters go out only when the bill's amount due is more than this. 0.00 sends for any "
    "amount due.",
    "reset_fields": "With “Reset bill on fields changing” on, a change in any of these fields restarts "
    "the schedule.",
    "run_at": "The organization's local time of the daily dunning run.",
}
_FIELD_LABELS = {
    "amount_due": "Amount due",
    "statement_date": "Statement date",
    "due_date": "Due date",
    "guarantor_id": "Guarantor",
}


class DunningSettingsForm(forms.ModelForm):
    reset_fields = forms.MultipleChoiceField(
        choices=[(name, _FIELD_LABELS[name]) for name in RESET_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = DunningSettings
        fields = [
            "organization", "preset", "min_electronic", "min_print", "bill_aging", "communicate_on_update",
            "bill_reset_flag", "reset_on_fields", "reset_fields", "drop_to_paper_on_opt_out",
            "skip_paper_when_electronic", "paper_cost", "run_at",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.label = _LABELS.get(name, field.label)
            # The model's help texts carry the SPEC's setting ids (S4.); the form speaks to the user.
            field.help_text = _HELP.get(name, re.sub(r"^S\d+\.\s*", "", str(field.help_text or "")))
        if self.instance.preset_id is not None:
            # The instance rather than its id, so the audit records the old preset by name (T5).
            self.initial["preset"] = self.instance.preset
        # Django fills the form of a new object from the model's defaults only for the fields it makes; the
        # checkbox list declared above would show no field ticked although amount_due is the default.
        self.initial.setdefault("reset_fields", list(self.instance.reset_fields))

    def _clean_threshold(self, name: str) -> Decimal:
        value = self.cleaned_data[name]
        if value is not None and value < 0:
            raise ValidationError("A threshold cannot be negative.")
        return value

    def clean_min_electronic(self) -> Decimal:
        return self._clean_threshold("min_electronic")

    def clean_min_print(self) -> Decimal:
        return self._clean_threshold("min_print")

    def clean_paper_cost(self) -> Decimal:
        value = self.cleaned_data["paper_cost"]
        if value is not None and value < 0:
            raise ValidationError("A letter cannot cost less than nothing.")
        return value

    def clean_reset_fields(self) -> list[str]:
        chosen = self.cleaned_data["reset_fields"]
        return [name for name in RESET_FIELDS if name in chosen]


@admin.register(DunningSettings)
class DunningSettingsAdmin(ImpactPreviewAdminMixin, OrganizationScopedAdmin[DunningSettings]):
    """One row per organization, created with it (``organization_settings_create``, and migration 0006 for
    the organizations before): billing managers change it, and nobody adds one here."""

    form = DunningSettingsForm
    view_role = Role.BILLING_MANAGER
    change_role = Role.BILLING_MANAGER
    organization_path = "organization"
    autocomplete_fields = ["preset"]
    list_display = ["organization", "preset", "min_electronic", "min_print", "bill_aging", "run_at"]
    list_select_related = ["organization", "preset"]
    fieldsets = [
        (None, {"fields": ["organization"]}),
        ("Schedule", {"fields": ["preset", "schedule", "cycle_days", "paper_cycle_days", "run_at"]}),
        ("Thresholds", {"fields": ["min_electronic", "min_print"]}),
        (
            "Aging and resets",
            {
                "fields": [
                    "bill_aging",
                    "communicate_on_update",
                    "bill_reset_flag",
                    "reset_on_fields",
                    "reset_fields",
                ]
            },
        ),
        ("Paper", {"fields": ["drop_to_paper_on_opt_out", "skip_paper_when_electronic", "paper_cost"]}),
        ("Impact preview", {"fields": ["impact_preview"]}),  # W1: dunning/impact_admin.py
    ]

    readonly_fields = ["organization", "schedule", "cycle_days", "paper_cycle_days", "impact_preview"]

    class Media:
        # S1: the schedule is redrawn (htmx) as soon as a preset is chosen, before anything is saved.
        js = ["django_htmx/htmx-2.min.js", "js/preset-schedule.js"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        schedule = path(
            "<path:object_id>/schedule/",
            self.admin_site.admin_view(self.schedule_view),
            name="{}_{}_schedule".format(*info),
        )
        return [schedule, *super().get_urls()]

    def schedule_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The schedule of the preset chosen in the form (``?preset=<id>``, empty for none), beside the
        saved one; the change form swaps it in with htmx. Nothing is saved."""
        obj = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        raw = request.GET.get("preset", "")
        preset = Preset.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if raw and preset is None:
            return HttpResponseBadRequest("No such preset.")
        return HttpResponse(_schedule_fragment(preset, saved=obj.preset, organization_id=obj.organization_id))

    @admin.display(description="schedule")
    def schedule(self, obj: DunningSettings | None = None) -> str:
        if obj is None or obj.pk is None:
            return schedule_table(None)
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_schedule", args=[obj.pk])
        return format_html(
            '<div id="preset-schedule" aria-live="polite" hx-get="{}" hx-include="#id_preset" '
            'hx-trigger="preset-chosen from:#id_preset">{}</div>',
            url,
            schedule_table(obj.preset, organization_id=obj.organization_id),
        )

    @admin.display(description="dunning cycle days")
    def cycle_days(self, obj: DunningSettings | None = None) -> str:
        return _cycle_days(obj.preset if obj is not None else None)

    @admin.display(description="paper cycle days")
    def paper_cycle_days(self, obj: DunningSettings | None = None) -> str:
        return _paper_cycle_days(obj.preset if obj is not None else None)


# The read-only cycle days (S2, S3) follow the chosen preset too: the fragment replaces them out of band.
def _cycle_days(preset: Preset | None, *, oob: bool = False) -> str:
    value = "—" if preset is None else str(preset.cycle_days)
    return format_html('<span id="preset-cycle-days"{}>{}</span>', _OOB if oob else "", value)


def _paper_cycle_days(preset: Preset | None, *, oob: bool = False) -> str:
    value = "—" if preset is None else str(preset.paper_cycle_days)
    return format_html('<span id="preset-paper-cycle-days"{}>{}</span>', _OOB if oob else "", value)


_OOB = mark_safe(' hx-swap-oob="true"')


def _schedule_fragment(preset: Preset | None, *, saved: Preset | None, organization_id: int) -> str:
    note = (
        format_html(
            '<p class="help">Not saved yet: {} applies once you save; until then the saved {} does.</p>',
            f"the schedule of “{preset}”" if preset is not None else "no preset (no dunning)",
            f"preset “{saved}”" if saved is not None else "choice (no preset)",
        )
        if preset != saved
        else ""
    )
    return format_html(
        "{}{}{}{}",
        note,
        schedule_table(preset, organization_id=organization_id),
        _cycle_days(preset, oob=True),
        _paper_cycle_days(preset, oob=True),
    )


@admin.register(DunningRun)
class DunningRunAdmin(SystemWrittenAdmin[DunningRun]):
    """Read-only: runs are started by the daily schedule or run_dunning."""

    view_role = Role.BILLING_MANAGER
    list_display = ["organization", "run_date", "started_at", "finished_at", "decisions"]
    list_filter = ["run_date"]
    list_select_related = ["organization"]
    date_hierarchy = "run_date"
    show_full_result_count = False


@admin.register(DunningDecision)
class DunningDecisionAdmin(SystemWrittenAdmin[DunningDecision]):
    """A bill's trail (D12): every decision of the engine with its reason; filter by bill from the bill admin.
    The action resends a step's message, bypassing the thresholds (S4/S5) but not opt-outs or quiet hours."""

    view_role = Role.BILLING_MANAGER
    list_display = ["bill", "generation", "run_date", "bill_age_days", "step_age_days", "kind", "channel", "action",
                    "reason", "message_state"]  # fmt: skip
    list_filter = ["action", "reason", "channel", "kind"]
    list_select_related = ["bill", "message"]
    search_fields = ["bill__bill_id", "bill__guarantor__external_id"]
    raw_id_fields = ["bill", "message", "step"]
    ordering = ["bill__bill_id", "generation", "step_age_days", "channel"]
    actions = ["resend"]
    show_full_result_count = False

    @admin.display(description="message")
    def message_state(self, obj: DunningDecision) -> str:
        return obj.message.get_state_display() if obj.message is not None else "—"

    @admin.action(
        description="Resend the message of the selected decisions (bypasses thresholds)", permissions=["view"]
    )
    def resend(self, request: HttpRequest, queryset: QuerySet[DunningDecision]) -> None:
        sent, refused = 0, []
        for decision in queryset.select_related("bill", "message__organization", "message__patient"):
            try:
                decision_resend(decision=decision, user=request.user)
                sent += 1
            except ResendError as exc:
                refused.append(str(exc))
        self.message_user(request, f"Resent {sent} message(s).")
        for reason in refused[:10]:
            self.message_user(request, reason, level=messages.WARNING)


@admin.register(AfterFinalOutcome)
class AfterFinalOutcomeAdmin(SystemWrittenAdmin[AfterFinalOutcome]):
    """Read-only: the outcomes staff recorded on the after-final worklist (A2), written by its service."""

    list_display = [
        "bill",
        "generation",
        "outcome",
        "promise_date",
        "created_by",
        "created_at",
        "organization",
    ]
    list_filter = ["outcome"]
    list_select_related = ["bill", "created_by", "organization"]
    search_fields = ["bill__bill_id", "bill__guarantor__external_id"]
    raw_id_fields = ["bill", "snooze", "created_by"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
