"""Per-record validation of a feed (I1, I2): each record becomes a typed row or a pointed error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from practices.addresses import address_status_for, state_code, zip_repaired
from practices.models import BUCKETS, CENTS, DunningStatus, SentByPms, SmsConsent
from practices.timezones import derive_timezone, known_timezones

PATIENT_FIELDS = frozenset(
    {
        "id", "guarantor_id", "first_name", "last_name", "date_of_birth", "email", "mobile_phone", "address",
        "last_visit_date", "on_payment_plan", "balance", "timezone", "do_not_contact", "open_claims",
        "sms_opt_out", "email_opt_out", "address_status", "home_phone", "work_phone", "sms_consent",
        "preferred_name", "language", "care_of", "deceased",
    }
)  # fmt: skip
ADDRESS_FIELDS = frozenset({"line1", "line2", "city", "state", "zip"})
BALANCE_FIELDS = frozenset({*BUCKETS, "insurance_estimate"})
STATEMENT_FIELDS = frozenset(
    {"bill_id", "guarantor_id", "statement_date", "due_date", "amount_due", "dunning_status", "reset_bill",
     "patient_id", "sent_by_pms"}
)  # fmt: skip
DUNNING_STATUSES = frozenset(s for s in DunningStatus.values if s)
SMS_CONSENTS = frozenset(SmsConsent.values)
SENT_BY_PMS = frozenset(SentByPms.values)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# I1a: PMSs write "no date" as a date: Open Dental's 0001-01-01 (its documented MinValue for an empty date
# column), others 1800-01-01 or 1899-12-30 (the OLE Automation epoch of Access/Excel exports). Nothing a
# practice mirrors is that old.
EARLIEST_DATE = date(1900, 1, 1)
_MONEY = re.compile(r"^-?\d{1,10}(\.\d{1,2})?$")
_MONEY_LIMIT = Decimal("10000000000")  # numeric(12, 2)
# I1a: a JSON number within this of a whole cent is that cent: PMSs keep money in doubles, and their JSON
# writes 0.1 + 0.2 as 0.30000000000000004. A string is what someone typed, and 3 decimals there is refused.
_CENT_TOLERANCE = Decimal("0.000001")
_COUNT_LIMIT = 2**31 - 1  # a PositiveIntegerField
# What PostgreSQL's text cannot hold (NUL) and what UTF-8 cannot encode (a lone surrogate from a JSON escape
# such as "\ud800"): either would fail the whole feed's transaction, so the record is rejected instead.
_SURROGATE = re.compile("[\ud800-\udfff]")
_email_validator = EmailValidator()


class Lazy:
    """A JSON pointer built only when an error or warning needs it; a 100 000-record feed would otherwise
    build some two million pointer strings."""

    __slots__ = ("base", "key")

    def __init__(self, base: tuple[object, ...], key: object) -> None:
        self.base = base
        self.key = key

    def __str__(self) -> str:
        return pointer(*self.base, self.key)


class RecordError(Exception):
    def __init__(self, at: str | Lazy, message: str) -> None:
        super().__init__(message)
        self.pointer = str(at)
        self.message = message


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) to ``parts``; a NUL or lone surrogate in a key (it is kept in the feed's
    error list, JSON in the database) is shown as U+FFFD."""
    text = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return text if storable(text) else _SURROGATE.sub("\ufffd", text.replace("\x00", "\ufffd"))


@dataclass(slots=True)
class PatientRow:
    index: int
    external_id: str
    guarantor_external_id: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str
    mobile_phone: str
    address_line1: str
    address_line2: str
    address_city: str
    address_state: str
    address_zip: str
    address_status: str
    timezone: str
    timezone_source: str
    last_visit_date: date | None
    on_payment_plan: bool
    open_claims: int
    do_not_contact: bool
    pms_sms_opt_out: bool
    pms_email_opt_out: bool
    balance: dict[str, Decimal]
    # §13.2 call-list numbers for the after-final worklist (A1), never texted.
    home_phone: str = ""
    work_phone: str = ""
    # §13.2 feed additions.
    sms_consent: str = SmsConsent.UNKNOWN
    preferred_name: str = ""
    language: str = ""
    care_of: str = ""
    deceased: bool = False

    @property
    def is_guarantor(self) -> bool:
        return self.external_id == self.guarantor_external_id


