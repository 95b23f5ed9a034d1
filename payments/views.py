"""The patient payment page (P1-P3, H1, H2, H4, T4): verify MM/YYYY, show what is owed, choose an amount, pay on
the processor's hosted page, come back to "processing" and then the receipt (with its PDF).

Nothing about the patient or the balance is rendered before the date of birth matches. No card field exists
here: the card is typed on the processor's page (PCI DSS SAQ A), and a payment shows only once the processor's
signed confirmation has recorded it. Every response carries ``Cache-Control: no-store`` and
``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from notifications.paylinks import MESSAGE_PARAMETER
from payments.checkout import (
    DobOutcome,
    PaymentRefused,
    PaymentUnavailable,
    account_aging_now,
    amount_bounds,
    amount_parse,
    checkout_begin,
    dob_locked,
    dob_verify,
    month_year_parse,
)
from payments.links import hash_token, payment_link_lookup
from payments.models import Checkout, Payment, PaymentKind, PaymentLink, PaymentStatus
from payments.plans import plan_options
from payments.processors import configured, get_processor
from payments.receipts import receipt_for, receipt_pdf
from payments.results.services import link_opened, link_verified
from practices.models import Account, AgingCategory, Organization

SESSION_KEY = "pay_verified"
FLASH_KEY = "pay_flash"
NEXT_KEY = "pay_next"
VERIFIED_FOR = timedelta(minutes=30)
MISMATCH_MESSAGE = "We could not verify those details."
BLOCKED_MESSAGE = "For your security this link no longer works after too many attempts."
CANCELLED_MESSAGE = "You left the payment page. Nothing was charged."
# The return page reloads itself while the confirmation is on its way; past this it stops and says so.
PROCESSING_REFRESH_SECONDS = 3
PROCESSING_PATIENCE = timedelta(minutes=5)
PROCESSOR_NAMES = {"sandbox": "the sandbox test processor", "stripe": "Stripe"}
BUCKET_LABELS = [
    ("0_30", "0–30 days"),
    ("31_60", "31–60 days"),
    ("61_90", "61–90 days"),
    ("over_90", "Over 90 days"),
]


class DobForm(forms.Form):
    dob = forms.CharField(label="Date of birth (MM/YYYY)", max_length=20)

    def clean_dob(self) -> str:
        value = self.cleaned_data["dob"]
        try:
            month_year_parse(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return value.strip()


def _private(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """No caching anywhere, no token leaking to other sites through the Referer header (T4)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the page's own form
        # posts and the CSRF check refuses them; same-origin still keeps the token from other sites.
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return never_cache(wrapper)


def _money(amount: Decimal) -> str:
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def _is_verified(request: HttpRequest, link: PaymentLink, now: datetime) -> bool:
    stamp = request.session.get(SESSION_KEY, {}).get(str(link.pk))
    return stamp is not None and 0 <= now.timestamp() - stamp < VERIFIED_FOR.total_seconds()


def _mark_verified(request: HttpRequest, link: PaymentLink, now: datetime) -> None:
    request.session.cycle_key()
    fresh = {
        key: stamp
        for key, stamp in request.session.get(SESSION_KEY, {}).items()
        if now.timestamp() - stamp < VERIFIED_FOR.total_seconds()
    }
    fresh[str(link.pk)] = now.timestamp()
    request.session[SESSION_KEY] = fresh


def _unavailable(request: HttpRequest, token: str) -> HttpResponse:
    known = PaymentLink.objects.select_related("organization").filter(token_hash=hash_token(token)).first()
    organization: Organization | None = known.organization if known else None
    return render(request, "payments/link_unavailable.html", {"organization": organization}, status=404)


