"""Admin: message templates (N4). Billing managers edit their organizations' templates (T2); the system
defaults are shown to them read-only and are changed by ops (superusers) or by a migration."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from notifications.models import Channel, Template
from notifications.templating import OPT_OUT_HINT, PLACEHOLDERS, TemplateError, template_preview, validate
from practices.models import Organization, Role
from practices.tenancy import OrganizationScopedAdmin, organization_ids_for, scope_to_user


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ["organization", "kind", "channel", "name", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12, "cols": 90})}

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        channel, body = cleaned.get("channel"), cleaned.get("body")
        if channel and body:
            try:
                validate(channel=channel, body=body, subject=cleaned.get("subject") or "")
            except TemplateError as exc:
                self.add_error(exc.field, str(exc))
        return cleaned


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("system", "System defaults"), ("organization", "Organization templates")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "system":
            return queryset.filter(organization__isnull=True)
        if self.value() == "organization":
            return queryset.filter(organization__isnull=False)
        return queryset


@admin.register(Template)
class TemplateAdmin(OrganizationScopedAdmin[Template]):
    form = TemplateForm
    view_role = Role.BILLING_MANAGER
    add_role = Role.BILLING_MANAGER
    change_role = Role.BILLING_MANAGER
    delete_role = Role.BILLING_MANAGER
    list_display = ["kind", "channel", "owner", "name", "updated_at"]
    list_display_links = ["kind", "name"]
    list_filter = ["kind", "channel", OwnerFilter]
    list_select_related = ["organization"]
    search_fields = ["name"]
    readonly_fields = ["placeholders"]
    fieldsets = [
        (None, {"fields": ["organization", "kind", "channel", "name", "subject", "body", "placeholders"]}),
    ]
    # The preview (saved version) follows the fieldsets: admin/notifications/template/change_form.html.
    change_form_template = "admin/notifications/template/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Template]:
        # System defaults (organization NULL) serve every organization; scope_to_user alone would hide them.
        queryset = super(OrganizationScopedAdmin, self).get_queryset(request)
        ids = organization_ids_for(request.user, min_role=self.view_role)
        if ids is None:
            return queryset
        return queryset.filter(Q(organization__in=ids) | Q(organization__isnull=True))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.organization_id is None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.organization_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "organization" and not request.user.is_superuser:
            # Only ops add system defaults; a member adds templates where they are a billing manager.
            kwargs["required"] = True
            kwargs["queryset"] = scope_to_user(
                Organization.objects.all(), request.user, path="self", min_role=self.add_role
            )
            return db_field.formfield(**kwargs)
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "organization" and field is not None:
            field.empty_label = "System default (all organizations)"
        return field

    @admin.display(description="organization", ordering="organization__name")
    def owner(self, obj: Template) -> str:
        return "System default" if obj.organization is None else obj.organization.name

    @admin.display(description="placeholders")
    def placeholders(self, obj: Template | None = None) -> str:
        rows = format_html_join(
            "",
            "<li><code>{{{{ {} }}}}</code> — {}</li>",
            ((name, text) for name, text in PLACEHOLDERS.items()),
        )
        return format_html(
            "<ul>{}</ul><p>Text messages must include “{}” and may not use the last name or the statement "
            "date. An email needs a subject.</p>",
            rows,
            OPT_OUT_HINT,
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {}), **self._preview_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="{}_{}_preview".format(*info),
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The template rendered with a sample patient at the practice's own values; linked from the dunning
        schedule (S1) with the organization of the settings it was opened from."""
        obj = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **self._preview_context(request, obj),
            "opts": self.opts,
            "title": f"Preview: {obj}",
            "original": obj,
        }
        return TemplateResponse(request, "admin/notifications/template_preview.html", context)

    def _preview_context(self, request: HttpRequest, obj: Template) -> dict[str, Any]:
        organization, choices = preview_organization(request, obj)
        result = template_preview(template=obj, organization=organization)
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_preview", args=[obj.pk])
        return {
            "preview": result,
            "preview_organization": organization,
            "preview_choices": choices,
            "preview_url": url,
            "sms_summary": _sms_summary(result.length, result.encoding, result.segments)
            if obj.channel == Channel.SMS
            else "",
        }


def preview_organization(
    request: HttpRequest, template: Template
) -> tuple[Organization | None, list[Organization]]:
    """Whose values a preview shows, and the organizations it could show instead.

    An organization's template: its own. A system default: the organization asked for (``?organization=``,
    among the user's), else the user's first organization by name (a member of one organization always sees
    their practice). None only when the user has no organization at all (a sample practice then)."""
    if template.organization is not None:
        return template.organization, []
    choices = list(
        scope_to_user(Organization.objects.order_by("name", "pk"), request.user, path="self",
                      min_role=Role.BILLING_MANAGER)
    )  # fmt: skip
    raw = request.GET.get("organization", "")
    chosen = next((org for org in choices if raw.isdigit() and org.pk == int(raw)), None)
    return chosen or (choices[0] if choices else None), choices


def _sms_summary(length: int, encoding: str, segments: int) -> str:
    unit = "characters" if encoding == "GSM-7" else "UTF-16 units"
    return f"{length} {unit}, {encoding}, {segments} segment{'' if segments == 1 else 's'}"
