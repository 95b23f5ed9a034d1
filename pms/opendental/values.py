"""Open Dental's value conventions (https://www.opendental.com/site/apiimplementation.html, Data Types, and
the example responses of each resource page): booleans are the strings "true"/"false", dates "yyyy-MM-dd"
with ``0001-01-01`` for none, date-times "yyyy-MM-dd HH:mm:ss" in the office's local time, money a JSON
number (a double) or, in some answers (Payments GET PayAmt), a string."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
# A double within this of a whole cent is that cent (0.30000000000000004 is 0.30), as the importer reads it.
CENT_TOLERANCE = Decimal("0.000001")
EARLIEST = date(1900, 1, 1)
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def od_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def od_date(value: Any) -> date | None:
    """A date, or None for Open Dental's "no date" (0001-01-01) and anything that is not a date."""
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
    return day if day >= EARLIEST else None


def od_money(value: Any) -> Decimal:
    """An amount as Decimal (unrounded): a JSON number arrives as Decimal from its text, or a string."""
    if value is None or value == "" or isinstance(value, bool):
        return Decimal(0)
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return Decimal(0)


def cents(amount: Decimal) -> tuple[Decimal, bool]:
    """``amount`` to the cent, and whether it was more than a double's noise away from a whole cent."""
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded, abs(rounded - amount) > CENT_TOLERANCE


def od_stamp(value: Any) -> str:
    """A date-time as Open Dental writes it (its DateTStamp filters take the same form), or ""."""
    text = str(value or "").strip().replace("T", " ")[:19]
    try:
        datetime.strptime(text, STAMP_FORMAT)
    except ValueError:
        return ""
    return text


def stamp_before(stamp: str, seconds: int = 1) -> str:
    """A second earlier: "altered after" is strict, and a change in the very second of serverDateTime (after
    that page was served) must be read again next time rather than missed."""
    moment = datetime.strptime(stamp, STAMP_FORMAT) - timedelta(seconds=seconds)
    return moment.strftime(STAMP_FORMAT)


# ISO 639-2 (Open Dental's Language: "typically in ISO 639-2 format, unless custom", apipatients.html) to the
# ISO 639-1 the feed takes, for the languages US practices meet most; both bibliographic and terminology codes.
ISO_639_2_TO_1 = {
    "eng": "en", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "ita": "it", "por": "pt",
    "vie": "vi", "zho": "zh", "chi": "zh", "kor": "ko", "jpn": "ja", "rus": "ru", "ukr": "uk", "pol": "pl",
    "ara": "ar", "hin": "hi", "urd": "ur", "ben": "bn", "pan": "pa", "guj": "gu", "tgl": "tl", "fil": "tl",
    "hat": "ht", "fas": "fa", "per": "fa", "heb": "he", "tur": "tr", "ell": "el", "gre": "el", "nld": "nl",
    "dut": "nl", "som": "so", "amh": "am", "hmn": "", "khm": "km", "lao": "lo", "tha": "th", "nep": "ne",
    "swa": "sw", "yid": "yi", "arm": "hy", "hye": "hy", "alb": "sq", "sqi": "sq", "srp": "sr", "hrv": "hr",
    "bos": "bs", "ron": "ro", "rum": "ro", "hun": "hu", "ces": "cs", "cze": "cs", "tam": "ta", "tel": "te",
    "mar": "mr", "nav": "nv", "haw": "", "smo": "sm", "ton": "to", "mya": "my", "bur": "my",
}  # fmt: skip


def iso_639_1(value: Any) -> str:
    """The feed's language for Open Dental's: a 639-2 code mapped, a 639-1 code kept, else "" (none)."""
    code = str(value or "").strip().lower()
    if len(code) == 2 and code.isalpha():
        return code
    return ISO_639_2_TO_1.get(code, "")
