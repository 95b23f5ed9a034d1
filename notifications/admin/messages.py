"""Admin: the outbox and opt-outs — read-only operator views with domain filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from notifications.models import Message, NumberLookup, OptOut, Reason, State
from notifications.outbox import STALE_SENDING_AFTER
from notifications.paylinks import masked
from notifications.selectors import undeliverable_filter
from practices.models import Role
from practices.tenancy import OrganizationScopedAdmin


class ProblemFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "problem"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("undeliverable", "Undeliverable (the front desk's list)"),
            ("carrier_filtered", "Carrier filtered (review the content or the sender's registration)"),
            ("stuck", "Stuck in sending"),
            ("unknown", "Unknown (review before resending)"),
            ("held", "Held by quiet hours"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "undeliverable":
            return undeliverable_filter(queryset)
        if value == "carrier_filtered":
            # Twilio 30007 (N2): failed, and off the undeliverable list because a new number would not help.
            return queryset.filter(state=State.FAILED, reason=Reason.CARRIER_FILTERED)
        if value == "stuck":
            return queryset.filter(
                state=State.SENDING, sending_started_at__lt=timezone.now() - STALE_SENDING_AFTER
            )
        if value == "unknown":
            return queryset.filter(state=State.UNKNOWN)
        if value == "held":
            return queryset.filter(
                state=State.SCHEDULED, scheduled_for__gt=timezone.now() - timedelta(minutes=5)
            )
        return queryset


@admin.register(Message)
class MessageAdmin(OrganizationScopedAdmin[Message]):
    view_role = Role.FRONT_DESK
    list_display = ["id", "created_at", "organization", "patient", "kind", "channel", "state", "reason",
                    "scheduled_for", "provider_id", "error_code"]  # fmt: skip
    list_filter = [ProblemFilter, "state", "channel", "kind"]
    list_select_related = ["organization", "patient"]
    search_fields = ["provider_id", "patient__external_id", "patient__last_name", "bill__bill_id"]
    raw_id_fields = ["patient", "bill", "resend_of", "batch", "template"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    # The stored text holds no token (T4); the link's place is shown masked, never its reference.
    exclude = ["body", "context"]
    readonly_fields = ["text", "values"]

    @admin.display(description="body")
    def text(self, obj: Message) -> str:
        return masked(obj.body)

    @admin.display(description="values")
    def values(self, obj: Message) -> str:
        shown = {key: masked(str(value)) for key, value in (obj.context or {}).items() if key != "pay_ref"}
        return ", ".join(f"{key}: {value}" for key, value in sorted(shown.items()))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OptOut)
class OptOutAdmin(OrganizationScopedAdmin[OptOut]):
    view_role = Role.BILLING_MANAGER
    list_display = ["address", "channel", "active", "source", "keyword", "changed_at", "organization"]
    list_filter = ["channel", "active", "source"]
    list_select_related = ["organization"]
    search_fields = ["address"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NumberLookup)
class NumberLookupAdmin(OrganizationScopedAdmin[NumberLookup]):
    """K5: what Twilio Lookup said of each quick-added number. Read-only; a billing manager may delete an
    answer that went stale (a landline ported to a mobile), and the next quick-add of the number asks again."""

    view_role = Role.BILLING_MANAGER
    delete_role = Role.BILLING_MANAGER
    list_display = ["number", "line_type", "carrier_name", "error_code", "checked_at", "organization"]
    list_filter = ["line_type"]
    list_select_related = ["organization"]
    search_fields = ["number"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
