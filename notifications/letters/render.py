"""Pure renderer for paper letters (SPEC L1): dataclasses in, one PDF out. No Django, no database.

One ReportLab canvas for the whole batch and one page per letter: the layout is fixed, so the canvas is
used directly rather than platypus. Geometry lives in ``layout.py``.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import segno
from reportlab import rl_config
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from notifications.letters import layout
from notifications.letters.layout import INCH, Box

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
FONTS_DIR = Path(__file__).resolve().parent / "fonts"

AGING_BUCKETS: tuple[tuple[str, str], ...] = (
    ("0_30", "0–30 days"),
    ("31_60", "31–60 days"),
    ("61_90", "61–90 days"),
    ("over_90", "Over 90 days"),
)
_CENT = Decimal("0.01")
# Widths are sums of floats: a line measured at exactly its box's width must count as fitting.
_FIT_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class PostalAddress:
    name: str
    line1: str
    line2: str
    city: str
    state: str
    zip: str
    # §13.2 ``care_of``: the person the letter goes through, printed "C/O …" under the name (Publication 28:
    # the care-of line sits between the addressee and the delivery line).
    care_of: str = ""


@dataclass(frozen=True, slots=True)
class Practice:
    name: str
    phone: str
    return_address: PostalAddress
    logo_path: str | None = None


@dataclass(frozen=True, slots=True)
class Letter:
    reference: str
    practice: Practice
    recipient: PostalAddress
    greeting_name: str
    kind: str
    body: str
    amount_due: Decimal
    aging: Mapping[str, Decimal]
    due_date: date | None
    pay_url: str
    statement_date: date
    # The day the letter is printed for the post (the batch date): a due date before it has passed and is
    # never offered as "Pay by" (issue 12).
    mailed_on: date
    # The language of the body (its template's): the greeting is in it too (§13.2).
    language: str = "en"

    @property
    def due_date_passed(self) -> bool:
        return self.due_date is not None and self.due_date < self.mailed_on

    def __post_init__(self) -> None:
        unknown = set(self.aging) - {key for key, _ in AGING_BUCKETS}
        if unknown:
            raise ValueError(f"letter {self.reference}: unknown aging buckets {sorted(unknown)}")


class LetterTooLong(ValueError):
    """The body does not fit its box even at the smallest font size; the letter needs shorter text."""


# NFKD leaves these as they are (they are letters of their own, not accented ones).
_ASCII_FALLBACKS = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Ø": "O",
        "ø": "o",
        "Đ": "D",
        "đ": "d",
        "Ð": "D",
        "ð": "d",
        "ß": "ss",
        "ẞ": "SS",
        "Æ": "AE",
        "æ": "ae",
        "Œ": "OE",
        "œ": "oe",
        "Þ": "TH",
        "þ": "th",
        "ı": "i",
        "Ħ": "H",
        "ħ": "h",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
    }
)
_SPACES = re.compile(r"\s+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def usps_line(text: str) -> str:
    """An address line as USPS Pub 28 prints it: uppercase ASCII, single spaces ("Łukasz" -> "LUKASZ")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FALLBACKS))
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii")
    return _SPACES.sub(" ", ascii_only).strip().upper()


def address_lines(address: PostalAddress) -> list[str]:
    """The printed lines of an address block (at most five: a care-of line comes under the name), blank lines
    dropped, last "CITY ST ZIP"."""
    last = f"{address.city} {address.state} {address.zip}"
    care_of = f"C/O {address.care_of}" if address.care_of.strip() else ""
    lines = [address.name, care_of, address.line1, address.line2, last]
    return [printed for printed in (usps_line(line) for line in lines) if printed]


# §13.2: the greeting in the body's language; the body itself comes from the template of that language.
GREETINGS = {"en": "Dear {name},", "es": "Estimado(a) {name}:"}


def money(amount: Decimal) -> str:
    amount = amount.quantize(_CENT)
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def long_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def qr_runs(url: str) -> list[tuple[int, int, int]]:
    """The dark modules of ``url``'s QR code (error level M) as horizontal runs: (row, column, length)."""
    runs: list[tuple[int, int, int]] = []
    for row, modules in enumerate(segno.make(url, error="m").matrix):
        start = -1
        for col, dark in enumerate(modules):
            if dark and start < 0:
                start = col
            elif not dark and start >= 0:
                runs.append((row, start, col - start))
                start = -1
        if start >= 0:
            runs.append((row, start, len(modules) - start))
    return runs


