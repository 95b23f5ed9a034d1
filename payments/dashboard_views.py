"""The front desk's payments dashboard: the bulk payment request list (B1-B3), the guarantor page with a single
request and the eligibility explanation (B4, R12). Thin: resolve the organization through the tenancy module
(T1/T2), read through ``payments.selectors``, act through one service, redirect with a message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from notifications.models import Kind, State
from payments.campaigns import (
    CampaignError,
    CampaignExists,
    NotEligible,
    bulk_send,
    payment_link_reissue,
    send_request,
)
from payments.eligibility import explain_guarantor, payment_settings_get
from payments.forms import SelectionForm, SnoozeForm
from payments.selectors import (
    Selection,
    active_snoozes,
    bulk_list,
    dashboard_organizations,
    guarantor_blocked_links,
    guarantor_get,
    guarantor_requests,
    guarantor_snooze,
    pending_request_messages,
    request_messages,
    request_messages_of_day,
    selection_guarantor_ids,
    state_counts,
)
from payments.services import SnoozeError, snooze_create, snooze_lift
from practices.models import Organization, Patient
from practices.tenancy import staff_user
from practices.timezones import organization_today

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from dunning_project.http import HtmxHttpRequest

PAGE_SIZE = 50
SENT_TODAY_ROWS = 50
TABS = ("all", "pending", "snoozed")
NO_SELECTION = Selection(everyone=False, ids=())

# R12: what each rule checks, in the front desk's words (the values and thresholds come from the rule itself).
RULE_TITLES = {
    "R1": "Is a guarantor (not a dependent)",
    "R2": "Not on a payment plan",
    "R3": "Patient portion above the minimum payment amount",
    "R4": "Aging category is eligible",
    "R5": "Not snoozed",
    "R6": "Not in an active campaign",
    "R7": "No campaign since the last visit",
    "R8": "No single request since the last visit",
    "R10": "Open insurance claims within the limit",
    "R11": "Not flagged do-not-contact",
}


def _organization(request: HttpRequest, slug: str) -> tuple[Organization, list[Organization]]:
    """The organization named in the URL among the user's own (T1: any other answers 404), and all of them."""
    organizations = dashboard_organizations(user=request.user)
    for organization in organizations:
        if organization.slug == slug:
            return organization, organizations
    raise Http404


class _Actor(TypedDict):
    user: User
    actor_label: str


def _actor(request: HttpRequest) -> _Actor:
    user = staff_user(request)
    return {"user": user, "actor_label": user.get_username()}


def _bulk_url(
    organization: Organization, tab: str = "all", *, selection: Selection = NO_SELECTION, page: str = ""
) -> str:
    """The bulk list URL; a selection in the query string survives a row snooze (B2 and B3 together)."""
    query: dict[str, Any] = {}
    if tab != "all":
        query["tab"] = tab
    if selection.everyone:
        query.update(select_all="1", excluded=list(selection.ids))
    elif selection.ids:
        query["selected"] = list(selection.ids)
    if page.isdigit() and page != "1":
        query["page"] = page
    url = reverse("payments_dashboard:bulk", args=[organization.slug])
    return f"{url}?{urlencode(query, doseq=True)}" if query else url


def _guarantor_url(organization: Organization, guarantor_id: str) -> str:
    return reverse("payments_dashboard:guarantor", args=[organization.slug, guarantor_id])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Payments: straight to the bulk list of the user's organization, or a choice when there are several."""
    organizations = dashboard_organizations(user=request.user)
    if not organizations:
        raise PermissionDenied
    if len(organizations) == 1:
        return redirect(_bulk_url(organizations[0]))
    return render(request, "payments/dashboard/index.html", {"organizations": organizations})


@login_required
@require_GET
def bulk(request: HtmxHttpRequest, org: str) -> HttpResponse:
    organization, organizations = _organization(request, org)
    tab = request.GET.get("tab", "all")
    selection = NO_SELECTION
    if tab not in TABS or tab == "all":
        tab = "all"
        form = SelectionForm(request.GET)
        if form.is_valid():
            selection = form.selection()
    return _render_bulk(request, organization, organizations, tab=tab, selection=selection)


