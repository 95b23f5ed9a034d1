"""Admin: the consent ledger (K3) with its organization-wide CSV export for billing managers, and the replies
review items (K4), both read-only: the product writes them (the webhooks, imports, staff decisions on the queue)
and the proof must stay as it was written."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from notifications.consent import (
    actor_label,
    event_label,
    ledger_csv_lines,
    ledger_export_audit,
    organization_ledger,
)
from notifications.models import InboundReview, OptOutEvent
from practices.models import Organization, Role
from practices.phones import phone_masked
from practices.tenancy import SystemWrittenAdmin, scope_to_user

_LEDGER_FIELDS = ("organization", "channel", "address", "event", "source", "keyword", "text", "at", "actor_shown",
                  "patient", "opt_out")  # fmt: skip


def ledger_organizations(user: Any) -> QuerySet[Organization]:
    """The organizations whose whole ledger ``user`` may export: billing manager or above there (T1, T2)."""
    return scope_to_user(
        Organization.objects.order_by("name"), user, path="self", min_role=Role.BILLING_MANAGER
    )


@admin.register(OptOutEvent)
class ConsentLedgerAdmin(SystemWrittenAdmin[OptOutEvent]):
    """Every grant and revocation, newest first, with an export per organization of all its rows (oldest
    first, as proof: UTC and local time, formula-like text neutralised as in the guarantor's CSV)."""

    view_role = Role.BILLING_MANAGER
    list_display = [
        "at",
        "organization",
        "channel",
        "address",
        "event",
        "source",
        "actor_shown",
        "text_start",
    ]
    list_filter = ["channel", "active", "source"]
    list_select_related = ["organization", "actor"]
    search_fields = ["address", "patient__external_id"]
    date_hierarchy = "at"
    show_full_result_count = False
    ordering = ["-at", "-pk"]
    fields = _LEDGER_FIELDS
    readonly_fields = _LEDGER_FIELDS
    change_list_template = "admin/notifications/optoutevent/change_list.html"

    @admin.display(description="event")
    def event(self, obj: OptOutEvent) -> str:
        return event_label(obj)

    @admin.display(description="actor")
    def actor_shown(self, obj: OptOutEvent) -> str:
        return actor_label(obj)

    @admin.display(description="text")
    def text_start(self, obj: OptOutEvent) -> str:
        return obj.text if len(obj.text) <= 60 else f"{obj.text[:59]}…"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.export_view)
        return [
            path("export/<slug:org>/", view, name="notifications_optoutevent_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        exports = [
            (organization, reverse("admin:notifications_optoutevent_export", args=[organization.slug]))
            for organization in ledger_organizations(request.user)
        ]
        context = {"title": "Consent ledger", **(extra_context or {}), "ledger_exports": exports}
        return super().changelist_view(request, context)

    def export_view(self, request: HttpRequest, org: str) -> StreamingHttpResponse | TemplateResponse:
        """K3: one organization's whole ledger as CSV; another organization's slug answers 404 (T1)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        organization = ledger_organizations(request.user).filter(slug=org).first()
        if organization is None:
            raise Http404
        ledger_export_audit(organization=organization, actor=request.user)
        events = organization_ledger(organization=organization).iterator(chunk_size=2000)
        response = StreamingHttpResponse(
            ledger_csv_lines(events=events, organization=organization), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.localdate(timezone.now(), organization.tzinfo).isoformat()
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"consent-ledger-{organization.slug}-{stamp}.csv")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


_REVIEW_FIELDS = ("organization", "number_shown", "patients_shown", "text", "received_at", "state", "rule", "language", "decided_by",
                  "decided_at", "confirmation", "confirmation_sid", "confirmation_error", "message_sid")  # fmt: skip


@admin.register(InboundReview)
class InboundReviewAdmin(SystemWrittenAdmin[InboundReview]):
    """The replies review items, read-only: staff decide them on the queue (/dashboard/replies/<org>/), where
    the decision is audited and the one confirmation is sent; here they are looked up."""

    view_role = Role.FRONT_DESK
    list_display = ["received_at", "organization", "number_shown", "text_start", "state", "rule", "language",
                    "decided_by", "confirmation"]  # fmt: skip
    list_filter = ["state", "confirmation", "language"]
    list_select_related = ["organization", "decided_by"]
    # Found by the whole number, shown as the queue shows it (T4: the last four digits).
    search_fields = ["=number", "text"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    ordering = ["-received_at", "-pk"]
    fields = _REVIEW_FIELDS
    readonly_fields = _REVIEW_FIELDS

    @admin.display(description="text")
    def text_start(self, obj: InboundReview) -> str:
        return obj.text if len(obj.text) <= 60 else f"{obj.text[:59]}…"

    @admin.display(description="from")
    def number_shown(self, obj: InboundReview) -> str:
        return phone_masked(obj.number)

    @admin.display(description="patients at this number")
    def patients_shown(self, obj: InboundReview) -> str:
        return ", ".join(patient.full_name for patient in obj.patients.all()) or "none on file"
