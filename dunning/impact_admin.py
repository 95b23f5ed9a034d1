"""The settings impact preview in the admin (W1): a "Preview impact" button on the dunning and payment settings
change forms posts the form's unsaved values here; the page then polls the preview (htmx, no inline script:
the Content-Security-Policy) until the background task has its result, shown beside the current settings.
The result's hidden field goes back with the form, so the save's audit event keeps the preview.

``ImpactPreviewAdminMixin`` adds the two views to a settings admin; ``SettingsPreviewAdmin`` lists the
previews read-only, each with the audit event of the save it was kept with.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.forms import Media
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from dunning.impact import impact_preview_attach, impact_preview_start, proposed_values
from dunning.models import DunningSettings, PreviewKind, PreviewStatus, SettingsPreview
from practices.models import AuditEvent, Role
from practices.tenancy import OrganizationScopedAdmin, SystemWrittenAdmin, staff_user

if TYPE_CHECKING:
    _Base = OrganizationScopedAdmin[Any]
else:
    _Base = object

PREVIEW_FIELD = "_impact_preview"
# A preview still waiting after this long has no worker: the page says so (``make run`` starts one).
NO_WORKER_AFTER = timedelta(seconds=20)
HTMX = "django_htmx/htmx-2.min.js"
SCRIPT = "js/impact-preview.js"
STYLE = "css/admin-extra.css"


class ImpactPreviewAdminMixin(_Base):
    """For the admin of a settings row (``organization`` one-to-one): the preview views, the button (a read-only
    field named ``impact_preview``) and the audit hook that keeps the preview with the save."""

    impact_kind: str = PreviewKind.DUNNING

    @property
    def media(self) -> Media:
        return super().media + Media(js=[HTMX, SCRIPT], css={"all": [STYLE]})

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        # Before the ModelAdmin's own: its "<path:object_id>/" would take "<id>/impact/" as an object id.
        return [
            path("<path:object_id>/impact/", wrap(require_POST(self.impact_start_view)),
                 name="{}_{}_impact".format(*info)),
            path("<path:object_id>/impact/<int:preview_id>/", wrap(require_GET(self.impact_status_view)),
                 name="{}_{}_impact_status".format(*info)),
            *super().get_urls(),
        ]  # fmt: skip

    @admin.display(description="impact preview")
    def impact_preview(self, obj: Model | None = None) -> SafeString:
        if obj is None or obj.pk is None:
            return mark_safe("Save first; a preview compares a change with the saved settings.")
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_impact", args=[obj.pk])
        return mark_safe(render_to_string("admin/impact_preview/_widget.html", {"start_url": url}))  # noqa: S308

    # --- views ---------------------------------------------------------------------------------------------

    def _settings_row(self, request: HttpRequest, object_id: str) -> Any:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def impact_start_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST of the change form's unsaved values: validate them as the save would, then start a preview."""
        obj = self._settings_row(request, object_id)
        form = self.get_form(request, obj, change=True)(request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            errors = [
                (form.fields[name].label if name in form.fields else "", "; ".join(str(m) for m in messages))
                for name, messages in form.errors.items()
            ]
            return render_fragment(
                request, "admin/impact_preview/_errors.html", {"errors": errors}, status=200
            )
        organization = obj.organization
        values = (
            proposed_values(organization=organization, dunning=form.instance)
            if isinstance(form.instance, DunningSettings)
            else proposed_values(organization=organization, payment=form.instance)
        )
        preview = impact_preview_start(
            organization=organization, kind=self.impact_kind, proposed=values, user=staff_user(request)
        )
        if not getattr(request, "htmx", False):
            return HttpResponseRedirect(reverse("admin:dunning_settingspreview_change", args=[preview.pk]))
        return render_fragment(
            request, "admin/impact_preview/_status.html", self._status_context(obj, preview)
        )

    def impact_status_view(self, request: HttpRequest, object_id: str, preview_id: int) -> HttpResponse:
        obj = self._settings_row(request, object_id)
        preview = get_object_or_404(
            SettingsPreview, pk=preview_id, organization_id=obj.organization_id, kind=self.impact_kind
        )
        return render_fragment(
            request, "admin/impact_preview/_status.html", self._status_context(obj, preview)
        )

    def _status_context(self, obj: Model, preview: SettingsPreview) -> dict[str, Any]:
        status_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_impact_status", args=[obj.pk, preview.pk]
        )
        waiting = (
            preview.status == PreviewStatus.PENDING and timezone.now() - preview.created_at > NO_WORKER_AFTER
        )
        return {"preview": preview, "status_url": status_url, "field": PREVIEW_FIELD, "no_worker": waiting,
                **result_context(preview)}  # fmt: skip

    # --- kept with the save --------------------------------------------------------------------------------

    def audit_written(self, request: HttpRequest, obj: Any, form: Any, event: AuditEvent) -> None:
        super().audit_written(request, obj, form, event)
        if PREVIEW_FIELD not in request.POST:
            return
        organization = obj.organization
        saved = (
            proposed_values(organization=organization, dunning=obj)
            if isinstance(obj, DunningSettings)
            else proposed_values(organization=organization, payment=obj)
        )
        impact_preview_attach(
            preview_id=request.POST[PREVIEW_FIELD], organization_id=organization.pk, kind=self.impact_kind,
            saved=saved, event=event,
        )  # fmt: skip


