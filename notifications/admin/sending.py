"""Admin: an organization's sending settings (billing managers, T2, audited T5): quiet hours (Q1), the frequency cap
(K2), Sundays and holidays (K1), the hourly text limit (K5), beside the read-only table of state rules the product ships (K1)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from notifications.frequency import CAP_FORM
from notifications.models import NotificationSettings
from notifications.state_rules import STATE_RULES, STATE_RULES_VERSION
from practices.models import Role
from practices.tenancy import OrganizationScopedAdmin


class SendingSettingsForm(forms.ModelForm):
    class Meta:
        model = NotificationSettings
        fields = [
            "organization",
            "quiet_start",
            "quiet_end",
            "frequency_cap",
            "send_on_sundays",
            "send_on_holidays",
            "require_sms_consent",
            "hourly_sms_limit",
        ]
        help_texts = {"frequency_cap": f"K2, per guarantor and household, across SMS, email and paper: {CAP_FORM} "
                      "(empty: no cap). Staff resends are counted but allowed."}  # fmt: skip

    def clean_frequency_cap(self) -> str:
        value: str = self.cleaned_data["frequency_cap"].strip()
        return "" if value == "none" else value


def state_rules_context() -> dict[str, Any]:
    return {"rules": STATE_RULES, "version": STATE_RULES_VERSION}


@admin.register(NotificationSettings)
class SendingSettingsAdmin(OrganizationScopedAdmin[NotificationSettings]):
    """One row per organization, created with it with the defaults (21:00-08:00, no cap, every day, no hourly
    limit): billing managers change it, and nobody adds one here."""

    form = SendingSettingsForm
    view_role = Role.BILLING_MANAGER
    change_role = Role.BILLING_MANAGER
    list_display = [
        "organization",
        "quiet_hours",
        "frequency_cap_shown",
        "send_on_sundays",
        "send_on_holidays",
        "hourly_sms_limit_shown",
    ]
    list_select_related = ["organization"]
    readonly_fields = ["state_rules"]

    def get_readonly_fields(self, request: HttpRequest, obj: NotificationSettings | None = None) -> list[str]:
        return ["organization", "state_rules"] if obj is not None else ["state_rules"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row per organization, created with it (organization_settings_create, and migration 0011 for the
        # organizations before): billing managers change it, and nobody adds one here.
        return False

    @admin.display(description="quiet hours")
    def quiet_hours(self, obj: NotificationSettings) -> str:
        return f"{obj.quiet_start:%H:%M}–{obj.quiet_end:%H:%M}"

    @admin.display(description="frequency cap")
    def frequency_cap_shown(self, obj: NotificationSettings) -> str:
        return obj.frequency_cap or "none"

    @admin.display(description="hourly text limit")
    def hourly_sms_limit_shown(self, obj: NotificationSettings) -> str:
        return "no limit" if obj.hourly_sms_limit is None else f"{obj.hourly_sms_limit} texts an hour"

    @admin.display(description="state rules (K1, read-only)")
    def state_rules(self, obj: NotificationSettings | None = None) -> SafeString:
        table = render_to_string(
            "admin/notifications/notificationsettings/_state_rules.html", state_rules_context()
        )
        link = reverse("admin:notifications_notificationsettings_state_rules")
        return format_html('{}<p><a href="{}">The state rules on a page of their own</a></p>', table, link)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.state_rules_view)
        return [
            path("state-rules/", view, name="notifications_notificationsettings_state_rules"),
            *super().get_urls(),
        ]

    def state_rules_view(self, request: HttpRequest) -> TemplateResponse:
        """K1: the shipped table, read-only, for anyone who may see sending settings."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), **state_rules_context(), "opts": self.model._meta,
            "title": f"State rules (version {STATE_RULES_VERSION})",
        }  # fmt: skip
        return TemplateResponse(request, "admin/notifications/notificationsettings/state_rules.html", context)
