"""Message templates (N4): a small placeholder language, its validation, rendering and SMS length.

The syntax is ``{{ name }}`` over a fixed list of names, rendered by a regular expression. The Django
template engine is deliberately not used: templates are edited by billing managers, and tags, filters or
attribute access would let a template reach data (and PHI) that no one reviewed for a message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db.models import F, Q

from notifications.models import Channel, Template, TemplateTranslation
from notifications.paylinks import PAY_URL
from practices.phones import phone_display

if TYPE_CHECKING:
    from practices.models import Organization

PLACEHOLDERS: dict[str, str] = {
    "patient.first_name": "The name the guarantor goes by: the PMS's preferred name, else the first name (a "
    "business or an estate: its name).",
    "patient.last_name": "The guarantor's last name (email and paper only).",
    "practice.name": "The practice's name.",
    "practice.phone": "The practice's phone number for billing questions, e.g. (801) 555-0199; 'the office' "
    "when the practice has no phone on file.",
    "amount_due": "The amount due, e.g. $120.00.",
    "pay_url": "The secure payment link (P1); it carries no patient data.",
    "due_date": "The bill's due date, e.g. Dec 10, 2026; 'upon receipt' when the bill has none.",
    "statement_date": "The statement date, e.g. Nov 20, 2026 (email and paper only).",
}

# Minimum necessary (N4, T4): an SMS may be read on a lock screen or a shared phone, so it names the patient
# by first name only and carries nothing that identifies a visit. The names that are not placeholders at
# all are listed so that such a template is refused with the reason rather than as a typo.
SMS_FORBIDDEN: frozenset[str] = frozenset(
    {
        "patient.last_name",
        "patient.full_name",
        "patient.date_of_birth",
        "patient.address",
        "patient.email",
        "patient.mobile_phone",
        "statement_date",
        "last_visit_date",
        "procedure",
        "diagnosis",
        "provider",
        "insurance",
    }
)

OPT_OUT_HINT = "Reply STOP to opt out"

_TOKEN = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[a-z][a-z_]*(?:\.[a-z][a-z_]*)?")
_TAG = re.compile(r"\{%|%\}|\{#|#\}")
_STOP = re.compile(r"\bSTOP\b", re.IGNORECASE)

# GSM 03.38: the basic set (one septet) and the extension table (escape + septet, two units).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_7, UCS_2 = "GSM-7", "UCS-2"

_CENT = Decimal("0.01")
# What {{ practice.phone }} says when the practice has no phone on file: "please call us at the office."
# reads as a sentence, where an empty value printed "please call us at ." (issue 12).
NO_PHONE = "the office"

ENGLISH = "en"
# §13.2: the values a placeholder takes in a patient's language (English for any other). The Spanish
# defaults say "vence {{ due_date }}" and "llámenos a {{ practice.phone }}", so the values carry their
# article: "el 10 dic. 2026", "al recibirlo", "la oficina".
_SPANISH_MONTHS = (
    "ene.",
    "feb.",
    "mar.",
    "abr.",
    "may.",
    "jun.",
    "jul.",
    "ago.",
    "sept.",
    "oct.",
    "nov.",
    "dic.",
)
_NO_PHONE_IN = {"es": "la oficina"}
_UPON_RECEIPT_IN = {"es": "al recibirlo"}


class TemplateError(ValueError):
    """A template that cannot be saved; ``field`` names the form field at fault (body or subject)."""

    def __init__(self, message: str, *, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


def placeholders_in(text: str) -> list[str]:
    """The placeholder names used in ``text``, in order of first use (syntax errors raise TemplateError)."""
    if match := _TAG.search(text):
        raise TemplateError(
            f"Template tags and comments such as “{match.group()}” are not supported; "
            "use only placeholders like {{ patient.first_name }}."
        )
    names: list[str] = []
    for token in _TOKEN.finditer(text):
        inner = token.group(1).strip()
        if "|" in inner:
            raise TemplateError(
                f"Filters are not supported: “{token.group()}”. Use the placeholder on its own, "
                f"e.g. {{{{ {inner.split('|')[0].strip()} }}}}."
            )
        if not _NAME.fullmatch(inner):
            raise TemplateError(f"“{token.group()}” is not a placeholder; write {{{{ name }}}}.")
        if inner not in names:
            names.append(inner)
    leftover = _TOKEN.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("Unbalanced braces: every “{{” needs a matching “}}”.")
    return names


def validate(*, channel: str, body: str, subject: str = "") -> None:
    """Raise TemplateError when a template of ``channel`` may not be saved (N4)."""
    if not body.strip():
        raise TemplateError("The body is empty.")
    for field, text in (("subject", subject), ("body", body)):
        try:
            names = placeholders_in(text)
        except TemplateError as exc:
            raise TemplateError(str(exc), field=field) from exc
        if channel == Channel.SMS:
            refused = [name for name in names if name in SMS_FORBIDDEN]
            if refused:
                raise TemplateError(
                    f"Not allowed in a text message (minimum necessary): {_braced(refused)}. "
                    "SMS may use the first name, the practice, the amount, the due date and the link.",
                    field=field,
                )
        unknown = [name for name in names if name not in PLACEHOLDERS]
        if unknown:
            raise TemplateError(
                f"Unknown placeholder{'s' if len(unknown) > 1 else ''}: {_braced(unknown)}. "
                f"Allowed: {_braced(list(PLACEHOLDERS))}.",
                field=field,
            )
    if channel == Channel.SMS and not _STOP.search(body):
        raise TemplateError(f"A text message must tell the patient how to opt out, e.g. “{OPT_OUT_HINT}”.")
    if channel == Channel.EMAIL and not subject.strip():
        raise TemplateError("An email needs a subject.", field="subject")


def render(*, body: str, values: Mapping[str, str]) -> str:
    """``body`` with each ``{{ name }}`` replaced by its value; a missing value renders as ''."""
    out = []
    for literal, name in _parts(body):
        if name is None:
            out.append(literal)
        else:
            value = values.get(name)
            out.append("" if value is None else str(value))
    return "".join(out).strip()


@lru_cache(maxsize=1024)
def _parts(body: str) -> tuple[tuple[str, str | None], ...]:
    """``body`` split once into literal text and placeholder names (a bulk run renders one template for
    thousands of messages); a ``{{ … }}`` that is not a placeholder name stays literal."""
    text = body.replace("\r\n", "\n")
    parts: list[tuple[str, str | None]] = []
    position = 0
    for token in _TOKEN.finditer(text):
        parts.append((text[position : token.start()], None))
        name = token.group(1).strip()
        parts.append(("", name) if _NAME.fullmatch(name) else (token.group(), None))
        position = token.end()
    parts.append((text[position:], None))
    return tuple(parts)


def render_message(*, template: Template, values: Mapping[str, str]) -> tuple[str, str]:
    """The (subject, body) of a message from ``template``; the subject is one line (a mail header)."""
    subject = " ".join(render(body=template.subject, values=values).split())
    return subject, render(body=template.body, values=values)


def template_for(
    *, organization: Organization, kind: str, channel: str, template_id: int | None = None, language: str = ""
) -> Template:
    """The template a message of (kind, channel) uses: the chosen one, else the system default; for a patient
    whose ``language`` is not the template's, its translation into that language (the organization's own
    first, then the system's; ``TemplateTranslation.as_template``), else the template itself (English is the
    fallback, §13.2).

    A chosen template must belong to ``organization`` or be a system default, and be for ``channel``;
    otherwise (or when no system default exists) LookupError.
    """
    if template_id is not None:
        template = Template.objects.filter(pk=template_id, channel=channel).first()
        if template is None or template.organization_id not in (None, organization.pk):
            raise LookupError(
                f"Template {template_id} is not a {channel} template of organization {organization.pk}."
            )
    else:
        template = Template.objects.filter(organization__isnull=True, kind=kind, channel=channel).first()
        if template is None:
            raise LookupError(f"No system default template for {kind} by {channel}.")
    if not language or language == template.language:
        return template
    translation = (
        TemplateTranslation.objects.filter(template=template, language=language)
        .filter(Q(organization__isnull=True) | Q(organization=organization))
        .select_related("template")
        # The organization's own translation before the system's.
        .order_by(F("organization_id").asc(nulls_last=True))
        .first()
    )
    return translation.as_template() if translation is not None else template


def format_amount(amount: Decimal) -> str:
    """Money as a placeholder value: ``$1,234.50`` (a credit shows as ``-$5.00``)."""
    amount = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def format_date(day: date | None, *, missing: str = "", language: str = ENGLISH) -> str:
    """A date as a placeholder value: ``Dec 10, 2026`` (short enough for SMS, unambiguous in the US); in
    Spanish ``10 dic. 2026``."""
    if day is None:
        return missing
    if language == "es":
        return f"{day.day} {_SPANISH_MONTHS[day.month - 1]} {day.year}"
    return f"{day:%b} {day.day}, {day.year}"


def format_due_date(day: date | None, *, language: str = ENGLISH) -> str:
    if language == "es":
        return f"el {format_date(day, language=language)}" if day else _UPON_RECEIPT_IN["es"]
    return format_date(day, missing="upon receipt")


def format_phone(phone: str, *, language: str = ENGLISH) -> str:
    """The practice's phone as a placeholder value: US national format, or ``NO_PHONE`` when there is none."""
    return phone_display(phone) or _NO_PHONE_IN.get(language, NO_PHONE)


