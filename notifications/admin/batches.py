"""Admin: paper letter batches (L1). Ops (superusers) mark batches mailed; billing managers of the
organization may look at and download their batches (T2). Files are served through admin views that check
permission and scope (T1), never through MEDIA_URL: the PDFs carry names, addresses and balances."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from notifications.letters import calibration_page
from notifications.letters.batch import letter_batch_mark_mailed
from notifications.models import BatchState, LetterBatch
from practices.models import Role
from practices.tenancy import SystemWrittenAdmin


class RenderedFilter(admin.SimpleListFilter):
    title = "files"
    parameter_name = "files"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("missing", "Not rendered (crashed or still rendering)"), ("ready", "Rendered")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "missing":
            return queryset.filter(pdf="")
        if self.value() == "ready":
            return queryset.exclude(pdf="")
        return queryset


_FIELDS = ("organization", "batch_date", "state", "letter_count", "created_at", "mailed_at", "mailed_by",
           "downloads", "calibration")  # fmt: skip


@admin.register(LetterBatch)
class LetterBatchAdmin(SystemWrittenAdmin[LetterBatch]):
    """Made by the nightly job, changed by the mark-mailed action only."""

    view_role = Role.BILLING_MANAGER
    list_display = ["batch_date", "organization", "letter_count", "state", "mailed_at", "downloads"]
    list_filter = ["state", RenderedFilter]
    list_select_related = ["organization"]
    date_hierarchy = "batch_date"
    fields = _FIELDS
    readonly_fields = _FIELDS
    actions = ["mark_mailed"]

    def has_mark_mailed_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.is_superuser

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("calibration/", wrap(self.calibration_view), name="notifications_letterbatch_calibration"),
            path("<path:object_id>/pdf/", wrap(self.pdf_view), name="notifications_letterbatch_pdf"),
            path(
                "<path:object_id>/manifest/",
                wrap(self.manifest_view),
                name="notifications_letterbatch_manifest",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="files")
    def downloads(self, obj: LetterBatch) -> str:
        if not obj.pdf:
            return "not rendered"
        return format_html(
            '<a href="{}">PDF</a> · <a href="{}">manifest (CSV)</a>',
            reverse("admin:notifications_letterbatch_pdf", args=[obj.pk]),
            reverse("admin:notifications_letterbatch_manifest", args=[obj.pk]),
        )

    @admin.display(description="envelope calibration")
    def calibration(self, obj: LetterBatch) -> str:
        return format_html(
            '<a href="{}">Calibration page (PDF)</a>', reverse("admin:notifications_letterbatch_calibration")
        )

    def pdf_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        batch = self._viewable(request, object_id)
        return _file_response(batch.pdf, "application/pdf")

    def manifest_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        batch = self._viewable(request, object_id)
        return _file_response(batch.manifest, "text/csv")

    def calibration_view(self, request: HttpRequest) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return FileResponse(
            io.BytesIO(calibration_page()),
            filename="envelope-calibration.pdf",
            content_type="application/pdf",
        )

    def _viewable(self, request: HttpRequest, object_id: str) -> LetterBatch:
        # get_object goes through the scoped queryset: another organization's batch is a 404 (T1).
        batch = self.get_object(request, object_id)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        return batch

    @admin.action(description="Mark selected batches mailed", permissions=["mark_mailed"])
    def mark_mailed(self, request: HttpRequest, queryset: QuerySet[LetterBatch]) -> TemplateResponse | None:
        batches = list(queryset.select_related("organization").order_by("batch_date", "pk"))
        if request.POST.get("post") == "yes":
            mailed = letters = 0
            for batch in batches:
                before = batch.state
                letters += letter_batch_mark_mailed(batch=batch, user=request.user)
                # The service reloads the batch only when this call mailed it.
                mailed += before != batch.state
            skipped = len(batches) - mailed
            self.message_user(
                request,
                f"Marked {mailed} batch(es) mailed and {letters} letter(s) sent."
                + (f" {skipped} batch(es) skipped: already mailed or not rendered." if skipped else ""),
                messages.SUCCESS if mailed else messages.WARNING,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Mark letter batches mailed",
            "subtitle": None,
            "opts": self.model._meta,
            "media": self.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "batches": batches,
            "ready": [b for b in batches if b.state == BatchState.RENDERED and b.pdf],
            "letter_total": sum(b.letter_count for b in batches if b.state == BatchState.RENDERED and b.pdf),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/notifications/letterbatch/mark_mailed_confirmation.html", context
        )


def _file_response(field: FieldFile, content_type: str) -> FileResponse:
    name = field.name
    if not name:
        raise Http404("This batch has not been rendered yet.")
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404("The batch file is missing from storage.") from None
    return FileResponse(
        handle, as_attachment=True, filename=name.rsplit("/", 1)[-1], content_type=content_type
    )
