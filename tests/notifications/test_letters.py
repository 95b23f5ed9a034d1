from __future__ import annotations

import dataclasses
import io
import itertools
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import segno
from pypdf import PageObject, PdfReader
from pypdf.generic import DictionaryObject, PdfObject
from reportlab.pdfbase import pdfmetrics

from notifications.letters import (
    Letter,
    LetterTooLong,
    PostalAddress,
    Practice,
    calibration_page,
    layout,
    qr_runs,
    render,
    usps_line,
)
from notifications.letters.layout import INCH, Box
from notifications.letters.render import address_lines, money

RETURN_ADDRESS = PostalAddress(
    "Green Valley Dental", "100 Main St", "Suite 200", "Springfield", "IL", "62704"
)
PRACTICE = Practice(
    name="Green Valley Dental Associates", phone="(555) 010-2000", return_address=RETURN_ADDRESS
)
RECIPIENT = PostalAddress("Łukasz Nguyễn", "12 Ørsted Straße", "Apt 4", "Springfield", "IL", "62704-1234")


def make_letter(**overrides: Any) -> Letter:
    letter = Letter(
        reference="ACCT-000123",
        practice=PRACTICE,
        recipient=RECIPIENT,
        greeting_name="Łukasz Nguyễn",
        kind="reminder_1",
        body="Our records show a balance on your account.\n\nYou can pay online with the link below.\n"
        "If you have already paid, thank you.\n\nSincerely,\nThe billing team",
        amount_due=Decimal("1234.56"),
        aging={
            "0_30": Decimal("100.00"),
            "31_60": Decimal("200.00"),
            "61_90": Decimal("34.56"),
            "over_90": Decimal("900.00"),
        },
        due_date=date(2025, 4, 1),
        pay_url="https://pay.example.com/p/Ab3dE9xK",
        statement_date=date(2025, 3, 3),
        mailed_on=date(2025, 3, 3),
    )
    return dataclasses.replace(letter, **overrides)


def read(pdf: bytes) -> PdfReader:
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def pdf_dict(value: object) -> DictionaryObject:
    """A PDF dictionary, through an indirect reference if need be (pypdf types every PDF value as PdfObject)."""
    found = value.get_object() if isinstance(value, PdfObject) else value
    assert isinstance(found, DictionaryObject)
    return found


def text_runs(page: PageObject) -> list[tuple[str, float, float, str, float]]:
    """(text, x, y, font, size) for every text-showing operation on a page, in PDF points."""
    runs: list[tuple[str, float, float, str, float]] = []

    def visit(
        text: str, cm: list[float], tm: list[float], font: DictionaryObject | None, size: float
    ) -> None:
        if not text.strip():
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        # "/AAAAAA+DejaVuSans" -> "DejaVuSans": the name ReportLab registered the subset font under.
        name = str(font["/BaseFont"]).lstrip("/").split("+")[-1] if font else ""
        runs.append((text.strip(), x, y, name, size))

    page.extract_text(visitor_text=visit)
    return runs


def within(box: Box, x: float, y: float) -> bool:
    return box.left <= x <= box.right and box.y_bottom <= y <= box.y_top


# --- render -------------------------------------------------------------------------------------------


def test_it_renders_one_page_per_letter() -> None:
    letters = [make_letter(reference=f"ACCT-{n}", pay_url=f"https://pay.example.com/p/{n}") for n in range(3)]

    reader = read(render(letters))

    assert len(reader.pages) == 3
    assert [("ACCT-0" in page.extract_text(), "ACCT-2" in page.extract_text()) for page in reader.pages] == [
        (True, False),
        (False, False),
        (False, True),
    ]


def test_it_prints_the_recipient_in_uppercase_ascii_and_the_amount_due() -> None:
    text = read(render([make_letter()])).pages[0].extract_text()

    assert "LUKASZ NGUYEN" in text
    assert "12 ORSTED STRASSE" in text
    assert "SPRINGFIELD IL 62704-1234" in text
    assert "$1,234.56" in text
    assert "$900.00" in text  # over-90 bucket


def test_the_greeting_prints_the_real_unicode_name_in_the_embedded_dejavu_font() -> None:
    page = read(render([make_letter()])).pages[0]

    assert "Dear Łukasz Nguyễn," in page.extract_text()
    embedded = {
        str(font["/BaseFont"]).split("+")[-1]
        for font in (pdf_dict(ref) for ref in pdf_dict(pdf_dict(page["/Resources"])["/Font"]).values())
        if "/FontDescriptor" in font and "/FontFile2" in pdf_dict(font["/FontDescriptor"])
    }
    assert {"DejaVuSans", "DejaVuSans-Bold"} <= embedded


