"""The patient's side of payment plans and pay-later (H5), after the date of birth is verified: choose a number
of monthly installments or a date, see the schedule before confirming, save the card on the processor's hosted
page (never here: no card field in these templates), and come back to a page that says "processing" until the
processor's signed confirmation has started the plan, then shows its schedule.

The choice and the review are GETs (nothing but a count or a date in the URL, no PHI, T4), the confirmation a
POST answered by a redirect (Post/Redirect/Get). A refusal (``PlanRefused``) goes back to the choice with its
message; a processor that is down goes back to the review with "try again", and nothing was kept
(``plan_start`` creates its rows only once the processor answered).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from payments.links import payment_link_lookup
from payments.models import Checkout, CheckoutMode, PaymentLink, PlanKind, PlanState
from payments.plans import (
    PlanOptions,
    PlanRefused,
    plan_for_checkout,
    plan_options,
    plan_schedule,
    plan_start,
)
from payments.processors import configured, get_processor
from payments.processors.base import ProcessorError
from payments.views import (
    PROCESSING_PATIENCE,
    PROCESSING_REFRESH_SECONDS,
    PROCESSOR_NAMES,
    _flash_pop,
    _flash_set,
    _is_verified,
    _money,
    _next_set,
    _private,
    _unavailable,
    _verified_link,
)
from practices.timezones import organization_today

UNAVAILABLE_MESSAGE = (
    "We could not reach the payment processor. Nothing was set up and nothing was charged: please try again "
    "in a few minutes."
)


def _active_verified_link(request: HttpRequest, token: str, now: datetime) -> PaymentLink | HttpResponse:
    """The link while it lives, with the verified session (P2); otherwise the date of birth again (then back
    here) or the neutral page."""
    link = payment_link_lookup(token=token, now=now)
    if link is None:
        return _unavailable(request, token)
    if not _is_verified(request, link, now):
        _flash_set(request, link, reverify=True)
        if request.method == "GET":
            _next_set(request, link, request.get_full_path())
        return redirect("pay:link", token=token)
    return link


def _choice(request: HttpRequest) -> tuple[str, int | None, date | None, str]:
    """The kind, count and date asked for (GET or POST), and what is wrong with their form ('' when nothing)."""
    data = request.POST if request.method == "POST" else request.GET
    kind = str(data.get("kind", ""))[:20]
    months: int | None = None
    pay_date: date | None = None
    if kind == PlanKind.MONTHLY:
        raw = str(data.get("months", ""))[:4]
        if not raw.isdigit():
            return kind, None, None, "Choose how many monthly payments."
        months = int(raw)
    elif kind == PlanKind.PAY_LATER:
        raw = str(data.get("pay_date", "")).strip()[:10]
        pay_date = _date_parse(raw)
        if pay_date is None:
            return kind, None, None, "Enter the date to pay as MM/DD/YYYY."
    else:
        return "", None, None, ""
    return kind, months, pay_date, ""


def _date_parse(raw: str) -> date | None:
    """A date input's YYYY-MM-DD, or MM/DD/YYYY typed where the browser has no date picker."""
    for parse in (date.fromisoformat, lambda value: datetime.strptime(value, "%m/%d/%Y").date()):
        try:
            return parse(raw)
        except ValueError:
            continue
    return None


def _schedule_rows(schedule: list[tuple[date, Decimal]]) -> list[dict[str, Any]]:
    return [
        {"number": number, "date": due, "amount": _money(amount)}
        for number, (due, amount) in enumerate(schedule, start=1)
    ]


def _month_choices(options: PlanOptions, today: date) -> list[dict[str, Any]]:
    choices = []
    for count in options.months:
        schedule = plan_schedule(total=options.balance, count=count, first_date=today)
        first, last = schedule[0][1], schedule[-1][1]
        label = f"{count} monthly payments of {_money(first)}"
        if last != first:
            label += f" (the last {_money(last)})"
        choices.append({"count": count, "label": label})
    return choices


def _context(link: PaymentLink, options: PlanOptions, **more: Any) -> dict[str, Any]:
    return {
        "organization": link.organization,
        "first_name": link.bill.guarantor.first_name,
        "balance": _money(options.balance),
        "processor_name": PROCESSOR_NAMES.get(configured().processor, "our payment processor"),
        **more,
    }


@csrf_protect
@_private
def plan_choose(request: HttpRequest, token: str) -> HttpResponse:
    """Pay over time (``?kind=monthly``: how many months) or pay later (``?kind=pay_later``: which date)."""
    now = timezone.now()
    found = _active_verified_link(request, token, now)
    if isinstance(found, HttpResponse):
        return found
    link = found
    options = plan_options(link=link, now=now)
    today = organization_today(link.organization, at=now)
    flash = _flash_pop(request, link)
    kind = str(request.GET.get("kind", ""))
    if kind not in (PlanKind.MONTHLY, PlanKind.PAY_LATER):
        kind = PlanKind.MONTHLY if options.months else PlanKind.PAY_LATER
    context = _context(
        link, options, kind=kind, reason_none=options.reason_none, error=flash.get("error", ""),
        months=_month_choices(options, today), chosen=flash.get("months"),
        pay_later=options.pay_later, earliest=today + timedelta(days=1), latest=options.pay_later_latest,
        pay_date=flash.get("pay_date", ""), pay_url=reverse("pay:link", args=[token]),
    )  # fmt: skip
    return render(request, "payments/plan_choose.html", context)


