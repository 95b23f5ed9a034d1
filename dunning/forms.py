"""Forms of the dunning dashboard: one outcome on the after-final worklist (A2)."""

from __future__ import annotations

from django import forms

from dunning.models import AfterFinalOutcome, AfterFinalOutcomeKind

# Outcomes that close a bill for good ask for a confirmation page first (STYLE: like delete_selected).
CONFIRMED_OUTCOMES = frozenset({AfterFinalOutcomeKind.COLLECTIONS, AfterFinalOutcomeKind.WRITTEN_OFF})


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(choices=AfterFinalOutcomeKind.choices)
    promise_date = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    note = forms.CharField(
        required=False, max_length=AfterFinalOutcome._meta.get_field("note").max_length, strip=True
    )
    confirmed = forms.BooleanField(required=False)

    @property
    def needs_confirmation(self) -> bool:
        return self.cleaned_data["outcome"] in CONFIRMED_OUTCOMES and not self.cleaned_data["confirmed"]


class CollectionsExportForm(forms.Form):
    since = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