def test_nothing_but_the_addresses_is_printed_inside_the_envelope_windows() -> None:
    # Too long even at the smallest address size: it must be cut at the block's edge, not overflow.
    long_street = "4417 North Long Street Name Boulevard Extension Northwest, Building C, Loading Dock 7"
    letter = make_letter(recipient=dataclasses.replace(RECIPIENT, line1=long_street))

    runs = text_runs(read(render([letter])).pages[0])

    for window, block, expected in (
        (layout.RETURN_WINDOW, layout.RETURN_BLOCK, address_lines(RETURN_ADDRESS)),
        (layout.RECIPIENT_WINDOW, layout.RECIPIENT_BLOCK, address_lines(letter.recipient)),
    ):
        inside = [run for run in runs if within(window, run[1], run[2])]
        assert len(inside) == len(expected)
        for (text, x, y, font, size), line in zip(inside, expected, strict=True):
            assert line.startswith(text)
            assert within(block, x, y)
            assert x + pdfmetrics.stringWidth(text, font, size) <= block.right + 0.01
    assert any(text.startswith("4417 NORTH LONG STREET NAME") for text, *_ in runs)


def test_each_page_draws_the_qr_code_of_its_own_pay_url() -> None:
    urls = ["https://pay.example.com/p/Ab3dE9xK", "https://pay.example.com/p/Zz0qW7rT"]
    reader = read(render([make_letter(pay_url=url) for url in urls]))

    for page, url in zip(reader.pages, urls, strict=True):
        contents = page.get_contents()
        assert contents is not None
        content = contents.get_data().decode("latin-1")
        drawn = [tuple(map(int, m)) for m in re.findall(r"^(\d+) (\d+) (\d+) 1 re$", content, flags=re.M)]
        runs = qr_runs(url)
        top = max(col + length for row, col, length in runs if row == 0) - 1
        assert drawn == [(col, top - row, length) for row, col, length in runs]
        assert url in page.extract_text()
    assert qr_runs(urls[0]) != qr_runs(urls[1])


def test_it_draws_the_practice_logo_when_there_is_one(tmp_path: Path) -> None:
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 60), (20, 120, 60)).save(logo)
    practice = dataclasses.replace(PRACTICE, logo_path=str(logo))

    with_logo = read(render([make_letter(practice=practice)])).pages[0]
    without = read(render([make_letter()])).pages[0]

    def images(page: PageObject) -> list[DictionaryObject]:
        xobjects = pdf_dict(page["/Resources"]).get("/XObject")
        if xobjects is None:
            return []
        return [x for x in map(pdf_dict, pdf_dict(xobjects).values()) if x["/Subtype"] == "/Image"]

    assert len(images(with_logo)) == 1
    assert images(without) == []


def test_it_prints_the_remittance_stub() -> None:
    text = read(render([make_letter(due_date=None)])).pages[0].extract_text()

    assert "Please detach and return with your payment" in text
    assert "Amount enclosed" in text
    assert "Upon receipt" in text
    assert "Make checks payable to and mail to:" in text
    assert text.count("GREEN VALLEY DENTAL") == 2  # return window and stub


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one letter"):
        render([])


def test_a_body_that_does_not_fit_names_the_letter() -> None:
    with pytest.raises(LetterTooLong, match="ACCT-000123"):
        render([make_letter(body="A very long paragraph. " * 800)])


def test_a_long_body_shrinks_before_it_is_refused() -> None:
    # About 18 lines at 10 pt: too many for the body box at the first size, fine at a smaller one.
    body = "\n\n".join(["Line of text."] * 9)
    page = read(render([make_letter(body=body)])).pages[0]

    sizes = {size for text, _x, _y, _font, size in text_runs(page) if text == "Line of text."}
    assert sizes and max(sizes) < layout.BODY_FONT_SIZES[0]


def test_the_body_wraps_within_its_box() -> None:
    paragraph = "Please contact our billing office if you have any questions about this statement. " * 6
    page = read(render([make_letter(body=paragraph)])).pages[0]

    body = [run for run in text_runs(page) if run[2] < layout.BODY.y_top and run[2] > layout.BODY.y_bottom]
    assert len(body) >= 4  # greeting plus the paragraph over several lines
    for text, x, _y, font, size in body:
        assert x >= layout.BODY.left
        assert x + pdfmetrics.stringWidth(text, font, size) <= layout.BODY.right + 0.01


def test_unknown_aging_buckets_are_rejected() -> None:
    with pytest.raises(ValueError, match="91_120"):
        make_letter(aging={"91_120": Decimal(1)})