@dataclass(slots=True)
class StatementRow:
    index: int
    bill_id: str
    guarantor_external_id: str
    statement_date: date
    due_date: date | None
    amount_due: Decimal
    dunning_status: str
    reset_bill: bool
    # §13.2: the patient (a dependent) the statement is for, and how the PMS already sent it.
    patient_external_id: str = ""
    sent_by_pms: str = SentByPms.NONE


class Warnings:
    """Collects warnings; unknown fields are reported once per field name with a count, and so is each I1a
    repair of one same value (5 000 patients with the state "Utah" make one warning, not 5 000)."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []
        self._unknown: dict[str, list[Any]] = {}
        self._repeated: dict[tuple[str, ...], list[Any]] = {}

    def add(self, at: str, message: str) -> None:
        self.items.append({"pointer": at, "message": message})

    def repeated(self, at: str | Lazy, key: tuple[str, ...], message: str) -> None:
        """A warning about one value that many records may share: the first pointer, and a count."""
        if key in self._repeated:
            self._repeated[key][1] += 1
        else:
            self._repeated[key] = [at, 1, message]

    def unknown_field(self, at: str | Lazy, collection: str, name: str) -> None:
        key = f"{collection}.{name}"
        if key in self._unknown:
            self._unknown[key][1] += 1
        else:
            self._unknown[key] = [at, 1, name]

    def as_list(self) -> list[dict[str, str]]:
        out = list(self.items)
        for at, count, name in self._unknown.values():
            more = f" (and in {count - 1} more records)" if count > 1 else ""
            out.append({"pointer": str(at), "message": f"unknown field {name!r} ignored{more}"})
        for at, count, message in self._repeated.values():
            more = f" (and in {count - 1} more records)" if count > 1 else ""
            out.append({"pointer": str(at), "message": f"{message}{more}"})
        return out


def storable(value: str) -> bool:
    """False for a string the database cannot store: a NUL, or a lone surrogate."""
    return "\x00" not in value and (value.isascii() or not _SURROGATE.search(value))


def _text(
    value: Any, at: str | Lazy, *, required: bool = False, max_length: int = 200, ident: bool = False
) -> str:
    if value is None or value == "":
        if required:
            raise RecordError(at, "is required")
        return ""
    if ident and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(at, "must be a string")
    if not storable(value):
        raise RecordError(at, "contains a NUL or an invalid (surrogate) character")
    value = value.strip()
    if required and not value:
        raise RecordError(at, "is required")
    if len(value) > max_length:
        raise RecordError(at, f"is longer than {max_length} characters")
    return value


def _date(value: Any, at: str | Lazy, warnings: Warnings, *, required: bool = False) -> date | None:
    """I1: ``YYYY-MM-DD``; I1a: a date before 1900 is a PMS's "no date" (a warning), never a date."""
    if value is None or value == "":
        if required:
            raise RecordError(at, "is required")
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise RecordError(at, "must be a date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        if value.startswith("0000-"):  # MySQL's zero date, as some exports write it
            day = date.min
        else:
            raise RecordError(at, f"{value!r} is not a real date") from None
    if day < EARLIEST_DATE:
        if required:
            raise RecordError(at, f"{value!r} is the PMS's 'no date'; a date is required here")
        field = str(at.key) if isinstance(at, Lazy) else at
        warnings.repeated(at, ("no-date", field, value), f"{value} is the PMS's 'no date': stored as no date")
        return None
    return day


def money(value: Any, at: str | Lazy, warnings: Warnings | None = None) -> Decimal:
    """I1: a JSON string or number with at most 2 decimals (numbers arrive as Decimal, never float); I1a: a
    JSON number within 0.000001 of a whole cent is that cent (with a warning when ``warnings`` is given)."""
    if isinstance(value, bool) or value is None:
        raise RecordError(at, "must be an amount (a string or number with at most 2 decimals)")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str) and _MONEY.match(value.strip()):
        amount = Decimal(value.strip())
    else:
        raise RecordError(at, "must be an amount (a string or number with at most 2 decimals)")
    try:
        exponent = amount.as_tuple().exponent
        # Infinity and NaN have a letter for an exponent.
        if not isinstance(exponent, int):
            raise RecordError(at, "must have at most 2 decimals")
        if exponent < -2:
            cents = amount.quantize(CENTS)
            if not isinstance(value, Decimal) or abs(amount - cents) > _CENT_TOLERANCE:
                raise RecordError(at, "must have at most 2 decimals")
            if warnings is not None:
                warnings.repeated(at, ("cents", str(value)), f"{value} read as {cents} (a double's rounding)")
            amount = cents
        if abs(amount) >= _MONEY_LIMIT:
            raise RecordError(at, "is too large")
        return amount.quantize(CENTS)
    except InvalidOperation:
        raise RecordError(at, "is not a valid amount") from None


