"""Dashboard forms: the bulk-list selection (B2) and the snooze form (B3). They only clean input; the
services decide (``bulk_send``, ``snooze_create``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms

from payments.models import SNOOZE_REASON_MAX_LENGTH
from payments.selectors import Selection

OTHER_REASON = "__other__"
MAX_IDS = 50_000


class IdListField(forms.Field):
    """Every value of a repeated field (``selected=A&selected=B``), stripped, deduplicated, in order."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        values = [value] if isinstance(value, str) else list(value)
        ids = list(dict.fromkeys(v.strip() for v in values if v and v.strip()))
        if len(ids) > MAX_IDS:
            raise forms.ValidationError(f"At most {MAX_IDS} guarantors at once.")
        return ids


class SelectionForm(forms.Form):
    """B2: ``select_all`` means every guarantor on the list when the server acts, except ``excluded`` (the
    staff's deselection, across pages); otherwise exactly the ``selected`` ids."""

    select_all = forms.BooleanField(required=False)
    selected = IdListField(required=False)
    excluded = IdListField(required=False)

    def selection(self) -> Selection:
        data = self.cleaned_data
        if data.get("select_all"):
            return Selection(everyone=True, ids=tuple(data.get("excluded") or ()))
        return Selection(everyone=False, ids=tuple(data.get("selected") or ()))


class SnoozeForm(SelectionForm):
    """B3: a re-enrol date after today and a reason from the organization's list, or typed in."""

    until = forms.DateField(label="Snooze until", widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.ChoiceField(label="Reason", required=False)
    reason_other = forms.CharField(label="Other reason", required=False, max_length=SNOOZE_REASON_MAX_LENGTH)

    def __init__(self, *args: Any, reasons: list[str], today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        reason = self.fields["reason"]
        assert isinstance(reason, forms.ChoiceField)
        reason.choices = [
            ("", "Choose a reason…"),
            *[(reason, reason) for reason in reasons],
            (OTHER_REASON, "Other (type it)"),
        ]
        self.fields["until"].widget.attrs["min"] = (today + timedelta(days=1)).isoformat()

    def clean_until(self) -> date:
        until = self.cleaned_data["until"]
        if until <= self.today:
            raise forms.ValidationError("Choose a re-enrol date in the future (after today).")
        return until

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        chosen = cleaned.get("reason") or ""
        typed = (cleaned.get("reason_other") or "").strip()
        reason = typed if chosen in ("", OTHER_REASON) else chosen
        if not reason:
            self.add_error("reason", "Choose a reason or type one.")
        cleaned["snooze_reason"] = reason
        return cleaned