@pytest.mark.parametrize(
    ("given", "printed"),
    [
        ("Łukasz Nguyễn", "LUKASZ NGUYEN"),
        ("łódź  Żółć", "LODZ ZOLC"),
        ("Øystein Sørensen", "OYSTEIN SORENSEN"),
        ("Đặng Thị đào", "DANG THI DAO"),
        ("Weiß Straße", "WEISS STRASSE"),
        ("Ærø Cæsar", "AERO CAESAR"),
        ("Œuvre cœur", "OEUVRE COEUR"),
        ("O’Brien – Apt ２", "O'BRIEN - APT 2"),
        ("  José\tGarcía ", "JOSE GARCIA"),
    ],
)
def test_usps_line_is_uppercase_ascii(given: str, printed: str) -> None:
    assert usps_line(given) == printed


def test_address_lines_drop_a_blank_second_line() -> None:
    address = PostalAddress("Ana Pérez", "5 Elm St", "", "Austin", "TX", "78701")

    assert address_lines(address) == ["ANA PEREZ", "5 ELM ST", "AUSTIN TX 78701"]


def test_money_is_quantized_with_thousands_separators() -> None:
    assert money(Decimal("1234.5")) == "$1,234.50"
    assert money(Decimal("-5")) == "-$5.00"


# --- qr -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://pay.example.com/p/Ab3dE9xK", "https://pay.example.com/p/" + "x" * 120]
)
def test_qr_runs_are_the_dark_modules_of_segnos_matrix(url: str) -> None:
    matrix = segno.make(url, error="m").matrix
    size = len(matrix)
    rebuilt = [bytearray(size) for _ in range(size)]
    for row, col, length in qr_runs(url):
        assert length > 0
        for offset in range(length):
            assert rebuilt[row][col + offset] == 0, "runs overlap"
            rebuilt[row][col + offset] = 1

    assert [bytes(row) for row in rebuilt] == [bytes(row) for row in matrix]


def test_qr_runs_are_merged_horizontally() -> None:
    runs = qr_runs("https://pay.example.com/p/Ab3dE9xK")

    touching = [(a, b) for a, b in itertools.pairwise(runs) if a[0] == b[0] and a[1] + a[2] == b[1]]
    assert touching == []
    assert (0, 0, 7) in runs  # the top-left finder pattern's top edge is one run


# --- layout -------------------------------------------------------------------------------------------


def test_the_windows_are_the_calibrated_double_window_positions() -> None:
    def inches(box: Box) -> tuple[float, ...]:
        return tuple(round(v / INCH, 3) for v in (box.left, box.top, box.width, box.height))

    assert inches(layout.RETURN_WINDOW) == (0.5, 0.5, 3.5, 0.79)
    assert inches(layout.RECIPIENT_WINDOW) == (0.5, 2.042, 3.5, 0.875)


@pytest.mark.parametrize(
    ("window", "block", "size", "leading", "lines"),
    [
        (
            layout.RECIPIENT_WINDOW,
            layout.RECIPIENT_BLOCK,
            layout.RECIPIENT_FONT_SIZE,
            layout.RECIPIENT_LEADING,
            layout.RECIPIENT_MAX_LINES,
        ),
        (
            layout.RETURN_WINDOW,
            layout.RETURN_BLOCK,
            layout.RETURN_FONT_SIZE,
            layout.RETURN_LEADING,
            layout.RETURN_MAX_LINES,
        ),
    ],
)
def test_address_blocks_fit_inside_their_window_with_an_eighth_inch_clearance(
    window: Box, block: Box, size: float, leading: float, lines: int
) -> None:
    assert window.contains(block, clearance=INCH / 8 - 1e-9)
    ascent, descent = pdfmetrics.getAscentDescent(layout.ADDRESS_FONT, size)
    assert ascent + (lines - 1) * leading - descent <= block.height


@pytest.mark.parametrize("name", sorted(layout.CONTENT_BOXES))
def test_other_content_keeps_out_of_the_windows_and_the_bottom_band(name: str) -> None:
    box = layout.CONTENT_BOXES[name]
    page = Box(0, 0, layout.PAGE_WIDTH, layout.PAGE_HEIGHT - layout.BOTTOM_BAND)

    assert page.contains(box, clearance=0)
    for window in layout.WINDOWS:
        assert not window.inset(-layout.WINDOW_CLEARANCE).overlaps(box)


def test_the_qr_code_and_its_quiet_zone_do_not_cross_a_fold_or_the_tear_line() -> None:
    qr = layout.QR.inset(-layout.QR_QUIET_ZONE)

    for line in (*layout.FOLD_LINES, layout.TEAR_LINE):
        assert not qr.top <= line <= qr.bottom
    for name, box in layout.CONTENT_BOXES.items():
        if name != "qr":
            assert not qr.overlaps(box), name