def _bool(value: Any, at: str | Lazy) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecordError(at, "must be true or false")
    return value


def _count(value: Any, at: str | Lazy) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(at, "must be a whole number of 0 or more")
    if value > _COUNT_LIMIT:
        raise RecordError(at, "is too large")
    return value


# A number already in E.164 for the NANP (+1 and ten digits, as SPEC §3's feeds send them) needs no parsing:
# it is its own normal form. Parsing was a fifth of a 100 000-patient import; validity is still checked.
_NANP_E164 = re.compile(r"\+1\d{10}")


def _phone(value: Any, at: str | Lazy, warnings: Warnings) -> str:
    raw = _text(value, at, max_length=40)
    if not raw:
        return ""
    if _NANP_E164.fullmatch(raw):
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(raw[2:]))
    else:
        try:
            number = phonenumbers.parse(raw, "US")
        except phonenumbers.NumberParseException:
            number = None
    if number is None or not phonenumbers.is_valid_number(number):
        warnings.add(str(at), f"unparseable phone number {raw!r} stored as missing")
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# I1a: what front desks type when a patient has no email (the PMS insists on something). A whole field, a
# local part (noemail@practice.com, no@email.com) or a domain that stands for "none".
_NO_EMAIL_WORDS = frozenset(
    {"none", "na", "n/a", "n.a.", "no", "nil", "null", "unknown", "unk", "declined", "refused", "noemail",
     "no email", "no-email", "no_email", "nomail", "no mail", "x", "xx", "xxx", "-", "--", ".", "0", "?"}
)  # fmt: skip
_NO_EMAIL_LOCALS = frozenset(
    {"none", "na", "no", "nil", "null", "unknown", "declined", "refused", "noemail", "no.email", "no-email",
     "no_email", "nomail", "noaddress", "noemailaddress", "donotemail", "dontemail", "nobody", "x", "xx", "xxx"}
)  # fmt: skip
_NO_EMAIL_DOMAINS = frozenset({"noemail.com", "none.com", "nomail.com", "donotemail.com", "no.com", "na.com"})
_EMAIL_SEPARATORS = re.compile(r"[;,\s]+")


def _placeholder_email(address: str) -> bool:
    lowered = address.lower()
    if lowered in _NO_EMAIL_WORDS:
        return True
    local, _, domain = lowered.rpartition("@")
    return local in _NO_EMAIL_LOCALS or domain in _NO_EMAIL_DOMAINS


def _email(value: Any, at: str | Lazy, warnings: Warnings) -> str:
    """I1, I1a: a valid address, else missing with a warning; a placeholder (``none``, ``noemail@…``) is
    missing; of several addresses in one field (``a@x.com; b@x.com``) the first valid one is kept."""
    raw = _text(value, at, max_length=1000)
    if not raw:
        return ""
    if _placeholder_email(raw):
        warnings.repeated(at, ("no-email", raw.lower()), f"{raw!r} is a placeholder, not an email address: "
                          "stored as missing")  # fmt: skip
        return ""
    candidates = [part for part in _EMAIL_SEPARATORS.split(raw) if part]
    for candidate in candidates:
        if len(candidate) > 254 or _placeholder_email(candidate):
            continue
        try:
            _email_validator(candidate)
        except ValidationError:
            continue
        if len(candidates) > 1:
            warnings.add(str(at), f"several addresses in {raw!r}: kept the first valid one, {candidate!r}")
        return candidate
    warnings.add(str(at), f"invalid email address {raw!r} stored as missing")
    return ""


