"""`org_settings` keys owned by dunning (SPEC §6 S1-S12, §10).

Values read as JSON like payments' keys: ``preset`` as its slug (null: no preset, no dunning), money as a
string with 2 decimals, ``reset_fields`` as an array in a fixed order, booleans as true/false. The
DunningSettings row is created on the first write, with the defaults of ``dunning_settings_get`` (so the
default preset is stored with it); until then those defaults apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dunning.models import RESET_FIELDS, BillAging, Preset
from dunning.selectors import dunning_settings_get
from payments.settings_keys import parse_money
from practices.models import Organization
from practices.org_settings import SettingError, SettingKey, parse_bool, register

BOOLEAN_KEYS = {
    "communicate_on_update": "S7: send a bill-update message when the amount due changes",
    "bill_reset_flag": "S8: restart the schedule when the PMS sends reset_bill",
    "reset_on_fields": "S9: restart the schedule when a reset_fields field changes",
}
PAPER_KEYS = {
    "drop_to_paper_on_opt_out": "S11: a letter instead of an opted-out due/past-due text or email",
    "skip_paper_when_electronic": "S12: no letters when text or email can reach the patient",
}


def parse_preset(raw: str) -> Preset | None:
    """A preset's slug, or ``none`` for no preset (the organization is not dunned)."""
    if raw == "none":
        return None
    preset = Preset.objects.filter(slug=raw).first()
    if preset is None:
        known = ", ".join(Preset.objects.order_by("slug").values_list("slug", flat=True))
        raise SettingError(f"unknown preset {raw!r}; known: {known or '(none)'}")
    return preset


def parse_bill_aging(raw: str) -> str:
    if raw not in BillAging.values:
        raise SettingError(f"expected one of {', '.join(BillAging.values)}")
    return raw


def parse_reset_fields(raw: str) -> list[str]:
    """A comma list of the S10 fields, in a fixed order; empty (no field) is allowed."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    unknown = [item for item in items if item not in RESET_FIELDS]
    if unknown:
        raise SettingError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(RESET_FIELDS)}")
    return [field for field in RESET_FIELDS if field in items]


def _writer(field: str) -> Callable[[Organization, Any], None]:
    def write(organization: Organization, value: Any) -> None:
        row = dunning_settings_get(organization=organization)
        setattr(row, field, value)
        if row.pk is None:
            row.save()
        else:
            row.save(update_fields=[field])

    return write


def _reader(field: str) -> Callable[[Organization], Any]:
    return lambda org: getattr(dunning_settings_get(organization=org), field)


def _money_reader(field: str) -> Callable[[Organization], str]:
    return lambda org: f"{getattr(dunning_settings_get(organization=org), field):.2f}"


def _read_preset(organization: Organization) -> str | None:
    preset = dunning_settings_get(organization=organization).preset
    return None if preset is None else preset.slug


register(
    SettingKey(
        name="preset",
        read=_read_preset,
        parse=parse_preset,
        write=_writer("preset"),
        help="S1: a preset slug (see list_presets), or none",
    )
)
for _name, _help in (("min_electronic", "S4: email and SMS"), ("min_print", "S5: letters")):
    register(
        SettingKey(
            name=_name,
            read=_money_reader(_name),
            parse=parse_money,
            write=_writer(_name),
            help=f"{_help} go out only when the amount due exceeds it (amount >= 0, 2 decimals)",
        )
    )
register(
    SettingKey(
        name="bill_aging",
        read=_reader("bill_aging"),
        parse=parse_bill_aging,
        write=_writer("bill_aging"),
        help="S6: natural or dunning_status",
    )
)
for _name, _help in BOOLEAN_KEYS.items():
    register(SettingKey(name=_name, read=_reader(_name), parse=parse_bool, write=_writer(_name), help=_help))
register(
    SettingKey(
        name="reset_fields",
        read=lambda org: list(dunning_settings_get(organization=org).reset_fields or []),
        parse=parse_reset_fields,
        write=_writer("reset_fields"),
        help=f"S10: comma list of {', '.join(RESET_FIELDS)} (may be empty)",
    )
)
for _name, _help in PAPER_KEYS.items():
    register(SettingKey(name=_name, read=_reader(_name), parse=parse_bool, write=_writer(_name), help=_help))
register(
    SettingKey(
        name="paper_cost",
        read=_money_reader("paper_cost"),
        parse=parse_money,
        write=_writer("paper_cost"),
        help="what one mailed letter costs (amount >= 0, 2 decimals; default 0.75): the impact preview and "
        "the results price paper with it",
    )
)
