"""The front desk's payments dashboard: the bulk payment request list (B1-B3), the guarantor page with a single
request and the eligibility explanation (B4, R12). Thin: resolve the organization through the tenancy module
(T1/T2), read through ``payments.selectors``, act through one service, redirect with a message."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from dunning.after_final import after_final_worklist
from dunning.reminders import guarantor_reminders
from dunning_project.dashboard import organization_from_url, organization_index, uses_the_admin
from notifications.consent import (
    actor_label,
    consent_history,
    event_label,
    ledger_csv_lines,
    ledger_export_audit,
)
from notifications.models import Kind, State
from notifications.replies import inbound_review_open_count
from notifications.selectors import undeliverable_messages
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
from payments.models import PaymentPlan, PlanState, Snooze
from payments.selectors import (
    Selection,
    active_snoozes,
    bulk_list,
    bulk_list_settings,
    guarantor_blocked_links,
    guarantor_get,
    guarantor_plans,
    guarantor_requests,
    guarantor_snooze,
    payments_home_figures,
    pending_request_messages,
    request_messages,
    request_messages_of_day,
    selection_guarantor_ids,
    state_counts,
)
from payments.services import SnoozeError, snooze_create, snooze_lift, snooze_undo
from practices.models import Organization, Patient, Role
from practices.tenancy import staff_user, user_has_role
from practices.timezones import organization_today

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from dunning_project.http import HtmxHttpRequest

PAGE_SIZE = 50
SENT_TODAY_ROWS = 50
TABS = ("all", "pending", "snoozed")
NO_SELECTION = Selection(everyone=False, ids=())
# B3: a bulk snooze of more guarantors than this answers a confirmation page that states the count first
# (docs/decisions.md, "Front desk (issue 12)"); a handful is snoozed at once, with an undo.
SNOOZE_CONFIRM_ABOVE = 5
SNOOZE_UNDO_KEY = "payments.snooze_undo"

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
    """Payments: the home page of the user's organization, or a choice when there are several."""
    return organization_index(request, url_name="payments_dashboard:home", title="Payments")


@dataclass(frozen=True)
class Tile:
    """One figure of the home page, with the list it stands for."""

    label: str
    value: str
    detail: str
    url: str


@login_required
@require_GET
def home(request: HttpRequest, org: str) -> HttpResponse:
    """The front desk's Payments home page: today's figures, each a link to its list."""
    organization, organizations = organization_from_url(request, org)
    user = request.user
    today = organization_today(organization)
    figures = payments_home_figures(user=user, organization=organization, on=today)
    undeliverable = undeliverable_messages(user=user, organization_ids=[organization.pk]).count()
    after_final = after_final_worklist(organization=organization, on=today).aggregate(
        n=Count("pk"), amount=Sum("amount_due")
    )
    # K4: the replies waiting for a person on the review queue (one count on its index).
    replies = inbound_review_open_count(organization=organization)
    bulk_url = _bulk_url(organization)
    held_detail = "Nothing waiting for the morning."
    if figures.held_next_release is not None:
        held_detail = f"The first go out {_moment(figures.held_next_release, organization)}."
    tiles = [
        Tile("Eligible today", str(figures.eligible),
             f"${figures.eligible_amount:,.2f} in patient portions.", bulk_url),
        Tile("Held for later", str(figures.held), held_detail, _bulk_url(organization, "pending")),
        Tile("Sent today", str(figures.sent_today), "Request messages handed to the text and email providers.",
             f"{bulk_url}#todays-requests-heading"),
        Tile("Undeliverable", str(undeliverable), "Add a mobile number and resend.",
             f"{reverse('notifications_dashboard:undeliverable')}?organization={organization.pk}"),
        Tile("Snoozed", str(figures.snoozed), "Back on the list on their re-enrol date.",
             _bulk_url(organization, "snoozed")),
        Tile("After final", str(after_final["n"]),
             f"${after_final['amount'] or 0:,.2f} still owed after the final notice.",
             reverse("dunning_dashboard:worklist", args=[organization.slug])),
        Tile("Replies to review", str(replies), "Texts that may ask us to stop: opt out or not.",
             reverse("notifications_dashboard:replies", args=[organization.slug])),
    ]  # fmt: skip
    context = {
        "organization": organization,
        "organizations": organizations,
        "today": today,
        "tiles": tiles,
        "uses_the_admin": uses_the_admin(user),
    }
    return render(request, "payments/dashboard/home.html", context)