_LANGUAGE = re.compile(r"^([a-z]{2})(?:[-_][a-z0-9]{2,8})*$")
# I1a: what a PMS may hold instead of an ISO 639-1 code: an ISO 639-2 code (Open Dental's patient.Language
# keeps "eng", "spa") or the language's name in English or in itself.
_LANGUAGE_NAMES = {
    "eng": "en", "english": "en", "spa": "es", "spanish": "es", "español": "es", "espanol": "es",
    "fra": "fr", "fre": "fr", "french": "fr", "français": "fr", "vie": "vi", "vietnamese": "vi",
    "chi": "zh", "zho": "zh", "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "kor": "ko", "korean": "ko",
    "rus": "ru", "russian": "ru", "ara": "ar", "arabic": "ar", "por": "pt", "portuguese": "pt", "tgl": "tl",
    "tagalog": "tl", "fil": "tl", "filipino": "tl", "hat": "ht", "haitian creole": "ht", "ger": "de",
    "deu": "de", "german": "de", "ita": "it", "italian": "it", "pol": "pl", "polish": "pl", "jpn": "ja",
    "japanese": "ja", "hin": "hi", "hindi": "hi", "som": "so", "somali": "so", "nav": "nv", "navajo": "nv",
}  # fmt: skip


def _language(value: Any, at: str | Lazy, warnings: Warnings) -> str:
    """§13.2 ``language``: ISO 639-1 (``es``; a region such as ``es-MX`` is dropped); '' is English."""
    raw = _text(value, at, max_length=40)
    if not raw:
        return ""
    lowered = raw.lower()
    if match := _LANGUAGE.match(lowered):
        return match[1]
    if lowered in _LANGUAGE_NAMES:
        code = _LANGUAGE_NAMES[lowered]
        warnings.repeated(at, ("language", raw), f"language {raw!r} read as {code!r} (ISO 639-1)")
        return code
    warnings.repeated(at, ("language", raw), f"unknown language {raw!r} ignored: English is used")
    return ""


def _choice(value: Any, at: str | Lazy, warnings: Warnings, *, allowed: frozenset[str], default: str) -> str:
    """One of ``allowed`` in any case; anything else is a warning and ``default`` (a formatting matter never
    costs a record, I1a)."""
    default = str(default)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    shown = value if isinstance(value, str) else json_repr(value)
    warnings.add(str(at), f"{shown!r} is not one of {', '.join(sorted(allowed))}: read as {default!r}")
    return default