def test_the_stub_is_below_the_tear_line_and_the_body_within_the_middle_panel() -> None:
    assert layout.STUB.top > layout.TEAR_LINE
    assert layout.FOLD_LINES[0] < layout.BODY.top
    assert layout.BODY.bottom < layout.FOLD_LINES[1]


# --- calibration --------------------------------------------------------------------------------------


def test_the_calibration_page_outlines_the_windows_and_folds() -> None:
    reader = read(calibration_page())

    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Recipient window" in text
    assert "Return address window" in text
    assert "3.500 × 0.875 in" in text
    assert "fold 3.667 in from top" in text
    assert "fold 7.333 in from top" in text


# --- issue 12: what the office and the post office read ----------------------------------------------------


def summary_rows(page: PageObject) -> dict[str, str]:
    """The summary's rows beside the windows, label → value, read back from the PDF."""
    runs = [run for run in text_runs(page) if within(layout.SUMMARY, run[1], run[2])]
    labels = {round(y, 1): text for text, x, y, _font, _size in runs if x < layout.SUMMARY.left + 1}
    values = {round(y, 1): text for text, x, y, _font, _size in runs if x > layout.SUMMARY.left + 1}
    return {label: values.get(y, "") for y, label in labels.items()}


def test_a_due_date_ahead_of_the_mailing_is_the_pay_by_date() -> None:
    letter = make_letter(kind="due", due_date=date(2026, 12, 10), mailed_on=date(2026, 11, 24))

    rows = summary_rows(read(render([letter])).pages[0])

    assert rows["Pay by"] == "December 10, 2026"
    assert "Payment was due" not in rows


@pytest.mark.parametrize("kind", ["past_due", "final", "statement"])
def test_a_due_date_that_has_passed_is_never_offered_as_the_pay_by_date(kind: str) -> None:
    """A past-due notice printed "Pay by November 10, 2026" on November 24: it says when payment was due and
    asks for it upon receipt (docs/decisions.md, issue 12); so does any letter mailed after its due date."""
    letter = make_letter(kind=kind, due_date=date(2026, 11, 10), mailed_on=date(2026, 11, 24))

    rows = summary_rows(read(render([letter])).pages[0])

    assert rows["Payment was due"] == "November 10, 2026"
    assert rows["Pay by"] == "Upon receipt"


def test_the_return_address_is_set_at_8_pt_or_more_even_when_long() -> None:
    """Ops (issue 12): the return address was 7.5 pt and shrank to 6.5 pt; the mail house asks for 8 pt."""
    long_name = PostalAddress(
        "Green Valley Dental Associates of Northern Springfield", "100 Main St", "Suite 200", "Springfield",
        "IL", "62704",
    )  # fmt: skip
    practice = dataclasses.replace(PRACTICE, return_address=long_name)

    runs = text_runs(read(render([make_letter(practice=practice)])).pages[0])

    window = [run for run in runs if within(layout.RETURN_WINDOW, run[1], run[2])]
    stub_x = layout.STUB.left + 4.25 * INCH
    stub = [run for run in runs if run[2] < layout.STUB.y_top and run[1] >= stub_x - 0.01]
    assert len(window) == 4
    assert len(stub) == 5  # "Make checks payable to and mail to:" and the four address lines
    assert min(size for *_rest, size in window + stub) >= 8


@pytest.mark.parametrize(
    "name",
    [
        # Each of these lost its last character: shrink-to-fit computed a size a hair too large in floating
        # point, and the clip that follows cut "III" to "II".
        "ALEXANDRA JAMES MONTGOMERY-WORTHINGTON III",
        "MAXIMILIAN PHILIP MONTGOMERY-WORTHINGTON III",
        "FREDERICK BEAUREGARD MONTGOMERY-WORTHINGTON III",
        "ALEXANDRA FITZGERALD MONTGOMERY-WORTHINGTON III",
    ],
)
def test_a_long_name_that_is_shrunk_to_fit_prints_whole(name: str) -> None:
    letter = make_letter(recipient=dataclasses.replace(RECIPIENT, name=name))

    runs = text_runs(read(render([letter])).pages[0])

    (printed,) = [
        run for run in runs if within(layout.RECIPIENT_WINDOW, run[1], run[2]) and "MONTGOMERY" in run[0]
    ]
    text, x, _y, font, size = printed
    assert text == name
    assert size < layout.RECIPIENT_FONT_SIZE  # it was shrunk, not printed at full size
    assert x + pdfmetrics.stringWidth(text, font, size) <= layout.RECIPIENT_BLOCK.right + 0.01
