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
from practices.models import Bill, BillState


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def payment_link_create(
    *, bill: Bill, now: datetime | None = None, lifetime_days: int | None = None
) -> tuple[PaymentLink, str]:
    """Create a link for ``bill`` and return it with its public URL (the token appears only in the URL).

    ``lifetime_days``: the organization's link lifetime when the caller has read its settings already."""
    moment = now or timezone.now()
    lifetime = lifetime_days
    if lifetime is None:
        payment_settings = PaymentSettings.objects.filter(organization_id=bill.organization_id).first()
        lifetime = payment_settings.link_lifetime_days if payment_settings else 30
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
    payment_settings = PaymentSettings.objects.filter(organization_id=organization_id).first()
    expires = now + timedelta(days=payment_settings.link_lifetime_days if payment_settings else 30)
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


def payment_url(token: str) -> str:
    # A short, fixed path keeps the QR code on letters small (version 2-3); the patient page serves it.
    return f"{settings.PUBLIC_BASE_URL}/p/{token}/"


def payment_link_lookup(*, token: str, now: datetime | None = None) -> PaymentLink | None:
    """The live link for ``token``: None when unknown, expired, or its campaign has ended (P1)."""
    moment = now or timezone.now()
    link = (
        PaymentLink.objects.select_related("bill__guarantor", "organization")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None or link.expires_at <= moment or link.bill.state != BillState.ACTIVE:
        return None
    return link