def json_repr(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _state(value: Any, at: str | Lazy, warnings: Warnings) -> str:
    """I1a: the USPS code of the state as typed (``Utah``, ``new york``, ``D.C.``); a state that names none is
    a warning and missing (the address is then ``invalid``; the family is kept)."""
    raw = _text(value, at, max_length=60)
    if not raw:
        return ""
    code = state_code(raw)
    if code is None:
        warnings.repeated(
            at, ("state?", raw), f"unknown state {raw!r}: stored as missing, the address is invalid"
        )
        return ""
    if code != raw:
        warnings.repeated(at, ("state", raw), f"state {raw!r} read as {code!r}")
    return code


def _zip(value: Any, at: str | Lazy, warnings: Warnings, *, state: str) -> str:
    """I1a: ZIP+4 without its dash gets it; a ZIP that lost its leading zero gets it back (``zip_repaired``).
    What cannot be a ZIP at all is a warning and missing (the address is then ``invalid``)."""
    raw = _text(value, at, ident=True, max_length=40)
    if not raw:
        return ""
    repair = zip_repaired(raw, state=state)
    if repair.note:
        warnings.add(str(at), f"ZIP {raw!r} read as {repair.zip_code!r} ({repair.note})")
    if len(repair.zip_code) > 10:
        warnings.add(str(at), f"{raw!r} is not a ZIP code: stored as missing, the address is invalid")
        return ""
    return repair.zip_code


def read_patient(index: int, record: Any, warnings: Warnings) -> PatientRow:
    base = ("patients", index)
    if not isinstance(record, dict):
        raise RecordError(pointer(*base), "must be an object")
    for name in record.keys() - PATIENT_FIELDS:
        warnings.unknown_field(pointer(*base, name), "patients", name)

    external_id = _text(record.get("id"), Lazy(base, "id"), required=True, max_length=64, ident=True)
    guarantor_id = _text(
        record.get("guarantor_id"), Lazy(base, "guarantor_id"), required=True, max_length=64, ident=True
    )
    is_guarantor = external_id == guarantor_id
    # I1a: a guarantor with a last name and no first name is a business or an estate ("Acme Mining Co",
    # "Estate of J. Smith"); a patient needs both, and a record with no name at all is refused (I2).
    first_name = _text(record.get("first_name"), Lazy(base, "first_name"), max_length=100)
    last_name = _text(record.get("last_name"), Lazy(base, "last_name"), required=True, max_length=100)
    if not first_name and not is_guarantor:
        raise RecordError(pointer(*base, "first_name"), "is required (only a guarantor, a business or an "
                          "estate, may have a last name alone)")  # fmt: skip
    date_of_birth = _date(record.get("date_of_birth"), Lazy(base, "date_of_birth"), warnings)
    last_visit = _date(record.get("last_visit_date"), Lazy(base, "last_visit_date"), warnings)
    on_plan = _bool(record.get("on_payment_plan"), Lazy(base, "on_payment_plan"))
    do_not_contact = _bool(record.get("do_not_contact"), Lazy(base, "do_not_contact"))
    sms_opt_out = _bool(record.get("sms_opt_out"), Lazy(base, "sms_opt_out"))
    email_opt_out = _bool(record.get("email_opt_out"), Lazy(base, "email_opt_out"))
    open_claims = _count(record.get("open_claims"), Lazy(base, "open_claims"))

    address_base = (*base, "address")
    balance_base = (*base, "balance")
    address = record.get("address") or {}
    if not isinstance(address, dict):
        raise RecordError(pointer(*base, "address"), "must be an object")
    for name in address.keys() - ADDRESS_FIELDS:
        warnings.unknown_field(pointer(*base, "address", name), "address", name)
    line1 = _text(address.get("line1"), Lazy(address_base, "line1"))
    line2 = _text(address.get("line2"), Lazy(address_base, "line2"))
    city = _text(address.get("city"), Lazy(address_base, "city"), max_length=100)
    state = _state(address.get("state"), Lazy(address_base, "state"), warnings)
    zip_code = _zip(address.get("zip"), Lazy(address_base, "zip"), warnings, state=state)
    status = record.get("address_status")
    if status in (None, ""):
        status = address_status_for(line1=line1, line2=line2, city=city, state=state, zip_code=zip_code)
    elif status not in ("valid", "invalid"):
        raise RecordError(pointer(*base, "address_status"), "must be 'valid' or 'invalid'")

    email = _email(record.get("email"), Lazy(base, "email"), warnings)
    phone = _phone(record.get("mobile_phone"), Lazy(base, "mobile_phone"), warnings)
    home_phone = _phone(record.get("home_phone"), Lazy(base, "home_phone"), warnings)
    work_phone = _phone(record.get("work_phone"), Lazy(base, "work_phone"), warnings)

    explicit_tz = _text(record.get("timezone"), Lazy(base, "timezone"), max_length=64)
    if explicit_tz and explicit_tz not in known_timezones():
        warnings.add(pointer(*base, "timezone"), f"unknown time zone {explicit_tz!r} ignored")
        explicit_tz = ""
    tz, tz_source = derive_timezone(explicit=explicit_tz, zip_code=zip_code, phone=phone)

    sms_consent = _choice(
        record.get("sms_consent"), Lazy(base, "sms_consent"), warnings, allowed=SMS_CONSENTS,
        default=SmsConsent.UNKNOWN,
    )  # fmt: skip
    preferred_name = _text(record.get("preferred_name"), Lazy(base, "preferred_name"), max_length=100)
    language = _language(record.get("language"), Lazy(base, "language"), warnings)
    care_of = _text(record.get("care_of"), Lazy(base, "care_of"), max_length=100)
    deceased = _bool(record.get("deceased"), Lazy(base, "deceased"))

    balance = {name: Decimal("0.00") for name in BALANCE_FIELDS}
    if is_guarantor:
        raw_balance = record.get("balance")
        if raw_balance is not None:
            if not isinstance(raw_balance, dict):
                raise RecordError(pointer(*base, "balance"), "must be an object")
            for name, value in raw_balance.items():
                if name in BALANCE_FIELDS:
                    balance[name] = money(value, Lazy(balance_base, name), warnings)
                else:
                    warnings.unknown_field(Lazy(balance_base, name), "balance", name)
            if balance["insurance_estimate"] < 0:
                raise RecordError(pointer(*base, "balance", "insurance_estimate"), "must not be negative")
            if abs(sum((balance[name] for name in BUCKETS), Decimal(0))) >= _MONEY_LIMIT:
                raise RecordError(pointer(*base, "balance"), "the buckets add up to more than can be stored")

    return PatientRow(
        index=index,
        external_id=external_id,
        guarantor_external_id=guarantor_id,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        email=email,
        mobile_phone=phone,
        address_line1=line1,
        address_line2=line2,
        address_city=city,
        address_state=state,
        address_zip=zip_code,
        address_status=status,
        timezone=tz,
        timezone_source=tz_source,
        last_visit_date=last_visit,
        on_payment_plan=on_plan,
        open_claims=open_claims,
        do_not_contact=do_not_contact,
        pms_sms_opt_out=sms_opt_out,
        pms_email_opt_out=email_opt_out,
        balance=balance,
        home_phone=home_phone,
        work_phone=work_phone,
        sms_consent=sms_consent,
        preferred_name=preferred_name,
        language=language,
        care_of=care_of,
        deceased=deceased,
    )


def read_statement(index: int, record: Any, warnings: Warnings) -> StatementRow:
    base = ("statements", index)
    if not isinstance(record, dict):
        raise RecordError(pointer(*base), "must be an object")
    for name in record.keys() - STATEMENT_FIELDS:
        warnings.unknown_field(pointer(*base, name), "statements", name)
    bill_id = _text(record.get("bill_id"), Lazy(base, "bill_id"), required=True, max_length=64, ident=True)
    guarantor_id = _text(
        record.get("guarantor_id"), Lazy(base, "guarantor_id"), required=True, max_length=64, ident=True
    )
    patient_id = _text(record.get("patient_id"), Lazy(base, "patient_id"), max_length=64, ident=True)
    statement_date = _date(
        record.get("statement_date"), Lazy(base, "statement_date"), warnings, required=True
    )
    due_date = _date(record.get("due_date"), Lazy(base, "due_date"), warnings)
    if "amount_due" not in record:
        raise RecordError(pointer(*base, "amount_due"), "is required")
    amount = money(record["amount_due"], Lazy(base, "amount_due"), warnings)
    status = record.get("dunning_status")
    if status is None or status == "":
        status = ""
    elif status not in DUNNING_STATUSES:
        raise RecordError(
            pointer(*base, "dunning_status"),
            f"unknown dunning status {status!r}; expected one of {', '.join(sorted(DUNNING_STATUSES))}",
        )
    reset = _bool(record.get("reset_bill"), Lazy(base, "reset_bill"))
    sent_by_pms = _choice(
        record.get("sent_by_pms"),
        Lazy(base, "sent_by_pms"),
        warnings,
        allowed=SENT_BY_PMS,
        default=SentByPms.NONE,
    )
    assert statement_date is not None
    return StatementRow(
        index=index,
        bill_id=bill_id,
        guarantor_external_id=guarantor_id,
        statement_date=statement_date,
        due_date=due_date,
        amount_due=amount,
        dunning_status=status,
        reset_bill=reset,
        patient_external_id=patient_id,
        sent_by_pms=sent_by_pms,
    )
