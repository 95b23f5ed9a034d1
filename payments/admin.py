"""Admin of the payments app: payment settings (billing managers, T2), snoozes and payment requests (read-only),
payments with their refunds and the ones to review (H2, H3), payment plans with their installments (H5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from dunning.impact_admin import ImpactPreviewAdminMixin
from dunning.models import PreviewKind
from payments.models import (
    ALL_AGING,
    PLAN_OPEN_STATES,
    SNOOZE_REASON_MAX_LENGTH,
    Installment,
    Payment,
    PaymentKind,
    PaymentPlan,
    PaymentRequest,
    PaymentSettings,
    PaymentStatus,
    Snooze,
)
from payments.plans import PlanRefused, plan_cancel
from payments.refunds import RefundRefused, RefundUnavailable, payment_refund, refund_left
from payments.settings_keys import PLAN_MAX_MONTHS_LIMIT, REQUEST_CHANNELS
from practices.models import AgingCategory, Role
from practices.services import audit_record
from practices.tenancy import OrganizationScopedAdmin, user_has_role


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
            "snooze_reasons", "link_lifetime_days", "plan_max_months", "plan_min_installment",
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

    def clean_plan_max_months(self) -> int:
        value = self.cleaned_data["plan_max_months"]
        if value > PLAN_MAX_MONTHS_LIMIT:
            raise forms.ValidationError(f"At most {PLAN_MAX_MONTHS_LIMIT} months.")
        return value

    def clean_plan_min_installment(self) -> Decimal:
        value = self.cleaned_data["plan_min_installment"]
        if value <= 0:
            raise forms.ValidationError("The smallest installment must be more than zero.")
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


class ReviewFilter(admin.SimpleListFilter):
    """H2, H3: money that moved in a way staff must look at (paid after the link ended, overpaid, disputed)."""

    title = "review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("to_review", "To review"), ("reviewed", "Reviewed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        flagged = queryset.exclude(needs_review="")
        if self.value() == "to_review":
            return flagged.filter(reviewed_at__isnull=True)
        if self.value() == "reviewed":
            return flagged.filter(reviewed_at__isnull=False)
        return queryset


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount to refund ($)", max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
        help_text="Whole or part of what is left; it goes back to the card through the processor.",
    )  # fmt: skip
    confirm = forms.BooleanField(label="Yes, refund this amount to the patient's card", required=True)


@admin.register(Payment)
class PaymentAdmin(OrganizationScopedAdmin[Payment]):
    """Read-only: payments are recorded from the processor's confirmations. Billing managers refund from the
    change page (H3) and mark flagged payments reviewed."""

    view_role = Role.BILLING_MANAGER
    list_display = [
        "created_at", "kind", "amount", "guarantor", "bill", "status", "processor", "processor_reference",
        "review", "organization",
    ]  # fmt: skip
    list_filter = [ReviewFilter, "kind", "processor", "status"]
    list_select_related = ["bill__guarantor", "organization"]
    search_fields = [
        "bill__bill_id",
        "bill__guarantor__external_id",
        "bill__guarantor__last_name",
        "processor_reference",
    ]
    readonly_fields = [
        "organization", "bill", "link", "checkout", "kind", "refund_of", "amount", "status", "processor",
        "processor_reference", "card_last4", "created_at", "needs_review", "reviewed_at", "reviewed_by",
        "refund_link",
    ]  # fmt: skip
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["mark_reviewed"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="guarantor")
    def guarantor(self, obj: Payment) -> str:
        return obj.bill.guarantor.external_id

    @admin.display(description="review")
    def review(self, obj: Payment) -> str:
        if not obj.needs_review:
            return ""
        return f"{obj.get_needs_review_display()}{' (reviewed)' if obj.reviewed_at else ''}"

    @admin.display(description="refund")
    def refund_link(self, obj: Payment) -> str:
        if obj.kind != PaymentKind.PAYMENT or obj.status != PaymentStatus.SUCCEEDED:
            return "—"
        left = refund_left(payment=obj)
        if left <= 0:
            return "Refunded in full"
        url = reverse("admin:payments_payment_refund", args=[obj.pk])
        return format_html('<a class="button" href="{}">Refund…</a> ({} left to refund)', url, left)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:payment_id>/refund/", self.admin_site.admin_view(self.refund_view),
                name="payments_payment_refund",
            ),
        ]  # fmt: skip
        return own + super().get_urls()

    def refund_view(self, request: HttpRequest, payment_id: int) -> HttpResponse:
        """H3: a confirmation page (amount, whole by default) and then the refund, audited with the user."""
        payment = self.get_object(request, str(payment_id))
        if not (
            request.user.is_superuser
            or user_has_role(request.user, Role.BILLING_MANAGER, payment.organization_id)
        ):
            return HttpResponseRedirect(reverse("admin:payments_payment_change", args=[payment.pk]))
        left = refund_left(payment=payment)
        change_url = reverse("admin:payments_payment_change", args=[payment.pk])
        form = RefundForm(request.POST or None, initial={"amount": left})
        if request.method == "POST" and form.is_valid():
            try:
                refund = payment_refund(
                    payment=payment, amount=form.cleaned_data["amount"], user=request.user
                )
            except (RefundRefused, RefundUnavailable) as exc:
                form.add_error("amount", str(exc))
            else:
                done = (
                    "Refunded"
                    if refund.status == PaymentStatus.SUCCEEDED
                    else "Refund pending at the processor:"
                )
                self.message_user(
                    request, f"{done} {-refund.amount} of payment {payment.pk} ({refund.processor_reference}).",
                    messages.SUCCESS,
                )  # fmt: skip
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund payment {payment.pk}",
            "opts": self.model._meta,
            "payment": payment,
            "left": left,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)

    @admin.action(description="Mark the selected payments reviewed")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        now = timezone.now()
        count = 0
        for payment in queryset.exclude(needs_review="").filter(reviewed_at__isnull=True):
            if not (
                request.user.is_superuser
                or user_has_role(request.user, Role.BILLING_MANAGER, payment.organization_id)
            ):
                continue
            Payment.objects.filter(pk=payment.pk).update(reviewed_at=now, reviewed_by=request.user)
            audit_record(
                organization=payment.organization, actor=request.user, action="payment.reviewed", obj=payment,
                changes={"needs_review": payment.needs_review},
            )  # fmt: skip
            count += 1
        self.message_user(
            request, f"{count} payment{'s' if count != 1 else ''} marked reviewed.", messages.SUCCESS
        )


class InstallmentInline(admin.TabularInline[Installment, PaymentPlan]):
    model = Installment
    extra = 0
    can_delete = False
    fields = [
        "sequence", "due_date", "amount", "state", "attempts", "next_attempt_at", "last_failure", "paid_at",
        "payment", "payment_reference",
    ]  # fmt: skip
    readonly_fields = [
        "sequence", "due_date", "amount", "state", "attempts", "next_attempt_at", "last_failure", "paid_at",
        "payment", "payment_reference",
    ]  # fmt: skip
    ordering = ["sequence"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see the plan (PaymentPlanAdmin, scoped to the user's organizations) sees its installments;
        # Django's own check would ask for a model permission nobody is given here.
        return bool(request.user.is_active and request.user.is_staff)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlanCancelForm(forms.Form):
    reason = forms.CharField(
        max_length=250,
        help_text="Kept with the plan and in the audit log; staff see it on the guarantor page.",
    )
    confirm = forms.BooleanField(
        label="Yes, cancel this plan: no further installment is charged and reminders resume", required=True
    )


@admin.register(PaymentPlan)
class PaymentPlanAdmin(OrganizationScopedAdmin[PaymentPlan]):
    """Read-only (H5): plans are set up by the patient and run by the charging task. Billing managers cancel an
    open plan from its change page (``plan_cancel``, audited, T5)."""

    view_role = Role.FRONT_DESK
    list_display = [
        "created_at", "kind", "total", "installment_count", "guarantor_external_id", "bill", "state", "processor",
        "organization",
    ]  # fmt: skip
    list_filter = ["state", "kind", "processor"]
    list_select_related = ["guarantor", "bill", "organization"]
    search_fields = ["guarantor__external_id", "guarantor__last_name", "bill__bill_id"]
    readonly_fields = [
        "organization", "guarantor", "bill", "checkout", "kind", "state", "total", "installment_count",
        "processor", "customer_reference", "payment_method_reference", "created_at", "activated_at", "ended_at",
        "end_reason", "cancel_link",
    ]  # fmt: skip
    inlines = [InstallmentInline]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="guarantor")
    def guarantor_external_id(self, obj: PaymentPlan) -> str:
        return obj.guarantor.external_id

    def _may_cancel(self, request: HttpRequest, plan: PaymentPlan) -> bool:
        return bool(
            request.user.is_superuser
            or user_has_role(request.user, Role.BILLING_MANAGER, plan.organization_id)
        )

    @admin.display(description="cancel")
    def cancel_link(self, obj: PaymentPlan) -> str:
        if obj.state not in PLAN_OPEN_STATES:
            return "—"
        url = reverse("admin:payments_paymentplan_cancel", args=[obj.pk])
        return format_html('<a class="button" href="{}">Cancel plan…</a> (billing managers)', url)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:plan_id>/cancel/", self.admin_site.admin_view(self.cancel_view),
                name="payments_paymentplan_cancel",
            ),
        ]  # fmt: skip
        return own + super().get_urls()

    def cancel_view(self, request: HttpRequest, plan_id: int) -> HttpResponse:
        """H5: a confirmation page (the reason, required) and then ``plan_cancel``, audited with the user."""
        plan = self.get_object(request, str(plan_id))
        change_url = reverse("admin:payments_paymentplan_change", args=[plan.pk])
        if not self._may_cancel(request, plan):
            self.message_user(request, "Only a billing manager can cancel a plan.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        form = PlanCancelForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            user: Any = request.user
            name = user.get_full_name() or user.get_username()
            try:
                plan_cancel(
                    plan=plan,
                    actor=request.user,
                    reason=f"Cancelled by {name}: {form.cleaned_data['reason']}",
                )
            except PlanRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"Plan {plan.pk} cancelled; reminders resume.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Cancel payment plan {plan.pk}",
            "opts": self.model._meta,
            "plan": plan,
            "installments": plan.installments.order_by("sequence"),
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/payments/paymentplan/cancel.html", context)