def _render_bulk(
    request: HtmxHttpRequest,
    organization: Organization,
    organizations: list[Organization],
    *,
    tab: str,
    snooze_form: SnoozeForm | None = None,
    selection: Selection = NO_SELECTION,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    today = organization_today(organization)
    eligible = bulk_list(user=user, organization=organization, on=today)
    pending = pending_request_messages(user=user, organization=organization)
    snoozes = active_snoozes(user=user, organization=organization, on=today)
    # The tabs list different models: Patient, Message, Snooze.
    lists: dict[str, QuerySet[Any]] = {"all": eligible, "pending": pending, "snoozed": snoozes}
    page = Paginator(lists[tab], PAGE_SIZE).get_page(request.GET.get("page"))
    counts = {name: page.paginator.count if name == tab else qs.count() for name, qs in
              (("all", eligible), ("pending", pending), ("snoozed", snoozes))}  # fmt: skip
    context: dict[str, Any] = {
        "organization": organization,
        "organizations": organizations,
        "today": today,
        "tab": tab,
        "page": page,
        "counts": counts,
    }
    if tab == "all":
        context["checked"] = {
            guarantor.external_id
            for guarantor in page
            if (guarantor.external_id in selection.ids) != selection.everyone
        }
        context["selection"] = selection
        if request.htmx:
            # Paging within the list swaps only the table: the selection lives in the form around it.
            response = render(request, "payments/dashboard/_eligible.html", context, status=status)
            patch_vary_headers(response, ("HX-Request",))
            return response
        if snooze_form is None:
            reasons = payment_settings_get(organization=organization).snooze_reasons or []
            snooze_form = SnoozeForm(reasons=reasons, today=today)
        day = request_messages_of_day(user=user, organization=organization, on=today)
        by_state = state_counts(day)
        context.update(
            snooze_form=snooze_form,
            sent_today=list(day[:SENT_TODAY_ROWS]),
            sent_today_total=sum(by_state.values()),
            sent_today_states=[(State(s).label, by_state[s]) for s in State.values if s in by_state],
        )
    response = render(request, "payments/dashboard/bulk.html", context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_POST
def send(request: HttpRequest, org: str) -> HttpResponse:
    """B2: Send. The server recomputes the list now (``bulk_send``): "Select all" sends to every eligible
    guarantor except the deselected ids; otherwise to the picked ids that are still eligible. A double
    submit starts no second campaign (R6 and the ``bill_one_active_request`` constraint)."""
    organization, _ = _organization(request, org)
    form = SelectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(_bulk_url(organization))
    selection = form.selection()
    if selection.empty:
        messages.warning(request, "Nothing selected, so nothing was sent. Tick guarantors or Select all.")
        return redirect(_bulk_url(organization))
    ids = list(selection.ids)
    started = timezone.now()
    if selection.everyone:
        bills = bulk_send(organization=organization, at=started, exclude=ids, **_actor(request))
    else:
        bills = bulk_send(organization=organization, at=started, only=ids, **_actor(request))
    if not bills:
        messages.warning(
            request,
            "Nothing was sent: none of the selected guarantors is on the list any more "
            "(already sent, snoozed, or their balance changed).",
        )
    else:
        text = f"Payment requests sent to {_plural(len(bills), 'guarantor')}."
        skipped = 0 if selection.everyone else len(selection.ids) - len(bills)
        if skipped > 0:
            text += f" {_plural(skipped, 'selected guarantor')} left the list meanwhile and got none."
        created = request_messages(user=request.user, organization=organization).filter(
            kind=Kind.REQUEST, created_by=staff_user(request), created_at__gte=started
        )
        by_state = state_counts(created)
        if held := by_state.get(State.SCHEDULED, 0):
            text += f" {_plural(held, 'message')} wait for the end of quiet hours in the patient's time zone."
        if undelivered := by_state.get(State.UNDELIVERED, 0):
            text += f" {_plural(undelivered, 'message')} had no mobile number or email: see the Undeliverable list."
        messages.success(request, text)
    return redirect(_bulk_url(organization))


@login_required
@require_POST
def snooze(request: HtmxHttpRequest, org: str) -> HttpResponse:
    """B3: snooze the selected guarantors (one or many, "Select all" included) until a future date."""
    organization, organizations = _organization(request, org)
    today = organization_today(organization)
    reasons = payment_settings_get(organization=organization).snooze_reasons or []
    form = SnoozeForm(request.POST, reasons=reasons, today=today)
    back_to = request.POST.get("back_to", "")
    # A row's own Snooze button snoozes that guarantor only and keeps the selection made for Send.
    one = request.POST.get("snooze_one", "").strip()
    if form.is_valid():
        selection = form.selection()
        if one:
            ids = [one]
        else:
            ids = selection_guarantor_ids(
                user=request.user, organization=organization, on=today, selection=selection
            )
        if not ids:
            form.add_error(None, "Nothing selected: tick the guarantors to snooze.")
        else:
            try:
                snoozes = snooze_create(
                    organization=organization, guarantor_ids=ids, until=form.cleaned_data["until"],
                    reason=form.cleaned_data["snooze_reason"], today=today, **_actor(request),
                )  # fmt: skip
            except SnoozeError as exc:
                form.add_error(None, str(exc))
            else:
                until = form.cleaned_data["until"]
                who = (
                    snoozes[0].guarantor.full_name
                    if len(snoozes) == 1
                    else _plural(len(snoozes), "guarantor")
                )
                messages.success(
                    request,
                    f"Snoozed {who} until {until:%b} {until.day}, {until:%Y} "
                    f"({form.cleaned_data['snooze_reason']}).",
                )
                if back_to == "guarantor" and len(ids) == 1:
                    return redirect(_guarantor_url(organization, ids[0]))
                if one:
                    kept = selection
                    if not selection.everyone:
                        kept = Selection(everyone=False, ids=tuple(i for i in selection.ids if i != one))
                    return redirect(
                        _bulk_url(organization, selection=kept, page=request.POST.get("page", ""))
                    )
                return redirect(_bulk_url(organization))
    selected = form.cleaned_data.get("selected") or []
    if back_to == "guarantor" and len(selected) == 1:
        guarantor = guarantor_get(user=request.user, organization=organization, guarantor_id=selected[0])
        if guarantor is not None:
            return _render_guarantor(
                request, organization, organizations, guarantor, snooze_form=form, status=400
            )
    return _render_bulk(
        request,
        organization,
        organizations,
        tab="all",
        snooze_form=form,
        selection=form.selection(),
        status=400,
    )


@login_required
@require_POST
def lift(request: HttpRequest, org: str) -> HttpResponse:
    """B3: lift a guarantor's running snooze early; it is back on the list if it is still eligible."""
    organization, _ = _organization(request, org)
    guarantor_id = request.POST.get("guarantor_id", "").strip()
    guarantor = guarantor_get(user=request.user, organization=organization, guarantor_id=guarantor_id)
    if guarantor is None:
        raise Http404
    try:
        lifted = snooze_lift(organization=organization, guarantor_ids=[guarantor_id], **_actor(request))
    except SnoozeError as exc:
        messages.error(request, str(exc))
    else:
        if lifted:
            messages.success(
                request, f"Snooze lifted: {guarantor.full_name} is back on the list if eligible."
            )
        else:
            messages.info(request, f"{guarantor.full_name} had no running snooze.")
    if request.POST.get("back_to") == "guarantor":
        return redirect(_guarantor_url(organization, guarantor_id))
    return redirect(_bulk_url(organization, "snoozed"))


def _guarantor_or_404(request: HttpRequest, organization: Organization, guarantor_id: str) -> Patient:
    guarantor = guarantor_get(user=request.user, organization=organization, guarantor_id=guarantor_id)
    if guarantor is None:
        raise Http404
    return guarantor


@login_required
@require_GET
def guarantor(request: HttpRequest, org: str, guarantor_id: str) -> HttpResponse:
    """B4 and R12: one guarantor, why it is or is not on the list, its requests; a single request."""
    organization, organizations = _organization(request, org)
    patient = _guarantor_or_404(request, organization, guarantor_id)
    return _render_guarantor(request, organization, organizations, patient)


def _render_guarantor(
    request: HttpRequest,
    organization: Organization,
    organizations: list[Organization],
    patient: Patient,
    *,
    snooze_form: SnoozeForm | None = None,
    refused: list[dict[str, Any]] | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    today = organization_today(organization)
    explanation = explain_guarantor(organization=organization, guarantor=patient, on=today)
    rules = [{**rule, "title": RULE_TITLES.get(rule["rule"], rule["rule"])} for rule in explanation["rules"]]
    if snooze_form is None:
        reasons = payment_settings_get(organization=organization).snooze_reasons or []
        snooze_form = SnoozeForm(reasons=reasons, today=today)
    account = getattr(patient, "account", None)
    context = {
        "organization": organization,
        "organizations": organizations,
        "today": today,
        "guarantor": patient,
        "account": account,
        "eligible": explanation["eligible"],
        "rules": rules,
        "failed": [rule for rule in rules if not rule["passed"]],
        "refused": refused,
        "error": error,
        "snooze": guarantor_snooze(user=request.user, guarantor=patient, on=today),
        "snooze_form": snooze_form,
        "requests": guarantor_requests(user=request.user, guarantor=patient),
        "blocked_links": guarantor_blocked_links(user=request.user, guarantor=patient),
    }
    return render(request, "payments/dashboard/guarantor.html", context, status=status)


@login_required
@require_POST
def guarantor_request(request: HttpRequest, org: str, guarantor_id: str) -> HttpResponse:
    """B4: a single (one-off) payment request; refused, with the failing rules, for an ineligible guarantor."""
    organization, organizations = _organization(request, org)
    patient = _guarantor_or_404(request, organization, guarantor_id)
    try:
        bill = send_request(
            organization=organization, guarantor_id=patient.external_id, at=timezone.now(), **_actor(request)
        )
    except NotEligible as exc:
        refused = [{**rule, "title": RULE_TITLES.get(rule["rule"], rule["rule"])} for rule in exc.failed]
        return _render_guarantor(request, organization, organizations, patient, refused=refused, status=409)
    except CampaignExists:
        messages.warning(request, f"{patient.full_name} already has an active payment request.")
    except CampaignError as exc:
        return _render_guarantor(request, organization, organizations, patient, error=str(exc), status=409)
    else:
        messages.success(
            request,
            f"Payment request sent to {patient.full_name} for ${bill.amount_due:,.2f} (campaign {bill.bill_id}).",
        )
    return redirect(_guarantor_url(organization, patient.external_id))


@login_required
@require_POST
def link_reissue(request: HttpRequest, org: str, guarantor_id: str, link_id: int) -> HttpResponse:
    """P2 escalation: a new payment link for a link blocked after repeated wrong dates of birth, sent to the
    guarantor (front desk, T2)."""
    organization, _organizations = _organization(request, org)
    patient = _guarantor_or_404(request, organization, guarantor_id)
    link = next(
        (
            link
            for link in guarantor_blocked_links(user=request.user, guarantor=patient)
            if link.pk == link_id
        ),
        None,
    )
    if link is None:
        raise Http404
    try:
        payment_link_reissue(link=link, user=request.user)
    except CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"A new payment link for {link.bill.bill_id} is on its way to {patient.full_name}."
        )
    return redirect(_guarantor_url(organization, patient.external_id))