@cache
def register_fonts() -> None:
    """Register the bundled DejaVu fonts with ReportLab once per process (parsing a TTF takes ~50 ms)."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONTS_DIR / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONTS_DIR / "DejaVuSans-Bold.ttf")))


def render(letters: Sequence[Letter]) -> bytes:
    """Render ``letters`` into one PDF, one US Letter page per letter, in the given order.

    Raises ``ValueError`` for an empty sequence: a batch without letters is a caller's bug, and a PDF with
    no pages is not something to hand to a print shop. Raises ``LetterTooLong`` (a ``ValueError``) naming
    the letter whose body does not fit.
    """
    if not letters:
        raise ValueError("render() needs at least one letter")
    register_fonts()
    buffer = io.BytesIO()
    with _binary_streams():
        canvas = Canvas(buffer, pagesize=LETTER, pageCompression=1, invariant=1)
        canvas.setTitle(f"Letters ({len(letters)})")
        for letter in letters:
            _draw_letter(canvas, letter)
            canvas.showPage()
        canvas.save()
    return buffer.getvalue()


def calibration_page() -> bytes:
    """A one-page PDF outlining both envelope windows and the fold lines, to check against real envelopes."""
    register_fonts()
    buffer = io.BytesIO()
    with _binary_streams():
        canvas = Canvas(buffer, pagesize=LETTER, pageCompression=1, invariant=1)
        canvas.setTitle("Envelope calibration")
        _draw_calibration(canvas)
        canvas.showPage()
        canvas.save()
    return buffer.getvalue()


@contextmanager
def _binary_streams() -> Iterator[None]:
    """Skip ReportLab's default ASCII85 wrapping of compressed page streams.

    It is pure Python (~1 ms a page, a fifth of the time per letter) and makes the file ~25 % larger; it
    only matters for 7-bit transports, and these PDFs are downloaded or sent to a printer as binary.
    ReportLab reads the switch when it writes each stream, hence around ``save()`` too.
    """
    previous = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = previous


# --- drawing ------------------------------------------------------------------------------------------


def _draw_letter(canvas: Canvas, letter: Letter) -> None:
    _draw_address(
        canvas,
        layout.RETURN_BLOCK,
        address_lines(letter.practice.return_address),
        layout.RETURN_FONT_SIZE,
        layout.RETURN_LEADING,
        layout.RETURN_FONT_SIZE,
    )
    recipient = address_lines(letter.recipient)
    # Five lines (a care-of line and a second address line) fit the window only set a little tighter.
    tight = len(recipient) > layout.RECIPIENT_MAX_LINES
    _draw_address(
        canvas,
        layout.RECIPIENT_BLOCK,
        recipient,
        layout.RECIPIENT_TIGHT_FONT_SIZE if tight else layout.RECIPIENT_FONT_SIZE,
        layout.RECIPIENT_TIGHT_LEADING if tight else layout.RECIPIENT_LEADING,
        layout.ADDRESS_MIN_FONT_SIZE,
    )
    _draw_letterhead(canvas, letter.practice)
    _draw_summary(canvas, letter)
    _draw_body(canvas, letter)
    _draw_payment(canvas, letter.pay_url)
    _draw_stub(canvas, letter)


def _fitted_size(text: str, font: str, size: float, min_size: float, width: float) -> float:
    """The largest size, in steps of 1/100 pt and at least ``min_size``, at which ``text`` fits ``width``.

    Rounded down, never to the nearest: ``size * width / text_width`` can come out a hair too large in
    floating point, and the clip that follows then cut the last character of a name that fits
    ("MONTGOMERY-WORTHINGTON III" printed as "…II", issue 12).
    """
    text_width = pdfmetrics.stringWidth(text, font, size)
    if text_width <= width:
        return size
    return max(min_size, math.floor(size * width / text_width * 100) / 100)


def _clip(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut at the end until it fits ``width`` (only what is too long even at the smallest size)."""
    while text and pdfmetrics.stringWidth(text, font, size) > width + _FIT_TOLERANCE:
        text = text[:-1]
    return text