@sensitive_post_parameters("dob")
@csrf_protect
@_private
def pay_link(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    link = payment_link_lookup(token=token, now=now)
    if link is None:
        return _unavailable(request, token)
    if request.method == "GET" and request.GET.get(MESSAGE_PARAMETER):
        # V2: which message's link this is (``?m=``); a reference of another campaign records nothing.
        link_opened(bill=link.bill, message_ref=request.GET[MESSAGE_PARAMETER], at=now)
    if not _is_verified(request, link, now):
        return _verify(request, link, token, now)
    return _pay(request, link, token, now)


def _verify(request: HttpRequest, link: PaymentLink, token: str, now: datetime) -> HttpResponse:
    if request.method == "POST":
        # Post/Redirect/Get: every answer to a POST is a redirect, so Back never offers to post again.
        if request.POST.get("step") != "verify":
            _flash_set(request, link, reverify=True)  # a payment posted after the verification ran out
            return redirect("pay:link", token=token)
        form = DobForm(request.POST)
        if not form.is_valid():
            _flash_set(request, link, dob_errors=list(form.errors.get("dob", [])))
            return redirect("pay:link", token=token)
        outcome = dob_verify(link=link, month_year=form.cleaned_data["dob"], now=now)
        if outcome == DobOutcome.VERIFIED:
            _mark_verified(request, link, now)
            link_verified(bill=link.bill, at=now)  # V2: for the most recent opened message of the campaign
            following = _next_pop(request, link)
            if following:
                return redirect(following)
        elif outcome == DobOutcome.MISMATCH:
            _flash_set(request, link, error=MISMATCH_MESSAGE)
        # LOCKED and BLOCKED need no message of their own: the page reads them from the link.
        return redirect("pay:link", token=token)
    flash = _flash_pop(request, link)
    if link.bill.guarantor.date_of_birth is None:
        # P2 asks for the date of birth on file; without one the page cannot verify anyone, so it asks for
        # nothing and sends the patient to the practice (I1a: a PMS's "no date" is no date of birth).
        context = {"organization": link.organization, "no_date_of_birth": True}
        return render(request, "payments/verify.html", context)
    blocked = link.blocked_at is not None
    locked = not blocked and dob_locked(link=link, now=now)
    if blocked:
        error = BLOCKED_MESSAGE
    elif locked and link.locked_until is not None:
        error = _locked_message(link.locked_until, now)
    else:
        error = str(flash.get("error", ""))
    context = {
        "organization": link.organization,
        "form": DobForm(),
        "dob_errors": [] if blocked or locked else flash.get("dob_errors", []),
        "error": error,
        "reverify": bool(flash.get("reverify")),
        "link_blocked": blocked,
        "locked": locked,
    }
    return render(request, "payments/verify.html", context)


def _pay(request: HttpRequest, link: PaymentLink, token: str, now: datetime) -> HttpResponse:
    bill = link.bill
    if request.method == "POST":
        # Post/Redirect/Get: the amount goes to the processor's hosted page, anything else back to this page
        # with what to fix, so Back never offers to post again.
        if request.POST.get("step") != "pay":
            return redirect("pay:link", token=token)  # e.g. the date of birth sent twice
        raw = str(request.POST.get("amount", ""))[:20]
        try:
            _checkout, url = checkout_begin(
                link=link, amount=amount_parse(raw), now=now,
                success_url=lambda ref: request.build_absolute_uri(reverse("pay:done", args=[token, ref])),
                cancel_url=request.build_absolute_uri(reverse("pay:cancelled", args=[token])),
            )  # fmt: skip
        except PaymentRefused as exc:
            _flash_set(request, link, errors={"amount": [str(exc)]}, amount=raw)
            return redirect("pay:link", token=token)
        except PaymentUnavailable as exc:
            _flash_set(request, link, unavailable=str(exc), amount=raw)
            return redirect("pay:link", token=token)
        return redirect(url)
    flash = _flash_pop(request, link)
    errors: dict[str, list[str]] = flash.get("errors", {})
    account = Account.objects.filter(guarantor_id=bill.guarantor_id).first()
    aging: list[tuple[str, str]] = []
    aging_category = ""
    if account is not None:
        now_owed = account_aging_now(account=account)
        aging = [(label, _money(now_owed.buckets[key])) for key, label in BUCKET_LABELS]
        aging_category = AgingCategory(now_owed.category).label if now_owed.category else ""
    bounds = amount_bounds(bill=bill)
    context = {
        "organization": link.organization,
        "first_name": bill.guarantor.first_name,
        "amount_due": _money(bill.amount_due),
        "aging": aging,
        "aging_category": aging_category,
        "errors": errors,
        "amount_value": flash.get("amount", f"{bill.amount_due:.2f}"),
        "minimum": _money(bounds.minimum),
        "maximum": _money(bounds.maximum),
        "partial_allowed": bounds.minimum < bounds.maximum,
        "unavailable": flash.get("unavailable", ""),
        "cancelled": flash.get("cancelled", False),
        "processor_name": PROCESSOR_NAMES.get(configured().processor, "our payment processor"),
        "plans": _plans_offered(link, now),
    }
    response = render(request, "payments/pay.html", context)
    origin = get_processor().checkout_origin
    if origin:
        # The form's answer redirects to the processor's hosted page: CSP form-action covers that redirect.
        response._csp_update = {"form-action": [origin]}  # type: ignore[attr-defined]
    return response


def _plans_offered(link: PaymentLink, now: datetime) -> dict[str, Any]:
    """H5: what the page offers beside paying now: monthly installments, pay-later, or why neither."""
    options = plan_options(link=link, now=now)
    return {
        "monthly": bool(options.months),
        "pay_later": options.pay_later,
        "latest": options.pay_later_latest,
        "reason_none": options.reason_none,
    }


def _flash_set(request: HttpRequest, link: PaymentLink, **state: Any) -> None:
    """What the page after this POST's redirect must say (an error, the amount typed), kept in the session
    for that one page, per link. Never card details."""
    flashes = dict(request.session.get(FLASH_KEY, {}))
    flashes[str(link.pk)] = state
    request.session[FLASH_KEY] = flashes


def _flash_pop(request: HttpRequest, link: PaymentLink) -> dict[str, Any]:
    flashes = dict(request.session.get(FLASH_KEY, {}))
    state: dict[str, Any] = flashes.pop(str(link.pk), {})
    if state:
        request.session[FLASH_KEY] = flashes
    return state


def _next_set(request: HttpRequest, link: PaymentLink, path: str) -> None:
    """Where to go once the date of birth is confirmed again (the return page, after the verification ran out
    on the processor's page)."""
    following = dict(request.session.get(NEXT_KEY, {}))
    following[str(link.pk)] = path
    request.session[NEXT_KEY] = following


def _next_pop(request: HttpRequest, link: PaymentLink) -> str:
    following = dict(request.session.get(NEXT_KEY, {}))
    path = str(following.pop(str(link.pk), ""))
    if path:
        request.session[NEXT_KEY] = following
    return path if path.startswith("/p/") else ""


def _locked_message(locked_until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
    return f"Too many attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."


def _verified_link(request: HttpRequest, token: str, now: datetime) -> PaymentLink | HttpResponse:
    """The link of ``token`` for a page after a payment (the return page, the receipt), which must keep working
    once the payment ended the campaign; only with the verified session (P2). Otherwise a response: the date
    of birth again while the link lives (then back here), else the neutral page."""
    link = (
        PaymentLink.objects.select_related("organization", "bill__guarantor")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is not None and _is_verified(request, link, now):
        return link
    if link is not None and payment_link_lookup(token=token, now=now) is not None:
        _flash_set(request, link, reverify=True)
        _next_set(request, link, request.get_full_path())
        return redirect("pay:link", token=token)
    return _unavailable(request, token)


@_private
def checkout_done(request: HttpRequest, token: str, reference: str) -> HttpResponse:
    """H2: where the processor sends the patient back. "Processing" (reloading itself) until the signed
    confirmation has recorded the payment, then the receipt."""
    now = timezone.now()
    found = _verified_link(request, token, now)
    if isinstance(found, HttpResponse):
        return found
    link = found
    checkout = Checkout.objects.filter(link=link, reference=reference).first()
    if checkout is None:
        return _unavailable(request, token)
    payment = checkout.payments.filter(kind=PaymentKind.PAYMENT, status=PaymentStatus.SUCCEEDED).first()
    if payment is not None:
        return redirect("pay:receipt", token=token, payment_id=payment.pk)
    waiting = now - checkout.created_at < PROCESSING_PATIENCE + timedelta(minutes=30)
    context = {
        "organization": link.organization,
        "amount": _money(checkout.amount or Decimal("0.00")),
        "refresh": PROCESSING_REFRESH_SECONDS if waiting else None,
        "pay_url": reverse("pay:link", args=[token]),
        "email": bool(link.bill.guarantor.email),
    }
    return render(request, "payments/processing.html", context)


@_private
def checkout_cancelled(request: HttpRequest, token: str) -> HttpResponse:
    """The processor's "back" link: nothing was charged; the payment page says so."""
    now = timezone.now()
    link = payment_link_lookup(token=token, now=now)
    if link is None:
        return _unavailable(request, token)
    _flash_set(request, link, cancelled=True)
    return redirect("pay:link", token=token)


def _payment_of_link(link: PaymentLink, payment_id: int) -> Payment | None:
    return (
        Payment.objects.select_related("organization", "bill__guarantor")
        .prefetch_related("returns")
        .filter(link=link, pk=payment_id, kind=PaymentKind.PAYMENT, status=PaymentStatus.SUCCEEDED)
        .first()
    )


@_private
def receipt(request: HttpRequest, token: str, payment_id: int) -> HttpResponse:
    now = timezone.now()
    found = _verified_link(request, token, now)
    if isinstance(found, HttpResponse):
        return found
    payment = _payment_of_link(found, payment_id)
    if payment is None:
        return _unavailable(request, token)
    context = {
        "organization": found.organization,
        "receipt": receipt_for(payment=payment),
        "pdf_url": reverse("pay:receipt-pdf", args=[token, payment.pk]),
        "emailed": bool(payment.bill.guarantor.email),
    }
    return render(request, "payments/receipt.html", context)


@_private
def receipt_download(request: HttpRequest, token: str, payment_id: int) -> HttpResponse:
    """H4: the receipt as a PDF."""
    now = timezone.now()
    found = _verified_link(request, token, now)
    if isinstance(found, HttpResponse):
        return found
    payment = _payment_of_link(found, payment_id)
    if payment is None:
        return _unavailable(request, token)
    response = HttpResponse(receipt_pdf(payment=payment), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="receipt-{payment.pk}.pdf"'
    return response