@login_required
@require_GET
def bulk_settings(request: HttpRequest, org: str) -> HttpResponse:
    """The seed's "Bulk payment request settings": what decides who is on the list, read-only; billing
    managers change it in the admin (T2)."""
    organization, organizations = organization_from_url(request, org)
    context = {
        "organization": organization,
        "organizations": organizations,
        "settings": bulk_list_settings(organization=organization),
        "can_change": user_has_role(request.user, Role.BILLING_MANAGER, organization),
    }
    return render(request, "payments/dashboard/bulk_settings.html", context)


def _moment(value: datetime, organization: Organization) -> str:
    """A time as the front desk reads it: the practice's zone, named (``Nov 25 at 8:00 AM MST``)."""
    local = timezone.localtime(value, organization.tzinfo)
    return f"{_day(local.date(), year=False)} at {_clock(local)} {local:%Z}"


def _clock(value: datetime) -> str:
    return f"{value:%I:%M %p}".lstrip("0")


def _day(value: date, *, year: bool = True) -> str:
    return f"{value:%b} {value.day}, {value:%Y}" if year else f"{value:%b} {value.day}"


@login_required
@require_GET
def bulk(request: HtmxHttpRequest, org: str) -> HttpResponse:
    organization, organizations = organization_from_url(request, org)
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
    row_snooze: RowSnooze | None = None,
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
        reasons = payment_settings_get(organization=organization).snooze_reasons or []
        if snooze_form is None:
            snooze_form = SnoozeForm(reasons=reasons, today=today)
        if row_snooze is None:
            row_snooze = RowSnooze(form=SnoozeForm(reasons=reasons, today=today), guarantor=None)
        day = request_messages_of_day(user=user, organization=organization, on=today)
        by_state = state_counts(day)
        context.update(
            snooze_form=snooze_form,
            row_snooze=row_snooze,
            selected_count=_selected_count(selection, counts["all"]),
            undo=_undo_banner(request, organization),
            sent_today=list(day[:SENT_TODAY_ROWS]),
            sent_today_total=sum(by_state.values()),
            sent_today_states=[(State(s).label, by_state[s]) for s in State.values if s in by_state],
        )
    elif tab == "snoozed":
        context["undo"] = _undo_banner(request, organization)
    response = render(request, "payments/dashboard/bulk.html", context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_POST
def send(request: HttpRequest, org: str) -> HttpResponse:
    """B2: Send. The server recomputes the list now (``bulk_send``): "Select all" sends to every eligible
    guarantor except the deselected ids; otherwise to the picked ids that are still eligible. A double
    submit starts no second campaign (R6 and the ``bill_one_active_request`` constraint)."""
    organization, _ = organization_from_url(request, org)
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
        return redirect(_bulk_url(organization))
    created = request_messages(user=request.user, organization=organization).filter(
        kind=Kind.REQUEST, created_by=staff_user(request), created_at__gte=started
    )
    text = f"Payment requests started for {_plural(len(bills), 'guarantor')}. {_send_outcome(created, organization, request.user)}"
    skipped = 0 if selection.everyone else len(selection.ids) - len(bills)
    if skipped > 0:
        text += f" {_plural(skipped, 'selected guarantor')} left the list meanwhile and got none."
    messages.success(request, text)
    return redirect(_bulk_url(organization))


# What a message just created can be in: going out (queued for a worker, or already handed over), held by
# quiet hours (Q1), or on the undeliverable list at once (no destination, U1).
GOING_OUT = frozenset({State.PENDING, State.SENDING, State.SENT, State.DELIVERED})


def _send_outcome(created: QuerySet[Any], organization: Organization, user: Any) -> str:
    """Send's banner: how many messages go out now and how many quiet hours hold, until when (the practice's
    clock; each patient's own 8:00 is a different moment), and how many went to the undeliverable list (not
    a gap on one channel when another channel reaches the patient, which the list leaves off too)."""
    held = Q(state=State.SCHEDULED)
    outcome = created.aggregate(
        now=Count("pk", filter=Q(state__in=GOING_OUT)), held=Count("pk", filter=held),
        first=Min("scheduled_for", filter=held), last=Max("scheduled_for", filter=held),
    )  # fmt: skip
    listed = undeliverable_messages(user=user, organization_ids=[organization.pk])
    undelivered = listed.filter(pk__in=created.values("pk")).count()
    text = f"Going out now: {_plural(outcome['now'], 'message')}."
    if outcome["held"]:
        until = _moment(outcome["first"], organization)
        if (last := _moment(outcome["last"], organization)) != until:
            until = f"between {until} and {last}"
        text += (
            f" Held for quiet hours: {_plural(outcome['held'], 'message')}, until {until} (the end of quiet "
            "hours in each patient's time zone)."
        )
    if undelivered:
        text += f" No mobile number or email: {_plural(undelivered, 'message')}, see the Undeliverable list."
    return text


@dataclass(frozen=True)
class RowSnooze:
    """The row dialog's snooze form (B3) and, when it came back with errors, the guarantor it was for."""

    form: SnoozeForm
    guarantor: Patient | None


def _selected_count(selection: Selection, total: int) -> int:
    return max(total - len(selection.ids), 0) if selection.everyone else len(selection.ids)


def _undo_banner(request: HttpRequest, organization: Organization) -> dict[str, Any] | None:
    """The banner of the snooze just made, once: its words and the token its Undo button posts."""
    undo = request.session.get(SNOOZE_UNDO_KEY)
    if not undo or undo["organization"] != organization.pk or undo["shown"]:
        return None
    request.session[SNOOZE_UNDO_KEY] = {**undo, "shown": True}
    return {"text": undo["text"], "token": undo["token"], "count": len(undo["snoozes"])}


def _remember_for_undo(
    request: HttpRequest, organization: Organization, snoozes: list[Snooze], text: str
) -> None:
    # The ids stay on the server: the form posts a token, so an Undo lifts only what this snooze made.
    request.session[SNOOZE_UNDO_KEY] = {
        "organization": organization.pk,
        "snoozes": [snooze.pk for snooze in snoozes],
        "token": secrets.token_urlsafe(16),
        "text": text,
        "shown": False,
    }


@login_required
@require_POST
def snooze(request: HtmxHttpRequest, org: str) -> HttpResponse:
    """B3: snooze the selected guarantors (one or many, "Select all" included) until a future date. A row's
    clock dialog snoozes its guarantor only and keeps the selection made for Send; a bulk snooze of more
    than ``SNOOZE_CONFIRM_ABOVE`` guarantors answers a page that states the count and asks first."""
    organization, organizations = organization_from_url(request, org)
    today = organization_today(organization)
    reasons = payment_settings_get(organization=organization).snooze_reasons or []
    form = SnoozeForm(request.POST, reasons=reasons, today=today)
    back_to = request.POST.get("back_to", "")
    one = request.POST.get("snooze_one", "").strip()
    row_guarantor = None
    if one:
        row_guarantor = guarantor_get(user=request.user, organization=organization, guarantor_id=one)
        if row_guarantor is None:
            raise Http404
    if form.is_valid():
        selection = form.selection()
        if one:
            ids = [one]
        else:
            ids = selection_guarantor_ids(
                user=request.user, organization=organization, on=today, selection=selection
            )
        confirmed = request.POST.get("confirmed_count", "")
        if not ids:
            form.add_error(None, "Nothing selected: tick the guarantors to snooze.")
        elif not one and len(ids) > SNOOZE_CONFIRM_ABOVE and confirmed != str(len(ids)):
            return _render_snooze_confirmation(
                request, organization, organizations, form, ids=ids, changed_from=confirmed
            )
        else:
            try:
                snoozes = snooze_create(
                    organization=organization, guarantor_ids=ids, until=form.cleaned_data["until"],
                    reason=form.cleaned_data["snooze_reason"], today=today, **_actor(request),
                )  # fmt: skip
            except SnoozeError as exc:
                form.add_error(None, str(exc))
            else:
                who = (
                    snoozes[0].guarantor.full_name
                    if len(snoozes) == 1
                    else _plural(len(snoozes), "guarantor")
                )
                _remember_for_undo(
                    request,
                    organization,
                    snoozes,
                    f"Snoozed {who} until {_day(form.cleaned_data['until'])} "
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
    if one:
        # The dialog opens again with its errors; the bar above the list keeps its own fields.
        return _render_bulk(
            request, organization, organizations, tab="all", row_snooze=RowSnooze(form, row_guarantor),
            selection=form.selection(), status=400,
        )  # fmt: skip
    return _render_bulk(
        request,
        organization,
        organizations,
        tab="all",
        snooze_form=form,
        selection=form.selection(),
        status=400,
    )


SNOOZE_CONFIRM_NAMES = 10


def _render_snooze_confirmation(
    request: HttpRequest,
    organization: Organization,
    organizations: list[Organization],
    form: SnoozeForm,
    *,
    ids: list[str],
    changed_from: str,
) -> HttpResponse:
    """The bulk snooze's confirmation: the count, the date, the reason and the first names, with the form's
    own fields carried so that Confirm posts the same snooze (recomputed then, and asked again if the list
    changed meanwhile)."""
    names = list(
        Patient.objects.filter(organization=organization, external_id__in=ids[:SNOOZE_CONFIRM_NAMES])
        .order_by("external_id")
        .values_list("first_name", "last_name")
    )
    selection = form.selection()
    context = {
        "organization": organization,
        "organizations": organizations,
        "heading": f"Snooze {len(ids)} guarantors?",
        "count": len(ids),
        "changed_from": changed_from if changed_from.isdigit() and changed_from != str(len(ids)) else "",
        "names": [f"{first} {last}".strip() for first, last in names],
        "more": max(len(ids) - SNOOZE_CONFIRM_NAMES, 0),
        "until": form.cleaned_data["until"],
        "reason": form.cleaned_data["snooze_reason"],
        "fields": [
            ("until", form.cleaned_data["until"].isoformat()),
            ("reason", form.data.get("reason", "")),
            ("reason_other", form.data.get("reason_other", "")),
            *([("select_all", "1")] if selection.everyone else []),
            *[("excluded" if selection.everyone else "selected", i) for i in selection.ids],
        ],
        "back": _bulk_url(organization, selection=selection),
    }
    return render(request, "payments/dashboard/snooze_confirm.html", context)


@login_required
@require_POST
def undo_snooze(request: HttpRequest, org: str) -> HttpResponse:
    """B3: the banner's Undo: lift the snoozes the last snooze made, if they still run."""
    organization, _ = organization_from_url(request, org)
    undo = request.session.get(SNOOZE_UNDO_KEY)
    back_to_guarantor = request.POST.get("back_to") == "guarantor"
    if not undo or undo["organization"] != organization.pk or undo["token"] != request.POST.get("token"):
        messages.warning(request, "Nothing to undo: only the latest snooze can be undone, once.")
        return redirect(_bulk_url(organization))
    del request.session[SNOOZE_UNDO_KEY]
    lifted = snooze_undo(organization=organization, snooze_ids=undo["snoozes"], **_actor(request))
    if not lifted:
        messages.info(request, "Nothing to undo: those snoozes have already ended or been lifted.")
    elif len(lifted) == 1:
        messages.success(
            request, f"Snooze undone: {lifted[0].guarantor.full_name} is back on the list if eligible."
        )
    else:
        messages.success(
            request, f"Snooze undone: {_plural(len(lifted), 'guarantor')} are back on the list if eligible."
        )
    if back_to_guarantor and len(lifted) == 1:
        return redirect(_guarantor_url(organization, lifted[0].guarantor.external_id))
    return redirect(_bulk_url(organization))


@login_required
@require_POST
def lift(request: HttpRequest, org: str) -> HttpResponse:
    """B3: lift running snoozes early, one guarantor (its own button) or the ticked ones (the Snoozed tab's
    bulk lift); they are back on the list if still eligible."""
    organization, _ = organization_from_url(request, org)
    one = request.POST.get("guarantor_id", "").strip()
    ids = [one] if one else [i.strip() for i in request.POST.getlist("selected") if i.strip()]
    back = (
        _guarantor_url(organization, one)
        if one and request.POST.get("back_to") == "guarantor"
        else _bulk_url(organization, "snoozed")
    )
    if not ids:
        messages.warning(request, "Nothing selected: tick the snoozes to lift.")
        return redirect(back)
    guarantor = guarantor_get(user=request.user, organization=organization, guarantor_id=ids[0])
    if guarantor is None:
        raise Http404
    try:
        lifted = snooze_lift(organization=organization, guarantor_ids=ids, **_actor(request))
    except SnoozeError as exc:
        messages.error(request, str(exc))
    else:
        if len(ids) > 1:
            messages.success(
                request, f"Snooze lifted for {_plural(lifted, 'guarantor')}: back on the list if eligible."
            )
        elif lifted:
            messages.success(
                request, f"Snooze lifted: {guarantor.full_name} is back on the list if eligible."
            )
        else:
            messages.info(request, f"{guarantor.full_name} had no running snooze.")
    return redirect(back)


def _guarantor_or_404(request: HttpRequest, organization: Organization, guarantor_id: str) -> Patient:
    guarantor = guarantor_get(user=request.user, organization=organization, guarantor_id=guarantor_id)
    if guarantor is None:
        raise Http404
    return guarantor


@login_required
@require_GET
def guarantor(request: HttpRequest, org: str, guarantor_id: str) -> HttpResponse:
    """B4 and R12: one guarantor, why it is or is not on the list, its requests; a single request. Its
    reminders and notices as the dunning engine has them, with K6's hold and each message's reason (D12)."""
    organization, organizations = organization_from_url(request, org)
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
    plans = guarantor_plans(user=request.user, guarantor=patient)
    _plan_explain(rules, plans, organization)
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
        "undo": _undo_banner(request, organization),
        "snooze_form": snooze_form,
        "requests": guarantor_requests(user=request.user, guarantor=patient),
        "blocked_links": guarantor_blocked_links(user=request.user, guarantor=patient),
        "consent_history": _consent_rows(patient),
        "plans": plans,
        "reminders": guarantor_reminders(user=request.user, organization=organization, guarantor=patient),
    }
    return render(request, "payments/dashboard/guarantor.html", context, status=status)


def _plan_explain(rules: list[dict[str, Any]], plans: list[PaymentPlan], organization: Organization) -> None:
    """R2 with H5: ``on_payment_plan`` alone does not say whose plan it is; an active plan the patient took here
    on the payment page is named in R2's detail, so staff do not look for it in the PMS."""
    active = next((plan for plan in plans if plan.state == PlanState.ACTIVE), None)
    if active is None:
        return
    since = timezone.localtime(active.activated_at or active.created_at, organization.tzinfo)
    for rule in rules:
        if rule["rule"] == "R2":
            rule["detail"] = (
                f"{rule['detail']}; on a payment plan taken here on the payment page "
                f"({active.get_kind_display().lower()}, since {since:%b} {since.day}, {since.year})"
            )


# The page shows the newest ledger rows; the CSV has them all.
CONSENT_ROWS_SHOWN = 100


def _consent_rows(patient: Patient) -> dict[str, Any]:
    events = list(consent_history(guarantor=patient)[: CONSENT_ROWS_SHOWN + 1])
    rows = [
        {"event": event, "kind": event_label(event), "actor": actor_label(event)}
        for event in events[:CONSENT_ROWS_SHOWN]
    ]
    return {"rows": rows, "more": len(events) > CONSENT_ROWS_SHOWN}


@login_required
@require_GET
def guarantor_consent_csv(request: HttpRequest, org: str, guarantor_id: str) -> StreamingHttpResponse:
    """K3: the guarantor's consent history as CSV, as proof (every row, newest first)."""
    organization, _organizations = organization_from_url(request, org)
    patient = _guarantor_or_404(request, organization, guarantor_id)
    ledger_export_audit(organization=organization, actor=request.user, guarantor=patient)
    lines = ledger_csv_lines(events=consent_history(guarantor=patient).iterator(), organization=organization)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"consent-{organization.slug}-{patient.external_id}.csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_POST
def guarantor_request(request: HttpRequest, org: str, guarantor_id: str) -> HttpResponse:
    """B4: a single (one-off) payment request; refused, with the failing rules, for an ineligible guarantor."""
    organization, organizations = organization_from_url(request, org)
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
    organization, _organizations = organization_from_url(request, org)
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