def _draw_fitted(
    canvas: Canvas, x: float, y: float, text: str, font: str, size: float, width: float,
    min_size: float | None = None,
) -> None:  # fmt: skip
    """Draw one line no wider than ``width``: shrink it (to ``min_size``, by default 70 %) and then cut it
    rather than overflow."""
    fitted = _fitted_size(text, font, size, size * 0.7 if min_size is None else min_size, width)
    canvas.setFont(font, fitted)
    canvas.drawString(x, y, _clip(text, font, fitted, width))


def _draw_address(
    canvas: Canvas, block: Box, lines: list[str], size: float, leading: float, min_size: float
) -> None:
    font = layout.ADDRESS_FONT
    ascent = pdfmetrics.getAscent(font, size)
    y = block.y_top - ascent
    for line in lines:
        fitted = _fitted_size(line, font, size, min_size, block.width)
        canvas.setFont(font, fitted)
        canvas.drawString(block.left, y, _clip(line, font, fitted, block.width))
        y -= leading


def _draw_letterhead(canvas: Canvas, practice: Practice) -> None:
    box = layout.LETTERHEAD
    text_left = box.left
    if practice.logo_path:
        logo_width, logo_height = layout.LOGO_MAX
        canvas.drawImage(
            practice.logo_path,
            box.left,
            box.y_top - logo_height,
            logo_width,
            logo_height,
            preserveAspectRatio=True,
            anchor="nw",
            mask="auto",
        )
        text_left = box.left + logo_width + 0.1 * INCH
    width = box.right - text_left
    name_size = _fitted_size(practice.name, FONT_BOLD, 13, 8, width)
    canvas.setFont(FONT_BOLD, name_size)
    canvas.drawRightString(box.right, box.y_top - 13, _clip(practice.name, FONT_BOLD, name_size, width))
    canvas.setFont(FONT, 9)
    canvas.drawRightString(box.right, box.y_top - 28, practice.phone)


def _draw_summary(canvas: Canvas, letter: Letter) -> None:
    box = layout.SUMMARY
    rows = [("Statement date", long_date(letter.statement_date)), ("Account", letter.reference)]
    rows.extend(_pay_by_rows(letter))
    y = box.y_top - 9
    for label, value in rows:
        canvas.setFont(FONT, 8.5)
        canvas.drawString(box.left, y, label)
        _draw_fitted_right(canvas, box.right, y, value, FONT_BOLD, 8.5, box.width - 1.1 * INCH)
        y -= 13

    frame_top = y - 2
    canvas.setLineWidth(0.75)
    canvas.roundRect(box.left, box.y_bottom, box.width, frame_top - box.y_bottom, 4, stroke=1, fill=0)
    pad = 8
    canvas.setFont(FONT, 9)
    canvas.drawString(box.left + pad, frame_top - 15, "Amount due")
    canvas.setFont(FONT_BOLD, 20)
    canvas.drawRightString(box.right - pad, frame_top - 20, money(letter.amount_due))

    rule_y = frame_top - 32
    canvas.setLineWidth(0.4)
    canvas.line(box.left + pad, rule_y, box.right - pad, rule_y)
    column = (box.width - 2 * pad) / len(AGING_BUCKETS)
    for index, (key, label) in enumerate(AGING_BUCKETS):
        x = box.left + pad + column * (index + 1) - 2
        canvas.setFont(FONT, 7)
        canvas.drawRightString(x, rule_y - 12, label)
        canvas.setFont(FONT, 8.5)
        canvas.drawRightString(x, rule_y - 25, money(letter.aging.get(key, Decimal(0))))
    canvas.setFont(FONT, 7)
    canvas.drawString(box.left + pad, box.y_bottom + 7, "Balance by age of the charges")


def _pay_by_rows(letter: Letter) -> list[tuple[str, str]]:
    """The summary's "Pay by": the due date while it is ahead; once it has passed by the day the letter is
    mailed (a past-due or final notice, a late batch) the letter says when payment was due and asks for it
    upon receipt, never "Pay by" a day that is over (issue 12, docs/decisions.md)."""
    if letter.due_date is None:
        return [("Pay by", "Upon receipt")]
    if letter.due_date_passed:
        return [("Payment was due", long_date(letter.due_date)), ("Pay by", "Upon receipt")]
    return [("Pay by", long_date(letter.due_date))]