def render_fragment(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    return HttpResponse(render_to_string(template, context, request=request), status=status)


_ROWS = [
    ("Messages", "messages"),
    ("Text messages", "sms"),
    ("Emails", "email"),
    ("Paper letters", "paper"),
]


def result_context(preview: SettingsPreview) -> dict[str, Any]:
    """The side-by-side figures of a finished preview, ready for the template."""
    result = preview.result
    if preview.status != PreviewStatus.DONE or not result:
        return {}
    now, then = result["current"], result["proposed"]
    rows = []
    for label, key in _ROWS:
        a = now["messages"] if key == "messages" else now["totals"][key]
        b = then["messages"] if key == "messages" else then["totals"][key]
        rows.append({"label": label, "current": f"{a:,}", "proposed": f"{b:,}", "change": _delta(b - a)})
    rows.append({"label": "Paper cost", "current": f"${now['paper_cost']}", "proposed": f"${then['paper_cost']}",
                 "change": _money_delta(now["paper_cost"], then["paper_cost"])})  # fmt: skip
    rows.append({"label": "Bills finishing their schedule", "current": f"{now['bills_completed']:,}",
                 "proposed": f"{then['bills_completed']:,}", "change": _delta(then["bills_completed"] - now["bills_completed"])})  # fmt: skip
    bulk = result["bulk_list"]
    rows.append({"label": f"Bulk payment request list on {bulk['on']}", "current": f"{bulk['current']:,}",
                 "proposed": f"{bulk['proposed']:,}", "change": _delta(bulk["proposed"] - bulk["current"])})  # fmt: skip
    resets = result["resets"]
    if resets.get("replayed"):
        rows.append({"label": f"Bills reset by the imports since {resets['since']}", "current": f"{resets['current']:,}",
                     "proposed": f"{resets['proposed']:,}", "change": _delta(resets["proposed"] - resets["current"])})  # fmt: skip
    days = [
        {"date": a["date"], "current": a, "proposed": b}
        for a, b in zip(now["per_day"], then["per_day"], strict=True)
    ]
    changed = [
        {"label": c["label"], "current": _show(c["current"]), "proposed": _show(c["proposed"])}
        for c in result["changed"]
    ]
    return {
        "result": result,
        "rows": rows,
        "per_day": days,
        "bulk": bulk,
        "resets": resets,
        "changed": changed,
    }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _delta(value: int) -> str:
    return "—" if value == 0 else f"{value:+,}"


def _money_delta(a: str, b: str) -> str:
    value = Decimal(b) - Decimal(a)
    return "—" if value == 0 else f"{'+' if value > 0 else '−'}${abs(value):,.2f}"


@admin.register(SettingsPreview)
class SettingsPreviewAdmin(SystemWrittenAdmin[SettingsPreview]):
    """Read-only: previews are made from the settings change forms and computed by their task."""

    view_role = Role.BILLING_MANAGER
    list_display = ["created_at", "organization", "kind", "requested_by", "status", "progress", "saved_with"]
    list_filter = ["kind", "status"]
    list_select_related = ["organization", "requested_by", "audit_event"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ["organization", "kind", "requested_by", "created_at", "start_date", "days", "status", "progress",
              "stage", "finished_at", "saved_with", "figures", "error"]  # fmt: skip
    readonly_fields = ["organization", "kind", "requested_by", "created_at", "start_date", "days", "status",
                       "progress", "stage", "finished_at", "saved_with", "figures", "error"]  # fmt: skip

    class Media:
        css = {"all": [STYLE]}

    @admin.display(description="kept with the save")
    def saved_with(self, obj: SettingsPreview) -> str:
        if obj.audit_event_id is None:
            return "—"
        url = reverse("admin:practices_auditevent_change", args=[obj.audit_event_id])
        return format_html('<a href="{}">Audit event {}</a>', url, obj.audit_event_id)

    @admin.display(description="result")
    def figures(self, obj: SettingsPreview) -> SafeString:
        context = {"preview": obj, "field": None, **result_context(obj)}
        return mark_safe(render_to_string("admin/impact_preview/_result.html", context))  # noqa: S308

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        if isinstance(response, TemplateResponse):
            response.context_data = {**(response.context_data or {}), "title": "Settings impact preview"}
        return response