@csrf_protect
@require_http_methods(["GET", "POST"])
@_private
def plan_review(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the schedule of the plan chosen, before anything is set up. POST: set it up and go to the
    processor's card-save page."""
    now = timezone.now()
    found = _active_verified_link(request, token, now)
    if isinstance(found, HttpResponse):
        return found
    link = found
    kind, months, pay_date, problem = _choice(request)
    choose_url = reverse("pay:plan", args=[token]) + (f"?{urlencode({'kind': kind})}" if kind else "")
    if problem or not kind:
        _flash_set(request, link, error=problem or "Choose monthly payments or a date to pay later.")
        return redirect(choose_url)
    query = urlencode({"kind": kind, "months": months} if months else {"kind": kind, "pay_date": pay_date})
    review_url = f"{reverse('pay:plan-review', args=[token])}?{query}"
    if request.method == "POST":
        try:
            page = plan_start(
                link=link, kind=kind, months=months, pay_date=pay_date, now=now,
                success_url=request.build_absolute_uri(reverse("pay:plan", args=[token])) + "{reference}/",
                cancel_url=request.build_absolute_uri(reverse("pay:cancelled", args=[token])),
            )  # fmt: skip
        except PlanRefused as exc:
            _flash_set(
                request,
                link,
                error=str(exc),
                months=months,
                pay_date=pay_date.isoformat() if pay_date else "",
            )
            return redirect(choose_url)
        except ProcessorError as exc:
            message = UNAVAILABLE_MESSAGE if exc.unavailable else str(exc)
            _flash_set(request, link, unavailable=message)
            return redirect(review_url)
        return redirect(page.url)
    options = plan_options(link=link, now=now)
    today = organization_today(link.organization, at=now)
    error = ""
    schedule: list[tuple[date, Decimal]] = []
    if options.reason_none:
        error = options.reason_none
    elif kind == PlanKind.MONTHLY:
        if months in options.months and months is not None:
            schedule = plan_schedule(total=options.balance, count=months, first_date=today)
        elif options.months:
            error = f"Choose between {options.months[0]} and {options.months[-1]} monthly payments."
        else:
            error = "This balance is too small to split into monthly payments."
    elif pay_date is not None and today < pay_date <= options.pay_later_latest:
        schedule = [(pay_date, options.balance)]
    else:
        error = f"Choose a date after today and no later than {options.pay_later_latest:%m/%d/%Y}."
    if error:
        _flash_set(
            request, link, error=error, months=months, pay_date=pay_date.isoformat() if pay_date else ""
        )
        return redirect(choose_url)
    flash = _flash_pop(request, link)
    context = _context(
        link, options, kind=kind, months=months, pay_date=pay_date.isoformat() if pay_date else "",
        schedule=_schedule_rows(schedule), unavailable=flash.get("unavailable", ""), choose_url=choose_url,
    )  # fmt: skip
    response = render(request, "payments/plan_review.html", context)
    origin = get_processor().checkout_origin
    if origin:
        # The confirmation's answer redirects to the processor's hosted page: CSP form-action covers it.
        response._csp_update = {"form-action": [origin]}  # type: ignore[attr-defined]
    return response


@_private
def plan_done(request: HttpRequest, token: str, reference: str) -> HttpResponse:
    """Where the processor sends the patient back from saving the card: "processing" (reloading itself) until
    the signed confirmation has started the plan, then its schedule. It keeps working once the plan has closed
    the campaign (D11), with the verified session."""
    now = timezone.now()
    found = _verified_link(request, token, now)
    if isinstance(found, HttpResponse):
        return found
    link = found
    checkout = Checkout.objects.filter(link=link, reference=reference, mode=CheckoutMode.SETUP).first()
    plan = plan_for_checkout(checkout) if checkout is not None else None
    if checkout is None or plan is None:
        return _unavailable(request, token)
    context: dict[str, Any] = {
        "organization": link.organization,
        "plan": plan,
        "total": _money(plan.total),
        "pay_url": reverse("pay:link", args=[token]),
    }
    if plan.state == PlanState.PENDING_CARD:
        waiting = now - checkout.created_at < PROCESSING_PATIENCE + timedelta(minutes=30)
        context["refresh"] = PROCESSING_REFRESH_SECONDS if waiting else None
        return render(request, "payments/plan_processing.html", context)
    installments = list(plan.installments.order_by("sequence"))
    context["schedule"] = [
        {"number": i.sequence, "date": i.due_date, "amount": _money(i.amount), "state": i.get_state_display()}
        for i in installments
    ]
    context["email"] = bool(link.bill.guarantor.email)
    return render(request, "payments/plan_done.html", context)