def greeting_name(*, first_name: str, last_name: str, preferred_name: str = "") -> str:
    """The name a patient is greeted by (§13.2): the PMS's preferred name, else the first name; a guarantor
    with a last name alone (a business, an estate, I1a) by that name."""
    return preferred_name or first_name or last_name


def message_values(
    *,
    first_name: str,
    last_name: str,
    organization: Organization,
    amount_due: Decimal,
    pay_ref: str,
    due_date: date | None,
    statement_date: date | None,
    preferred_name: str = "",
    language: str = ENGLISH,
) -> dict[str, str]:
    """The placeholder values of one message (N4): the one builder for payment requests and dunning steps.

    ``{{ patient.first_name }}`` is the name the patient is greeted by (``greeting_name``: the preferred
    name first, §13.2); dates and the phone fallback are in the patient's ``language`` (ISO 639-1; English
    for a language the product has no wording for).

    Messages keep them as their ``context``, with the exact amount beside its formatted form
    (``amount_due_value``, not a placeholder) for what reads a message later, such as the letter batch. The
    payment link is ``PAY_URL`` and its reference ``pay_ref`` (``notifications.paylinks``): no token is
    stored in a message."""
    return {
        "patient.first_name": greeting_name(
            first_name=first_name, last_name=last_name, preferred_name=preferred_name
        ),
        "patient.last_name": last_name,
        "practice.name": organization.name,
        "practice.phone": format_phone(organization.phone, language=language),
        "amount_due": format_amount(amount_due),
        "pay_url": PAY_URL,
        "due_date": format_due_date(due_date, language=language),
        "statement_date": format_date(statement_date, language=language),
        "amount_due_value": str(amount_due),
        "pay_ref": pay_ref,
    }


