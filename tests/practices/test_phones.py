"""Phone numbers as a person reads them (issue 12): national format for US numbers, E.164 kept for links."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from practices.phones import phone_display, phone_masked, phone_tel


@pytest.mark.parametrize(
    ("stored", "shown", "tel", "masked"),
    [
        # As the importer stores them (I1: E.164) and as an organization's phone may be typed in the admin.
        ("+18015550199", "(801) 555-0199", "+18015550199", "(•••) •••-0199"),
        ("(801) 555-0199", "(801) 555-0199", "+18015550199", "(•••) •••-0199"),
        ("801.555.0199", "(801) 555-0199", "+18015550199", "(•••) •••-0199"),
        ("+1 801 555 0100 ext 12", "(801) 555-0100 ext. 12", "+18015550100", "(•••) •••-0100"),
        # Another country's number keeps its country code, or a US reader could not dial it.
        ("+442079460958", "+44 20 7946 0958", "+442079460958", "+•• •• •••• 0958"),
        # Not a number: printed as given (never guessed into something else), no tel: link.
        ("Ask for Dana", "Ask for Dana", "", "••••••••••••"),
        ("", "", "", ""),
        (None, "", "", ""),
    ],
)
def test_a_phone_prints_in_national_format_and_links_in_e164(
    stored: str | None, shown: str, tel: str, masked: str
) -> None:
    assert (phone_display(stored), phone_tel(stored), phone_masked(stored)) == (shown, tel, masked)


def test_the_template_filters_are_the_same_functions() -> None:
    template = Template('{% load phones %}<a href="tel:{{ p|tel }}">{{ p|phone }}</a> {{ p|phone_masked }}')

    html = template.render(Context({"p": "+18015550199"}))

    assert html == '<a href="tel:+18015550199">(801) 555-0199</a> (•••) •••-0199'
