"""Admin of the payments app: payment settings (billing managers, T2), snoozes and payment requests (read-only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from dunning.impact_admin import ImpactPreviewAdminMixin
from dunning.models import PreviewKind
from payments.models import ALL_AGING, SNOOZE_REASON_MAX_LENGTH, PaymentRequest, PaymentSettings, Snooze
from payments.settings_keys import REQUEST_CHANNELS
from practices.models import AgingCategory, Role
from practices.tenancy import OrganizationScopedAdmin


class PaymentSettingsForm(forms.ModelForm):
    """Edits the JSON list fields as checkboxes and one-per-line text, so only valid lists are saved."""

    eligible_aging = forms.MultipleChoiceField(
        choices=[(value, AgingCategory(value).label) for value in ALL_AGING],
        widget=forms.CheckboxSelectMultiple,
        help_text="R4: guarantors whose oldest balance is in one of these categories are listed.",
    )
    request_channels = forms.MultipleChoiceField(
        choices=[("sms", "SMS"), ("email", "Email")], widget=forms.CheckboxSelectMultiple
    )
    snooze_reasons = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="One reason per line, offered when snoozing (staff may also type their own).",
    )

    class Meta:
        model = PaymentSettings
        fields = [
            "organization", "min_payment_amount", "eligible_aging", "max_open_claims", "request_channels",
            "snooze_reasons", "link_lifetime_days",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["snooze_reasons"] = "\n".join(self.instance.snooze_reasons or [])
        # Django fills the form of a new object from the model's defaults only for the fields it makes; the
        # checkbox lists declared above would show nothing ticked although the defaults are all of them.
        for name in ("eligible_aging", "request_channels"):
            self.initial.setdefault(name, list(getattr(self.instance, name)))

    def clean_min_payment_amount(self) -> Decimal:
        value = self.cleaned_data["min_payment_amount"]
        if value < 0:
            raise forms.ValidationError("The minimum payment amount cannot be negative.")
        return value

    def clean_eligible_aging(self) -> list[str]:
        chosen = self.cleaned_data["eligible_aging"]
        return [value for value in ALL_AGING if value in chosen]

    def clean_request_channels(self) -> list[str]:
        chosen = self.cleaned_data["request_channels"]
        return [value for value in REQUEST_CHANNELS if value in chosen]

    def clean_snooze_reasons(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["snooze_reasons"].splitlines()]
        reasons = list(dict.fromkeys(line for line in lines if line))
        too_long = [r for r in reasons if len(r) > SNOOZE_REASON_MAX_LENGTH]
        if too_long:
            raise forms.ValidationError(
                f"A reason is at most {SNOOZE_REASON_MAX_LENGTH} characters: {too_long[0][:40]}…"
            )
        return reasons


@admin.register(PaymentSettings)
class PaymentSettingsAdmin(ImpactPreviewAdminMixin, OrganizationScopedAdmin[PaymentSettings]):
    """One row per organization, created with it (``organization_settings_create``, and migration 0003 for
    the organizations before): billing managers change it, and nobody adds one here."""

    # The impact preview (W1) lives with the engine it runs, in dunning; this is its one use in payments.
    impact_kind = PreviewKind.PAYMENT
    form = PaymentSettingsForm
    view_role = Role.BILLING_MANAGER
    change_role = Role.BILLING_MANAGER
    list_display = ["organization", "min_payment_amount", "aging", "max_open_claims", "channels"]
    list_select_related = ["organization"]
    readonly_fields = ["organization", "impact_preview"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="eligible aging")
    def aging(self, obj: PaymentSettings) -> str:
        return ", ".join(obj.eligible_aging)

    @admin.display(description="request channels")
    def channels(self, obj: PaymentSettings) -> str:
        return ", ".join(obj.request_channels)


class SnoozeStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Not lifted"), ("lifted", "Lifted early")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "open":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Snooze)
class SnoozeAdmin(OrganizationScopedAdmin[Snooze]):
    """Read-only: snoozes are made and lifted from the dashboard or the snooze/unsnooze commands (B3)."""

    view_role = Role.FRONT_DESK
    list_display = ["guarantor", "until", "reason", "created_by", "created_at", "lifted_at", "organization"]
    list_filter = [SnoozeStateFilter]
    list_select_related = ["guarantor", "created_by", "organization"]
    search_fields = ["guarantor__external_id", "guarantor__last_name", "reason"]
    raw_id_fields = ["guarantor", "created_by", "lifted_by"]
    date_hierarchy = "until"
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaymentRequest)
class PaymentRequestAdmin(OrganizationScopedAdmin[PaymentRequest]):
    """Read-only: a request is created by sending (B2, B4)."""

    view_role = Role.FRONT_DESK
    list_display = [
        "bill",
        "guarantor",
        "mode",
        "request_date",
        "requested_by",
        "requested_at",
        "organization",
    ]
    list_filter = ["mode"]
    list_select_related = ["bill", "guarantor", "requested_by", "organization"]
    search_fields = ["guarantor__external_id", "guarantor__last_name", "bill__bill_id"]
    raw_id_fields = ["guarantor", "bill", "requested_by"]
    date_hierarchy = "request_date"
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
