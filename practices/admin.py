"""Operator admin for the practices app; every queryset is limited to the user's organizations (T1)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Field, Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from practices.models import (
    Account,
    ApiToken,
    AuditEvent,
    Bill,
    FeedImport,
    Membership,
    Organization,
    Patient,
    Role,
)
from practices.org_settings import REGISTRY, setting_text
from practices.services import api_token_issue, api_token_revoke, organization_settings_create
from practices.tenancy import OrganizationScopedAdmin

_ModelT = TypeVar("_ModelT", bound=Model)


class ReadOnlyMirrorAdmin(OrganizationScopedAdmin[_ModelT]):
    """PMS data is changed in the PMS and arrives by feed; the admin only shows it."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The settings rows of other apps, by their reverse one-to-one names; linked by URL name so that practices
# imports nothing from them (like the bill's trail below).
_SETTINGS_LINKS = [
    ("dunning_settings", "admin:dunning_dunningsettings_change", "Dunning settings"),
    ("payment_settings", "admin:payments_paymentsettings_change", "Payment settings"),
    ("notification_settings", "admin:notifications_notificationsettings_change", "Sending settings"),
]


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin[Organization]):
    organization_path = "self"
    view_role = Role.BILLING_MANAGER
    change_role = Role.ORG_ADMIN
    list_display = ["name", "slug", "timezone", "last_feed_generated_at", "settings"]
    search_fields = ["name", "slug"]
    readonly_fields = ["settings", "last_feed_generated_at", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return super().get_queryset(request).select_related(*(name for name, _, _ in _SETTINGS_LINKS))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            fields.append("slug")
        return fields

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            organization_settings_create(organization=obj)

    @admin.display(description="settings")
    def settings(self, obj: Organization | None = None) -> str:
        """Links to the organization's dunning and payment settings (each row is made with the organization)."""
        if obj is None or obj.pk is None:
            return "Created with the organization."
        links = []
        for name, url_name, label in _SETTINGS_LINKS:
            try:
                row = getattr(obj, name)
            except ObjectDoesNotExist:
                continue
            links.append((reverse(url_name, args=[row.pk]), label))
        if not links:
            return "—"
        return format_html_join(" · ", '<a href="{}">{}</a>', links)


class MembershipForm(forms.ModelForm):
    username = forms.CharField(help_text="The login of an existing staff user.")

    class Meta:
        model = Membership
        fields = ["organization", "role"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.get_username()
            self.fields["username"].disabled = True

    def clean_username(self) -> Any:
        if self.instance.pk:
            return self.instance.user.get_username()
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active user with that login.")
        self.instance.user = user
        return username


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin[Membership]):
    form = MembershipForm
    view_role = Role.ORG_ADMIN
    add_role = Role.ORG_ADMIN
    change_role = Role.ORG_ADMIN
    delete_role = Role.ORG_ADMIN
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__email"]


class AccountInline(admin.StackedInline):
    model = Account
    can_delete = False
    extra = 0
    readonly_fields = [
        "bucket_0_30", "bucket_31_60", "bucket_61_90", "bucket_over_90", "insurance_estimate", "total",
        "patient_portion", "aging_category", "as_of",
    ]  # fmt: skip
    exclude = ["organization"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GuarantorFilter(admin.SimpleListFilter):
    title = "role in family"
    parameter_name = "family_role"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("guarantor", "Guarantors"), ("dependent", "Dependents")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "guarantor":
            return queryset.filter(is_guarantor=True)
        if self.value() == "dependent":
            return queryset.filter(is_guarantor=False)
        return queryset


@admin.register(Patient)
class PatientAdmin(ReadOnlyMirrorAdmin[Patient]):
    list_display = ["external_id", "last_name", "first_name", "guarantor_external_id", "organization",
                    "address_status", "last_visit_date", "on_payment_plan", "do_not_contact"]  # fmt: skip
    list_filter = [GuarantorFilter, "address_status", "on_payment_plan", "do_not_contact", "timezone_source"]
    list_select_related = ["organization"]
    search_fields = ["external_id", "last_name", "first_name", "email", "mobile_phone"]
    inlines = [AccountInline]
    show_full_result_count = False


@admin.register(Account)
class AccountAdmin(ReadOnlyMirrorAdmin[Account]):
    list_display = [
        "guarantor",
        "organization",
        "total",
        "insurance_estimate",
        "patient_portion",
        "aging_category",
    ]
    list_filter = ["aging_category"]
    list_select_related = ["guarantor", "organization"]
    search_fields = ["guarantor__external_id", "guarantor__last_name"]
    show_full_result_count = False


@admin.register(Bill)
class BillAdmin(ReadOnlyMirrorAdmin[Bill]):
    list_display = ["bill_id", "guarantor", "organization", "source", "amount_due", "statement_date",
                    "effective_created_date", "generation", "dunning_status", "state", "next_dunning_date", "trail"]  # fmt: skip
    list_filter = ["state", "source", "dunning_status"]
    list_select_related = ["guarantor", "organization"]
    search_fields = ["bill_id", "guarantor__external_id", "guarantor__last_name"]
    show_full_result_count = False

    @admin.display(description="trail")
    def trail(self, obj: Bill) -> str:
        # The dunning app shows the trail (D12); linking by URL keeps practices free of dunning imports.
        return format_html(
            '<a href="/admin/dunning/dunningdecision/?bill__id__exact={}">decisions</a>', obj.pk
        )


@admin.register(FeedImport)
class FeedImportAdmin(ReadOnlyMirrorAdmin[FeedImport]):
    view_role = Role.BILLING_MANAGER
    list_display = ["id", "organization", "source", "received_at", "generated_at", "status", "applied_count",
                    "rejected_count", "duration_ms"]  # fmt: skip
    list_filter = ["status", "source"]
    list_select_related = ["organization"]
    exclude = ["raw"]
    readonly_fields = ["error_list", "warning_list"]

    @admin.display(description="errors")
    def error_list(self, obj: FeedImport) -> str:
        return _problem_table(obj.errors)

    @admin.display(description="warnings")
    def warning_list(self, obj: FeedImport) -> str:
        return _problem_table(obj.warnings)


def _problem_table(problems: list[dict[str, str]]) -> str:
    if not problems:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td>{}</td></tr>",
        ((p.get("pointer", ""), p.get("message", "")) for p in problems[:500]),
    )
    more = format_html("<p>… and {} more</p>", len(problems) - 500) if len(problems) > 500 else ""
    return format_html("<table>{}</table>{}", rows, more)


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["organization", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(OrganizationScopedAdmin[ApiToken]):
    form = ApiTokenForm
    view_role = Role.ORG_ADMIN
    add_role = Role.ORG_ADMIN
    list_display = ["name", "prefix", "organization", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["organization"]
    actions = ["revoke"]
    audited = False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        token, plaintext = api_token_issue(
            organization=form.cleaned_data["organization"],
            name=form.cleaned_data["name"],
            created_by=request.user,
        )
        obj.pk = token.pk
        messages.warning(
            request, f"Token for {token.organization}: {plaintext} — copy it now; it is not shown again."
        )

    @admin.action(description="Revoke selected tokens", permissions=["view"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for token in queryset.select_related("organization"):
            if self.has_add_permission(request):
                api_token_revoke(token=token, actor=request.user)
                count += 1
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMirrorAdmin[AuditEvent]):
    view_role = Role.BILLING_MANAGER
    list_display = [
        "created_at",
        "organization",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "change_lines",
    ]
    list_filter = ["action"]
    list_select_related = ["organization"]
    search_fields = ["actor_label", "action", "object_id"]
    fields = ["created_at", "organization", "actor", "actor_label", "action", "object_type", "object_id",
              "change_lines"]  # fmt: skip
    readonly_fields = ["created_at", "change_lines"]

    @admin.display(description="changes")
    def change_lines(self, obj: AuditEvent) -> str:
        """One line per field, "label: old → new" (T5), rather than the stored JSON."""
        lines = audit_change_lines(obj)
        if not lines:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))


def audit_change_lines(event: AuditEvent) -> list[str]:
    """The event's changes as "label: old → new" lines, each field by its label in the admin (its form's
    label, else the model field's name), each value as its admin or ``org_settings`` shows it."""
    labels = _setting_labels() if event.action == "settings.change" else _field_labels(event.object_type)
    lines = []
    for name, value in (event.changes or {}).items():
        label = labels.get(name, name)
        if isinstance(value, list) and len(value) == 2:
            old, new = (_change_text(event, name, item) for item in value)
            lines.append(f"{label}: {old} → {new}")
        else:
            lines.append(f"{label}: {_change_text(event, name, value)}")
    return lines


def _change_text(event: AuditEvent, name: str, value: Any) -> str:
    key = REGISTRY.get(name) if event.action == "settings.change" else None
    # A setting as org_settings prints it (the form --set takes); anything else as it was recorded.
    text = key.show(value) if key is not None else ("" if value is None else setting_text(value))
    return text or "—"


@lru_cache(maxsize=64)
def _field_labels(object_type: str) -> dict[str, str]:
    """The labels a person saw for the fields of ``object_type`` ("app.Model"): its admin form's, else the
    model's verbose names."""
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return {}
    labels = {
        field.name: capfirst(str(field.verbose_name))
        for field in model._meta.get_fields()
        if isinstance(field, Field)
    }
    model_admin = admin.site.get_model_admin(model) if admin.site.is_registered(model) else None
    form_class = getattr(model_admin, "form", None)
    if form_class is not None and getattr(getattr(form_class, "_meta", None), "model", None) is model:
        labels.update({name: str(field.label) for name, field in form_class().fields.items() if field.label})
    return labels


@lru_cache(maxsize=1)
def _setting_labels() -> dict[str, str]:
    # org_settings keys are named after the fields of the organization and of its settings rows (one-to-one).
    labels: dict[str, str] = {}
    for relation in Organization._meta.related_objects:
        if relation.one_to_one and isinstance(relation.related_model, type):
            labels.update(_field_labels(relation.related_model._meta.label))
    labels.update(_field_labels(Organization._meta.label))
    return labels