def _draw_fitted_right(
    canvas: Canvas, right: float, y: float, text: str, font: str, size: float, width: float
) -> None:
    fitted = _fitted_size(text, font, size, size * 0.7, width)
    canvas.setFont(font, fitted)
    canvas.drawRightString(right, y, _clip(text, font, fitted, width))


def _body_lines(letter: Letter, size: float) -> list[str]:
    width = layout.BODY.width
    greeting = GREETINGS.get(letter.language, GREETINGS["en"])
    lines = [greeting.format(name=letter.greeting_name), ""]
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(letter.body.strip().replace("\r\n", "\n"))]
    for paragraph in paragraphs:
        if paragraph:
            # Single newlines inside a paragraph are kept: templates use them for sign-offs.
            lines.extend(simpleSplit(paragraph, FONT, size, width))
            lines.append("")
    return lines[:-1]


def _draw_body(canvas: Canvas, letter: Letter) -> None:
    box = layout.BODY
    for size in layout.BODY_FONT_SIZES:
        leading = size * layout.BODY_LEADING_RATIO
        lines = _body_lines(letter, size)
        if (len(lines) - 1) * leading + size <= box.height:
            break
    else:
        raise LetterTooLong(f"letter {letter.reference}: the body does not fit on the page")
    text = canvas.beginText(box.left, box.y_top - size)
    text.setFont(FONT, size, leading)
    text.textLines(lines, trim=0)
    canvas.drawText(text)


def _draw_payment(canvas: Canvas, url: str) -> None:
    box = layout.PAY
    canvas.setFont(FONT_BOLD, 11)
    canvas.drawString(box.left, box.y_top - 14, "Pay online")
    canvas.setFont(FONT, 9)
    canvas.drawString(
        box.left, box.y_top - 29, "Visit this address or scan the code with your phone's camera:"
    )
    _draw_fitted(canvas, box.left, box.y_top - 46, url, FONT_BOLD, 10, box.width)
    _draw_qr(canvas, qr_runs(url), layout.QR)


def _draw_qr(canvas: Canvas, runs: list[tuple[int, int, int]], box: Box) -> None:
    # The top-right finder pattern ends on the symbol's right edge, so row 0 gives its size.
    modules = max(col + length for row, col, length in runs if row == 0)
    unit = box.width / modules
    canvas.saveState()
    # In module units with the origin at the symbol's bottom-left every coordinate is a small integer, so
    # the path is written as PDF operators directly: it is the same single filled path that
    # beginPath()/rect()/drawPath() would emit, without ReportLab formatting ~200 floats per code in
    # pure Python (a third of the time per letter).
    canvas.translate(box.left, box.y_bottom)
    canvas.scale(unit, unit)
    top = modules - 1
    canvas.addLiteral("\n".join([f"{col} {top - row} {length} 1 re" for row, col, length in runs]) + "\nf")
    canvas.restoreState()


def _draw_stub(canvas: Canvas, letter: Letter) -> None:
    tear_y = layout.PAGE_HEIGHT - layout.TEAR_LINE
    canvas.saveState()
    canvas.setDash(4, 3)
    canvas.setLineWidth(0.5)
    canvas.line(0.25 * INCH, tear_y, layout.PAGE_WIDTH - 0.25 * INCH, tear_y)
    canvas.restoreState()

    box = layout.STUB
    canvas.setFont(FONT, 7.5)
    canvas.drawCentredString(layout.PAGE_WIDTH / 2, tear_y - 9, "Please detach and return with your payment")

    y = box.y_top - 12
    canvas.setFont(FONT_BOLD, 10)
    canvas.drawString(box.left, y, "Remittance")
    rows = (
        ("Account", letter.reference),
        ("Statement date", long_date(letter.statement_date)),
        ("Amount due", money(letter.amount_due)),
        ("Amount enclosed", "$__________________"),
    )
    value_x = box.left + 1.2 * INCH
    for label, value in rows:
        y -= 17
        canvas.setFont(FONT, 9)
        canvas.drawString(box.left, y, label)
        _draw_fitted(canvas, value_x, y, value, FONT_BOLD, 10, 2.6 * INCH)

    # The practice's address on the right, where a return envelope's window expects it.
    x = box.left + 4.25 * INCH
    y = box.y_top - 12
    canvas.setFont(FONT, 8)
    canvas.drawString(x, y, "Make checks payable to and mail to:")
    y -= 17
    for line in address_lines(letter.practice.return_address):
        _draw_fitted(canvas, x, y, line, layout.ADDRESS_FONT, 10, box.right - x, layout.RETURN_FONT_SIZE)
        y -= 12


