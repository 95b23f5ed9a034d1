"""K5 number checks: Twilio Lookup's line type for a number the front desk quick-adds, before its first text.

A number is looked up once per organization (the answer is kept in ``NumberLookup``; a Lookup is a paid
request). A known type that cannot take a text (a landline, fixed VoIP, toll-free, ...) is refused with words
for the front desk; a mobile number goes. When no answer can be had (no Twilio credentials, Twilio down or
slow, the request refused) the number is allowed and the front desk is told it was not checked: the text then
fails as it did before the check existed, and comes back on the undeliverable list (docs/decisions.md, K5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import NumberLookup
from notifications.providers.twilio import LookupUnavailable, lookup_line_type
from practices.models import Organization
from practices.services import audit_record

logger = logging.getLogger(__name__)

# Lookup v2's type values, in the front desk's words (https://www.twilio.com/docs/lookup/v2-api/line-type-intelligence).
LINE_TYPE_WORDS = {
    "landline": "a landline",
    "fixedVoip": "a home or office internet phone line (fixed VoIP)",
    "tollFree": "a toll-free number",
    "premium": "a premium-rate number",
    "sharedCost": "a shared-cost number",
    "uan": "a company switchboard number",
    "voicemail": "a voicemail access number",
    "pager": "a pager",
}


@dataclass(frozen=True)
class NumberCheck:
    """The outcome of checking one number: ``lookup`` is the kept answer, None when none could be had."""

    number: str
    lookup: NumberLookup | None
    fresh: bool = False  # asked of Twilio just now (paid), not read from an earlier answer

    @property
    def checked(self) -> bool:
        """True when Twilio told the line type."""
        return self.lookup is not None and self.lookup.line_type not in ("", "unknown")

    @property
    def textable(self) -> bool:
        return self.lookup is None or self.lookup.textable

    @property
    def outcome(self) -> str:
        """For the audit log: the line type, ``unknown`` (Twilio could not tell) or ``unavailable``."""
        if self.lookup is None:
            return "unavailable"
        return self.lookup.line_type or "unknown"

    @property
    def refusal(self) -> str:
        """Why the number cannot be used, for the front desk ("" when it can)."""
        if self.textable or self.lookup is None:
            return ""
        words = LINE_TYPE_WORDS.get(self.lookup.line_type, f"a {self.lookup.line_type} line")
        carrier = f" ({self.lookup.carrier_name})" if self.lookup.carrier_name else ""
        return (
            f"This number is {words}{carrier} and cannot receive texts. Nothing was sent and the number was "
            "not saved. Ask the patient for a mobile number."
        )

    @property
    def notice(self) -> str:
        """What the front desk should know about a number that was allowed ("" when it was checked)."""
        if self.checked:
            return ""
        if self.lookup is None:
            return (
                "The number could not be checked with the phone carrier, so it may not be able to take texts."
            )
        return "The phone carrier could not say whether this number takes texts."


def number_check(
    *, organization: Organization, number: str, actor: Any = None, now: datetime | None = None
) -> NumberCheck:
    """Check ``number`` (E.164) for ``organization``: the kept answer, else one Lookup request, kept and audited.

    Called outside any transaction holding locks: the request can take up to LOOKUP_TIMEOUT_SECONDS."""
    kept = NumberLookup.objects.filter(organization=organization, number=number).first()
    if kept is not None:
        return NumberCheck(number=number, lookup=kept)
    moment = now or timezone.now()
    if not settings.TWILIO_ENABLED:
        # Offline (no Twilio credentials): nothing is sent by text either, so nothing is asked or paid for.
        return NumberCheck(number=number, lookup=None)
    try:
        line = lookup_line_type(number)
    except LookupUnavailable as exc:
        logger.warning(
            "K5 lookup of a quick-added number of organization %s failed: %s", organization.pk, exc
        )
        audit_record(
            organization=organization, actor=actor, action="number.lookup",
            changes={"number_last4": number[-4:], "outcome": "unavailable", "error": str(exc)[:200]},
        )  # fmt: skip
        return NumberCheck(number=number, lookup=None)
    try:
        with transaction.atomic():
            lookup = NumberLookup.objects.create(
                organization=organization, number=number, line_type=line.type[:20],
                carrier_name=line.carrier_name[:200], error_code=line.error_code, checked_at=moment,
            )  # fmt: skip
    except IntegrityError:
        # Another member checked the same number at the same moment; theirs is kept.
        return NumberCheck(
            number=number, lookup=NumberLookup.objects.get(organization=organization, number=number)
        )
    audit_record(
        organization=organization, actor=actor, action="number.lookup", obj=lookup,
        changes={"number_last4": number[-4:], "outcome": lookup.line_type or "unknown",
                 "carrier_name": lookup.carrier_name, "error_code": lookup.error_code, "textable": lookup.textable},
    )  # fmt: skip
    return NumberCheck(number=number, lookup=lookup, fresh=True)
