"""The patient payment page (P1-P3, T4): verify MM/YYYY, show what is owed, take a payment, show a receipt.

Nothing about the patient or the balance is rendered before the date of birth matches. Every response
carries ``Cache-Control: no-store`` and ``Referrer-Policy: same-origin``; card fields are never echoed back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from payments.checkout import (
    Card,
    DobOutcome,
    PaymentRefused,
    account_aging_now,
    dob_locked,
    dob_verify,
    month_year_parse,
    payment_take,
)
from payments.links import hash_token, payment_link_lookup
from payments.models import PaymentLink, PaymentStatus
from practices.models import Account, AgingCategory, Organization

SESSION_KEY = "pay_verified"
FLASH_KEY = "pay_flash"
VERIFIED_FOR = timedelta(minutes=30)
MISMATCH_MESSAGE = "We could not verify those details."
BLOCKED_MESSAGE = "For your security this link no longer works after too many attempts."
EXPIRY = re.compile(r"^\s*(0[1-9]|1[0-2])\s*/\s*(\d{2})\s*$")
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


class PayForm(forms.Form):
    amount = forms.DecimalField(label="Amount", max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    card_number = forms.CharField(label="Card number", max_length=30)
    expiry = forms.CharField(label="Expiry (MM/YY)", max_length=7)
    cvc = forms.CharField(label="Security code (CVC)", max_length=4)

    def clean_card_number(self) -> str:
        digits = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise forms.ValidationError("Enter the card number (digits only).")
        return digits

    def clean_expiry(self) -> tuple[int, int]:
        match = EXPIRY.match(self.cleaned_data["expiry"])
        if match is None:
            raise forms.ValidationError("Enter the expiry date as MM/YY.")
        return int(match.group(1)), 2000 + int(match.group(2))

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not cvc.isdigit() or len(cvc) not in (3, 4):
            raise forms.ValidationError("Enter the 3 or 4 digit security code.")
        return cvc


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


@sensitive_post_parameters("dob", "card_number", "expiry", "cvc")
@csrf_protect
@_private
def pay_link(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    link = payment_link_lookup(token=token, now=now)
    if link is None:
        return _unavailable(request, token)
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


@sensitive_variables("form", "card")
def _pay(request: HttpRequest, link: PaymentLink, token: str, now: datetime) -> HttpResponse:
    bill = link.bill
    if request.method == "POST":
        # Post/Redirect/Get: a payment answers with the receipt, anything else with this page and what to fix
        # (never the card details, which are typed again), so Back never offers to post again.
        if request.POST.get("step") != "pay":
            return redirect("pay:link", token=token)  # e.g. the date of birth sent twice
        form = PayForm(request.POST)
        declined = ""
        if form.is_valid():
            exp_month, exp_year = form.cleaned_data["expiry"]
            card = Card(
                number=form.cleaned_data["card_number"], exp_month=exp_month, exp_year=exp_year,
                cvc=form.cleaned_data["cvc"],
            )  # fmt: skip
            try:
                outcome = payment_take(link=link, amount=form.cleaned_data["amount"], card=card, now=now)
            except PaymentRefused as exc:
                form.add_error("amount", str(exc))
            else:
                payment = outcome.payment
                if payment.status == PaymentStatus.SUCCEEDED:
                    return redirect("pay:receipt", token=token, payment_id=payment.pk)
                declined = f"{outcome.message} No payment was taken."
        amount = str(request.POST.get("amount", ""))[:20]
        refused = {field: list(messages) for field, messages in form.errors.items()}
        _flash_set(request, link, errors=refused, declined=declined, amount=amount)
        return redirect("pay:link", token=token)
    flash = _flash_pop(request, link)
    errors: dict[str, list[str]] = flash.get("errors", {})
    account = Account.objects.filter(guarantor_id=bill.guarantor_id).first()
    aging: list[tuple[str, str]] = []
    aging_category = ""
    if account is not None:
        now_owed = account_aging_now(account=account)
        aging = [(label, _money(now_owed.buckets[key])) for key, label in BUCKET_LABELS]
        aging_category = AgingCategory(now_owed.category).label if now_owed.category else ""
    context = {
        "organization": link.organization,
        "first_name": bill.guarantor.first_name,
        "amount_due": _money(bill.amount_due),
        "aging": aging,
        "aging_category": aging_category,
        "form": PayForm(),
        "errors": errors,
        "non_field_errors": errors.get(NON_FIELD_ERRORS, []),
        "amount_value": flash.get("amount", f"{bill.amount_due:.2f}"),
        "declined": flash.get("declined", ""),
    }
    return render(request, "payments/pay.html", context)


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


def _locked_message(locked_until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
    return f"Too many attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."


@_private
def receipt(request: HttpRequest, token: str, payment_id: int) -> HttpResponse:
    now = timezone.now()
    link = (
        PaymentLink.objects.select_related("organization", "bill")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None or not _is_verified(request, link, now):
        if link is not None and payment_link_lookup(token=token, now=now) is not None:
            return redirect("pay:link", token=token)
        return _unavailable(request, token)
    payment = link.payment_set.filter(pk=payment_id, status=PaymentStatus.SUCCEEDED).first()
    if payment is None:
        return _unavailable(request, token)
    organization = link.organization
    paid_at = timezone.localtime(payment.created_at, organization.tzinfo)
    context = {
        "organization": organization,
        "amount_paid": _money(payment.amount),
        "remaining": _money(max(link.bill.amount_due, Decimal("0.00"))),
        "reference": payment.gateway_reference,
        "card_last4": payment.card_last4,
        "paid_at": f"{paid_at:%B} {paid_at.day}, {paid_at:%Y}",
        "paid_in_full": link.bill.amount_due <= 0,
    }
    return render(request, "payments/receipt.html", context)
