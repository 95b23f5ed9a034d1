"""Payment links (P1): an unguessable token (192 bits) per campaign, only its SHA-256 stored, expiring."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from payments.models import PaymentLink, PaymentSettings
from practices.bulk import bulk_insert
from practices.models import BILL_OWING_STATES, Bill


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def payment_link_create(
    *, bill: Bill, now: datetime | None = None, lifetime_days: int | None = None
) -> tuple[PaymentLink, str]:
    """Create a link for ``bill`` and return it with its public URL (the token appears only in the URL).

    ``lifetime_days``: the organization's link lifetime when the caller has read its settings already."""
    moment = now or timezone.now()
    lifetime = _lifetime_days(bill.organization_id) if lifetime_days is None else lifetime_days
    token = secrets.token_urlsafe(24)
    link = PaymentLink.objects.create(
        organization_id=bill.organization_id, bill=bill, token_hash=hash_token(token),
        expires_at=moment + timedelta(days=lifetime),
    )  # fmt: skip
    return link, payment_url(token)


def payment_links_create(*, organization_id: int, bill_ids: Sequence[int], now: datetime) -> dict[int, str]:
    """One new link per bill of ``bill_ids``, written in one batch (a dunning run); bill id → public URL."""
    if not bill_ids:
        return {}
    expires = now + timedelta(days=_lifetime_days(organization_id))
    urls: dict[int, str] = {}
    rows = []
    for bill_id in bill_ids:
        token = secrets.token_urlsafe(24)
        urls[bill_id] = payment_url(token)
        rows.append((organization_id, bill_id, hash_token(token), now, expires, 0))
    bulk_insert(
        PaymentLink, rows,
        columns=["organization_id", "bill_id", "token_hash", "created_at", "expires_at", "failed_attempts"],
    )  # fmt: skip
    return urls


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
