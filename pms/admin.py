"""Admin of the PMS connections and of the payments posted back (T1-scoped; keys shown only as set/unset)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from pms.connections import (
    PmsConfigError,
    connection_set_pms,
    key_state,
    parse_base_url,
    parse_key,
    stored_key,
)
from pms.models import Connection, PaymentPost
from practices.models import Role
from practices.tenancy import OrganizationScopedAdmin, SystemWrittenAdmin

KEY_FIELDS = {"developer_key": "developer_key_encrypted", "customer_key": "customer_key_encrypted"}


class ConnectionForm(forms.ModelForm[Connection]):
    """The keys are write-only: typed into a password box that never shows them back. The cleaned value of
    a key field is ``set`` / ``unset``, never the key, so the admin's audit of the change cannot leak it."""

    developer_key = forms.CharField(
        required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored key; type unset to remove it.",
    )  # fmt: skip
    customer_key = forms.CharField(
        required=False, strip=True, widget=forms.PasswordInput(render_value=False),
        help_text="The office's customer key (Open Dental: Setup > Advanced Setup > API).",
    )  # fmt: skip

    class Meta:
        model = Connection
        fields = ["organization", "pms", "base_url", "sync_time", "no_contact_billing_types"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tokens: dict[str, str] = {}
        for name, column in KEY_FIELDS.items():
            self.initial[name] = key_state(getattr(self.instance, column, ""))

    def has_changed(self) -> bool:
        return super().has_changed() or bool(self._tokens)

    def _clean_key(self, name: str) -> str:
        raw = self.cleaned_data.get(name) or ""
        column = KEY_FIELDS[name]
        current = getattr(self.instance, column, "")
        if not raw:
            return key_state(current)  # unchanged
        try:
            token = stored_key(current, parse_key(raw), name=name)
        except PmsConfigError as exc:
            raise forms.ValidationError(str(exc)) from None
        self._tokens[column] = token
        return key_state(token) + (" (new key)" if token and token != current else "")

    def clean_developer_key(self) -> str:
        return self._clean_key("developer_key")

    def clean_customer_key(self) -> str:
        return self._clean_key("customer_key")

    def clean_base_url(self) -> str:
        try:
            return parse_base_url(self.cleaned_data.get("base_url") or "")
        except PmsConfigError as exc:
            raise forms.ValidationError(str(exc)) from None

    @property
    def changed_data(self) -> list[str]:
        changed = [name for name in super().changed_data if name not in KEY_FIELDS]
        return changed + [name for name, column in KEY_FIELDS.items() if column in self._tokens]

    def save(self, commit: bool = True) -> Connection:
        connection = super().save(commit=False)
        for column, token in self._tokens.items():
            setattr(connection, column, token)
        connection_set_pms(connection, connection.pms)
        if commit:
            connection.save()
        return connection


@admin.register(Connection)
class ConnectionAdmin(OrganizationScopedAdmin[Connection]):
    form = ConnectionForm
    view_role = Role.BILLING_MANAGER
    add_role = Role.ORG_ADMIN
    change_role = Role.ORG_ADMIN
    list_display = ["organization", "pms", "sync_time", "keys", "last_sync_at", "last_sync_status"]
    list_select_related = ["organization"]
    list_filter = ["pms", "last_sync_status"]
    search_fields = ["organization__name", "organization__slug"]
    autocomplete_fields = ["organization"]
    readonly_fields = [
        "keys", "posting_starts_at", "change_stamp", "last_full_sync_at", "last_sync_at", "last_sync_status",
        "last_sync_reason", "last_sync_feed",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["organization", "pms", "base_url", "sync_time", "no_contact_billing_types"]}),
        ("Keys", {"fields": ["developer_key", "customer_key", "keys"]}),
        ("Last sync", {"fields": ["last_sync_at", "last_sync_status", "last_sync_reason", "last_sync_feed",
                                  "last_full_sync_at", "change_stamp", "posting_starts_at"]}),
    ]  # fmt: skip

    @admin.display(description="keys")
    def keys(self, obj: Connection | None) -> str:
        if obj is None:
            return "developer key unset, customer key unset"
        return (
            f"developer key {key_state(obj.developer_key_encrypted)}, "
            f"customer key {key_state(obj.customer_key_encrypted)}"
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields


@admin.register(PaymentPost)
class PaymentPostAdmin(SystemWrittenAdmin[PaymentPost]):
    view_role = Role.BILLING_MANAGER
    list_display = [
        "payment",
        "organization",
        "state",
        "reference",
        "pms_payment_id",
        "attempts",
        "posted_at",
    ]
    list_select_related = ["organization", "payment"]
    list_filter = ["state"]
    search_fields = ["reference", "pms_payment_id"]
    readonly_fields = [
        "organization", "payment", "reference", "state", "attempts", "first_attempt_at", "pms_payment_id",
        "posted_at", "last_error", "claimed_until", "created_at",
    ]  # fmt: skip
