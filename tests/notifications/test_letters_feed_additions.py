"""Letters and the §13.2 feed additions: ``care_of`` is a name line in the window, a Spanish body gets a
Spanish greeting. The care-of line follows USPS Publication 28 (the "C/O" line between the addressee and the
delivery line); the window is the calibrated #10 double window of test_letters.py."""

from __future__ import annotations

import dataclasses

from reportlab.pdfbase import pdfmetrics

from notifications.letters import layout, render
from notifications.letters.render import address_lines
from tests.notifications.test_letters import RECIPIENT, make_letter, read, text_runs, within


def test_a_care_of_line_comes_under_the_name_in_the_window() -> None:
    # A guarantor living with a relative: the letter goes to her, care of her son (line2 too: five lines).
    recipient = dataclasses.replace(RECIPIENT, care_of="Tomás Nguyễn")
    letter = make_letter(recipient=recipient)

    runs = text_runs(read(render([letter])).pages[0])
    inside = [run for run in runs if within(layout.RECIPIENT_WINDOW, run[1], run[2])]

    assert [text for text, *_ in inside] == [
        "LUKASZ NGUYEN",
        "C/O TOMAS NGUYEN",
        "12 ORSTED STRASSE",
        "APT 4",
        "SPRINGFIELD IL 62704-1234",
    ]
    for text, x, y, font, size in inside:
        assert within(layout.RECIPIENT_BLOCK, x, y)
        assert x + pdfmetrics.stringWidth(text, font, size) <= layout.RECIPIENT_BLOCK.right + 0.01


def test_five_address_lines_fit_the_window_with_its_clearance() -> None:
    size, leading = layout.RECIPIENT_TIGHT_FONT_SIZE, layout.RECIPIENT_TIGHT_LEADING
    ascent, descent = pdfmetrics.getAscentDescent(layout.ADDRESS_FONT, size)
    assert (
        ascent + (layout.RECIPIENT_TIGHT_MAX_LINES - 1) * leading - descent <= layout.RECIPIENT_BLOCK.height
    )
    assert size >= layout.ADDRESS_MIN_FONT_SIZE


def test_without_care_of_the_block_is_unchanged() -> None:
    assert address_lines(RECIPIENT) == [
        "LUKASZ NGUYEN",
        "12 ORSTED STRASSE",
        "APT 4",
        "SPRINGFIELD IL 62704-1234",
    ]
    assert "C/O" not in read(render([make_letter()])).pages[0].extract_text()


def test_a_spanish_letter_greets_in_spanish() -> None:
    letter = make_letter(language="es", greeting_name="Lupita", body="Le recordamos amablemente su saldo.")
    text = read(render([letter])).pages[0].extract_text()
    assert "Estimado(a) Lupita:" in text
    assert "Dear" not in text
