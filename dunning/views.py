"""The dashboard's "After final" tab (SPEC §13.1, A1-A2). Thin: resolve the organization among the user's own
(T1/T2, as the payments dashboard does), read through ``dunning.after_final``, record through its one
service, redirect with a message saying what happened."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dunning.after_final import (
    AfterFinalError,
    after_final_promised,
    after_final_record,
    after_final_refusal,
    after_final_worklist,
    collections_export_csv,
    worklist_rows,
)
from dunning.forms import CollectionsExportForm, OutcomeForm
from dunning.models import AfterFinalOutcome, AfterFinalOutcomeKind
from dunning_project.dashboard import organization_from_url, organization_index
from practices.models import Bill, BillState, Organization, Role
from practices.tenancy import user_has_role
from practices.timezones import organization_today

PAGE_SIZE = 50
TABS = ("work", "promised")


def _worklist_url(organization: Organization, tab: str = "work", page: str = "") -> str:
    query = {}
    if tab != "work":
        query["tab"] = tab
    if page.isdigit() and page != "1":
        query["page"] = page
    url = reverse("dunning_dashboard:worklist", args=[organization.slug])
    return f"{url}?{urlencode(query)}" if query else url


def _day(value: date) -> str:
    return f"{value:%b} {value.day}, {value:%Y}"


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """After final: straight to the worklist of the user's organization, or a choice when there are several."""
    return organization_index(request, url_name="dunning_dashboard:worklist", title="After final")


@login_required
@require_GET
def worklist(request: HttpRequest, org: str) -> HttpResponse:
    """A1: the worklist (oldest final notice first) and the promises to pay still running."""
    organization, organizations = organization_from_url(request, org)
    today = organization_today(organization)
    tab = request.GET.get("tab", "work")
    if tab not in TABS:
        tab = "work"
    lists = {
        "work": after_final_worklist(organization=organization, on=today),
        "promised": after_final_promised(organization=organization, on=today),
    }
    page = Paginator(lists[tab], PAGE_SIZE).get_page(request.GET.get("page"))
    rows = worklist_rows(bills=page.object_list)
    counts = {name: page.paginator.count if name == tab else qs.count() for name, qs in lists.items()}
    context = {
        "organization": organization,
        "organizations": organizations,
        "today": today,
        "tab": tab,
        "page": page,
        "rows": rows,
        "counts": counts,
        "can_write_off": user_has_role(request.user, Role.BILLING_MANAGER, organization),
        "export_form": CollectionsExportForm(),
    }
    return render(request, "dunning/after_final/worklist.html", context)


def _bill_or_404(organization: Organization, bill_id: str) -> Bill:
    bill = (
        Bill.objects.select_related("guarantor", "organization")
        .filter(organization=organization, bill_id=bill_id)
        .first()
    )
    if bill is None:
        raise Http404
    return bill


@login_required
@require_POST
def record_outcome(request: HttpRequest, org: str, bill_id: str) -> HttpResponse:
    """A2: one outcome for one bill. Collections and write-off answer a confirmation page first."""
    organization, organizations = organization_from_url(request, org)
    bill = _bill_or_404(organization, bill_id)
    back = _worklist_url(organization, request.POST.get("tab", "work"), request.POST.get("page", ""))
    form = OutcomeForm(request.POST)
    if not form.is_valid():
        errors = " ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        messages.error(request, f"Nothing recorded for {bill.guarantor.full_name}: {errors}")
        return redirect(back)
    if form.needs_confirmation:
        if refusal := after_final_refusal(bill=bill):
            messages.error(request, f"Nothing recorded for {bill.guarantor.full_name}: {refusal}")
            return redirect(back)
        context = {
            "organization": organization,
            "organizations": organizations,
            "bill": bill,
            "outcome": form.cleaned_data["outcome"],
            "outcome_label": AfterFinalOutcomeKind(form.cleaned_data["outcome"]).label,
            "note": form.cleaned_data["note"],
            "back": back,
        }
        return render(request, "dunning/after_final/confirm.html", context)
    try:
        recorded = after_final_record(
            bill=bill, outcome=form.cleaned_data["outcome"], user=request.user,
            promise_date=form.cleaned_data["promise_date"], note=form.cleaned_data["note"],
        )  # fmt: skip
    except AfterFinalError as exc:
        messages.error(request, f"Nothing recorded for {bill.guarantor.full_name}: {exc}")
    else:
        messages.success(request, _done(recorded))
    return redirect(back)


def _done(recorded: AfterFinalOutcome) -> str:
    bill = recorded.bill
    who = bill.guarantor.full_name
    amount = f"${bill.amount_due:,.2f}"
    if recorded.outcome == AfterFinalOutcomeKind.PROMISE_TO_PAY:
        assert recorded.promise_date is not None
        back_on = recorded.promise_date + timedelta(days=1)
        return (
            f"{who} promised to pay {amount} by {_day(recorded.promise_date)}: snoozed until then. Bill "
            f"{bill.bill_id} comes back on this list on {_day(back_on)} if it is still owed."
        )
    if recorded.outcome == AfterFinalOutcomeKind.PAYMENT_PLAN:
        return (
            f"Payment plan recorded for {who} (bill {bill.bill_id}, {amount}). Set it up in the practice "
            "software: the bill stays on this list until the next feed closes it."
        )
    if recorded.outcome == AfterFinalOutcomeKind.RESTART_REMINDERS:
        return (
            f"Reminders restarted for {who}: bill {bill.bill_id} ({amount}) starts its schedule again from "
            "the first step with the next dunning run."
        )
    if recorded.outcome == AfterFinalOutcomeKind.COLLECTIONS:
        return (
            f"Bill {bill.bill_id} of {who} ({amount}) was sent to collections and closed. It is in the "
            "collections export."
        )
    assert bill.state == BillState.CLOSED
    return f"Bill {bill.bill_id} of {who} ({amount}) was written off and closed."


@login_required
@require_GET
def collections_export(request: HttpRequest, org: str) -> HttpResponse:
    """A2: the collections export (CSV, the agency's columns), optionally from a placement date on."""
    organization, _ = organization_from_url(request, org)
    form = CollectionsExportForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Enter the date as YYYY-MM-DD, or leave it empty to export everything.")
        return redirect(_worklist_url(organization))
    since = form.cleaned_data["since"]
    text = collections_export_csv(organization=organization, user=request.user, since=since)
    today = organization_today(organization)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="collections-{organization.slug}-{today}.csv"'
    return response