def _draw_calibration(canvas: Canvas) -> None:
    width, height = layout.PAGE_WIDTH, layout.PAGE_HEIGHT
    canvas.setFont(FONT_BOLD, 14)
    canvas.drawCentredString(width / 2, height - 4.3 * INCH, "#10 double-window envelope calibration")
    canvas.setFont(FONT, 9)
    notes = (
        "Print at 100 % (no 'fit to page'), tri-fold on the dashed lines and slide it into an envelope.",
        "Each solid rectangle must show completely through its window; the dotted rectangle inside it is",
        "where address text is printed (1/8 in clearance on every side). Adjust notifications/letters/layout.py.",
    )
    for index, line in enumerate(notes):
        canvas.drawCentredString(width / 2, height - 4.6 * INCH - index * 13, line)

    for label, window, block in (
        ("Return address window", layout.RETURN_WINDOW, layout.RETURN_BLOCK),
        ("Recipient window", layout.RECIPIENT_WINDOW, layout.RECIPIENT_BLOCK),
    ):
        canvas.setLineWidth(1)
        canvas.rect(window.left, window.y_bottom, window.width, window.height, stroke=1, fill=0)
        canvas.saveState()
        canvas.setDash(1, 2)
        canvas.setLineWidth(0.5)
        canvas.rect(block.left, block.y_bottom, block.width, block.height, stroke=1, fill=0)
        canvas.restoreState()
        canvas.setFont(FONT_BOLD, 8)
        canvas.drawString(block.left + 2, block.y_top - 10, label)
        canvas.setFont(FONT, 7)
        canvas.drawString(
            block.left + 2,
            block.y_top - 20,
            f"{window.width / INCH:.3f} × {window.height / INCH:.3f} in, "
            f"top-left {window.left / INCH:.3f} in from left, {window.top / INCH:.3f} in from top",
        )
        canvas.drawString(
            block.left + 2,
            block.y_top - 29,
            f"print area {block.width / INCH:.3f} × {block.height / INCH:.3f} in",
        )

    canvas.saveState()
    canvas.setDash(6, 4)
    canvas.setLineWidth(0.5)
    canvas.setFont(FONT, 7)
    for fold in layout.FOLD_LINES:
        y = height - fold
        canvas.line(0, y, width, y)
        canvas.drawRightString(width - 0.5 * INCH, y + 3, f"fold {fold / INCH:.3f} in from top")
    tear = height - layout.TEAR_LINE
    canvas.setDash(4, 3)
    canvas.line(0.25 * INCH, tear, width - 0.25 * INCH, tear)
    canvas.drawRightString(
        width - 0.5 * INCH, tear + 3, f"remittance tear line {layout.TEAR_LINE / INCH:.3f} in"
    )
    canvas.restoreState()

    band = layout.BOTTOM_BAND
    canvas.setLineWidth(0.3)
    canvas.rect(0.25 * INCH, 0.05 * INCH, width - 0.5 * INCH, band - 0.1 * INCH, stroke=1, fill=0)
    canvas.setFont(FONT, 7)
    canvas.drawCentredString(width / 2, band / 2 - 2, f"bottom band {band / INCH:.3f} in: kept clear")

    # Inch rulers along the top and left edges, ticks every 1/8 in.
    canvas.setLineWidth(0.3)
    for eighth in range(int(width / INCH * 8) + 1):
        x = eighth * INCH / 8
        tick = 10 if eighth % 8 == 0 else 6 if eighth % 4 == 0 else 3
        canvas.line(x, height, x, height - tick)
        if eighth % 8 == 0 and eighth:
            canvas.drawCentredString(x, height - 18, str(eighth // 8))
    for eighth in range(int(height / INCH * 8) + 1):
        y = height - eighth * INCH / 8
        tick = 10 if eighth % 8 == 0 else 6 if eighth % 4 == 0 else 3
        canvas.line(0, y, tick, y)
        if eighth % 8 == 0 and eighth:
            canvas.drawString(12, y - 2.5, str(eighth // 8))
