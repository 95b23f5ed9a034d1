"""The Results page's date range (SPEC §16): a preset, or two dates in the practice's calendar."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from payments.results.selectors import PRESETS, RangeError, preset_range, range_check


class DateInput(forms.DateInput):
    input_type = "date"


class RangeForm(forms.Form):
    preset = forms.ChoiceField(choices=PRESETS, required=False)
    since = forms.DateField(
        label="From", required=False, widget=DateInput(format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the start date as YYYY-MM-DD."},
    )  # fmt: skip
    until = forms.DateField(
        label="To", required=False, widget=DateInput(format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the end date as YYYY-MM-DD."},
    )  # fmt: skip

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        preset = data.get("preset")
        since, until = data.get("since"), data.get("until")
        if preset:
            since, until = preset_range(preset, today=self.today)
        elif since is None:
            raise forms.ValidationError("Choose a preset or enter a start date.")
        if until is None:
            until = self.today
        try:
            range_check(since, until)
        except RangeError as exc:
            raise forms.ValidationError(str(exc)) from None
        data["since"], data["until"] = since, until
        return data
