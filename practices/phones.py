"""Phone numbers as a person reads them (issue 12): US national format, "(801) 555-0199".

Storage and everything sent to a provider keep E.164 ("+18015550199", I1); these functions are only for
what is printed, shown or written into a message body. One place, so that a page, a letter and an email
print the same number the same way.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat

_REGION = "US"
_MASK = "•"


def _parsed(value: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(value, _REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _printed(number: phonenumbers.PhoneNumber) -> str:
    if phonenumbers.region_code_for_number(number) == _REGION:
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


@lru_cache(maxsize=1024)  # a dunning run formats one practice's number for thousands of messages
def phone_display(value: str | None) -> str:
    """``value`` as printed for a person: a US number in national format ("(801) 555-0199"), another
    country's in international format ("+44 20 7946 0958"); text that is not a valid number is returned
    as it was given (stripped), and nothing as ''."""
    text = (value or "").strip()
    if not text:
        return ""
    number = _parsed(text)
    return text if number is None else _printed(number)


def phone_tel(value: str | None) -> str:
    """The E.164 form for a ``tel:`` link (a phone dials it whatever its region); '' when not a number."""
    number = _parsed((value or "").strip())
    return phonenumbers.format_number(number, PhoneNumberFormat.E164) if number else ""


def phone_masked(value: str | None) -> str:
    """What staff see of a patient's number (T4): only the last four digits, in the printed shape
    ("(•••) •••-0199"); '' for nothing."""
    text = (value or "").strip()
    if not text:
        return ""
    number = _parsed(text)
    if number is not None:
        number.extension = None  # an extension is not the patient's number
    shown = _printed(number) if number is not None else text
    digits = sum(ch.isdigit() for ch in shown)
    if digits <= 4:
        return _MASK * len(shown)
    out: list[str] = []
    seen = 0
    for ch in shown:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else _MASK)
        else:
            out.append(ch)
    return "".join(out)
