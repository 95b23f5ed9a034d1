"""Payment links (P1): an unguessable token (192 bits) per campaign, never stored: the link keeps its SHA-256,
a message the reference the token is derived from with the server's secret key; expiring."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

from payments.models import PaymentLink, PaymentSettings
from practices.bulk import bulk_insert
from practices.models import BILL_OWING_STATES, Bill

_TOKEN_SALT = "payments.links.token"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def payment_ref() -> str:
    """A new link reference: random, and useless without the server's secret key (``token_for``)."""
    return secrets.token_urlsafe(16)


def token_for(ref: str) -> str:
    """The link token of ``ref``: an HMAC of it under the server's secret key, 192 bits as base64url (32
    characters, so a letter's QR code stays small). Neither the token nor anything that yields it without the
    key is stored: the link keeps its SHA-256, a message its reference (issue 11, P1, T4)."""
    digest = hmac.new(_token_key(settings.SECRET_KEY), ref.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


@lru_cache(maxsize=4)
def _token_key(secret: str) -> bytes:
    # Django's salted_hmac derivation, computed once per secret instead of once per link (a first dunning
    # run issues a million links).
    return hashlib.sha256((_TOKEN_SALT + secret).encode()).digest()


def payment_url_for_ref(ref: str) -> str:
    return payment_url(token_for(ref))


def payment_link_issue(
    *, bill: Bill, now: datetime | None = None, lifetime_days: int | None = None
) -> tuple[PaymentLink, str]:
    """Create a link for ``bill``; return it with its reference (what a message keeps, ``token_for``).

    ``lifetime_days``: the organization's link lifetime when the caller has read its settings already."""
    moment = now or timezone.now()
    lifetime = _lifetime_days(bill.organization_id) if lifetime_days is None else lifetime_days
    ref = payment_ref()
    link = PaymentLink.objects.create(
        organization_id=bill.organization_id, bill=bill, token_hash=hash_token(token_for(ref)),
        expires_at=moment + timedelta(days=lifetime),
    )  # fmt: skip
    return link, ref


def payment_link_create(
    *, bill: Bill, now: datetime | None = None, lifetime_days: int | None = None
) -> tuple[PaymentLink, str]:
    """``payment_link_issue`` with the public URL instead of the reference (a link handed out at once)."""
    link, ref = payment_link_issue(bill=bill, now=now, lifetime_days=lifetime_days)
    return link, payment_url_for_ref(ref)


def payment_links_create(*, organization_id: int, bill_ids: Sequence[int], now: datetime) -> dict[int, str]:
    """One new link per bill of ``bill_ids``, written in one batch (a dunning run); bill id → reference."""
    if not bill_ids:
        return {}
    expires = now + timedelta(days=_lifetime_days(organization_id))
    refs: dict[int, str] = {}
    rows = []
    for bill_id in bill_ids:
        ref = refs[bill_id] = payment_ref()
        rows.append((organization_id, bill_id, hash_token(token_for(ref)), now, expires, 0))
    bulk_insert(
        PaymentLink, rows,
        columns=["organization_id", "bill_id", "token_hash", "created_at", "expires_at", "failed_attempts"],
    )  # fmt: skip
    return refs


def _lifetime_days(organization_id: int) -> int:
    """The organization's link lifetime (P1): its payment settings, or the model's default without a row."""
    row = (
        PaymentSettings.objects.filter(organization_id=organization_id)
        .values_list("link_lifetime_days")
        .first()
    )
    return row[0] if row else PaymentSettings._meta.get_field("link_lifetime_days").default


def payment_url(token: str) -> str:
    # A short, fixed path keeps the QR code on letters small (version 2-3); the patient page serves it.
    return f"{settings.PUBLIC_BASE_URL}/p/{token}/"


def payment_link_lookup(*, token: str, now: datetime | None = None) -> PaymentLink | None:
    """The live link for ``token``: None when unknown, expired, or its campaign has ended (P1: paid or closed;
    a completed bill still owes and its link keeps working, D11)."""
    moment = now or timezone.now()
    link = (
        PaymentLink.objects.select_related("bill__guarantor", "organization")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None or link.expires_at <= moment or link.bill.state not in BILL_OWING_STATES:
        return None
    return link