# A real link is the public base URL, /p/ and a 22-character token (128 bits, base64url).
SAMPLE_PAY_URL = "https://pay.example.com/p/k3Jx9QmT2vLw8RzA5nYc0g"


def sample_values(organization: Organization | None = None, *, language: str = ENGLISH) -> dict[str, str]:
    """The values of a preview, built by ``message_values`` like a real message's: a sample patient and bill
    at ``organization``, which gives its own name and phone (the admin always passes the practice the
    preview is for). Without one (length checks, an installation with no organization yet) a sample
    practice."""
    from practices.models import Organization
    from practices.timezones import organization_today

    practice = organization or Organization(name="Smile Dental", phone="+18015550100")
    today = organization_today(practice)
    values = message_values(
        first_name="Ana",
        last_name="Diaz",
        organization=practice,
        amount_due=Decimal("120.00"),
        pay_ref="",
        due_date=today + timedelta(days=14),
        statement_date=today - timedelta(days=6),
        language=language,
    )
    values["pay_url"] = SAMPLE_PAY_URL
    return values


def sms_segments(text: str) -> tuple[str, int, int]:
    """(encoding, length in that encoding's units, segments) of an SMS body.

    GSM-7 when every character is in the GSM 03.38 sets (extension characters count two septets): 160 in
    one segment, 153 per part of a longer one. Otherwise UCS-2 in UTF-16 units: 70, then 67 per part.
    """
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text):
        encoding, single, part = GSM_7, 160, 153
        length = sum(2 if ch in _GSM_EXTENSION else 1 for ch in text)
    else:
        encoding, single, part = UCS_2, 70, 67
        length = len(text.encode("utf-16-le")) // 2
    if length == 0:
        return encoding, 0, 0
    return encoding, length, 1 if length <= single else math.ceil(length / part)


@dataclass(frozen=True, slots=True)
class Preview:
    subject: str
    body: str
    error: str = ""
    encoding: str = ""
    length: int = 0
    segments: int = 0


def template_preview(*, template: Template, organization: Organization | None = None) -> Preview:
    """``template`` rendered with sample values, with its validation error and, for SMS, its length."""
    try:
        validate(channel=template.channel, body=template.body, subject=template.subject)
        error = ""
    except TemplateError as exc:
        error = str(exc)
    subject, body = render_message(
        template=template, values=sample_values(organization, language=template.language)
    )
    extra: dict[str, Any] = {}
    if template.channel == Channel.SMS:
        encoding, length, segments = sms_segments(body)
        extra = {"encoding": encoding, "length": length, "segments": segments}
    return Preview(subject=subject, body=body, error=error, **extra)


def _braced(names: list[str]) -> str:
    return ", ".join(f"{{{{ {name} }}}}" for name in names)
