"""Admin: template translations (§13.2). A translation stands in for its template for the patients of its
language; billing managers translate their organizations' templates and the system defaults, which come with
Spanish translations of their own (read-only to them, as the system defaults are)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from notifications.models import Channel, Template, TemplateTranslation
from notifications.templating import TemplateError, render_message, sample_values, sms_segments, validate
from practices.models import Organization, Role
from practices.tenancy import OrganizationScopedAdmin, organization_ids_for, scope_to_user


class TemplateTranslationForm(forms.ModelForm):
    class Meta:
        model = TemplateTranslation
        fields = ["template", "organization", "language", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12, "cols": 90})}

    def clean_language(self) -> str:
        language: str = self.cleaned_data["language"].strip().lower()
        if len(language) != 2 or not language.isalpha():
            raise forms.ValidationError("Use the ISO 639-1 code of the language, e.g. es.")
        return language

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        template: Template | None = cleaned.get("template")
        organization: Organization | None = cleaned.get("organization")
        if template is None:
            return cleaned
        if template.organization_id is not None and template.organization_id != getattr(
            organization, "pk", None
        ):
            self.add_error("template", "An organization's template is translated by that organization.")
        if cleaned.get("language") == template.language:
            self.add_error("language", f"The template is already in {template.language}.")
        body = cleaned.get("body")
        if body:
            try:
                validate(channel=template.channel, body=body, subject=cleaned.get("subject") or "")
            except TemplateError as exc:
                self.add_error(exc.field, str(exc))
        return cleaned


@admin.register(TemplateTranslation)
class TemplateTranslationAdmin(OrganizationScopedAdmin[TemplateTranslation]):
    form = TemplateTranslationForm
    view_role = Role.BILLING_MANAGER
    add_role = Role.BILLING_MANAGER
    change_role = Role.BILLING_MANAGER
    delete_role = Role.BILLING_MANAGER
    list_display = ["template", "language", "owner", "updated_at"]
    list_filter = ["language", "template__kind", "template__channel"]
    list_select_related = ["template", "organization"]
    autocomplete_fields = ["template"]
    readonly_fields = ["preview"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TemplateTranslation]:
        # The system's translations (organization NULL) serve every organization, like the system defaults.
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
            kwargs["required"] = True
            kwargs["queryset"] = scope_to_user(
                Organization.objects.all(), request.user, path="self", min_role=self.add_role
            )
            return db_field.formfield(**kwargs)
        if db_field.name == "template" and not request.user.is_superuser:
            ids = organization_ids_for(request.user, min_role=self.add_role) or []
            kwargs["queryset"] = Template.objects.filter(
                Q(organization__in=ids) | Q(organization__isnull=True)
            )
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "organization" and field is not None:
            field.empty_label = "System (all organizations)"
        return field

    @admin.display(description="organization", ordering="organization__name")
    def owner(self, obj: TemplateTranslation) -> str:
        return "System" if obj.organization is None else obj.organization.name

    @admin.display(description="preview")
    def preview(self, obj: TemplateTranslation | None = None) -> str:
        if obj is None or obj.pk is None:
            return "Save to see the translation with sample values."
        template = obj.as_template()
        subject, body = render_message(
            template=template, values=sample_values(obj.organization, language=obj.language)
        )
        extra = ""
        if template.channel == Channel.SMS:
            encoding, length, segments = sms_segments(body)
            extra = f"{length} units, {encoding}, {segments} segment{'' if segments == 1 else 's'}"
        return format_html("<p><strong>{}</strong></p><pre>{}</pre><p>{}</p>", subject, body, extra)
