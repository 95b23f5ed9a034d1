"""Calibrated page geometry for letters mailed in a #10 double-window envelope.

Every box is measured the way a ruler on the printed sheet reads: points from the page's *left* and *top*
edges. ReportLab's origin is bottom-left, so drawing code converts with ``Box.y_top``/``Box.y_bottom``.

The window positions are PostalMethods' double-window guidance for a tri-folded US Letter sheet (see
ECOSYSTEM.md §5). Envelope stock varies by vendor: check a printed ``calibration_page()`` behind a real
envelope and adjust the window constants here, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

INCH = 72.0
PAGE_WIDTH = 8.5 * INCH
PAGE_HEIGHT = 11 * INCH


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle on the page, in points from the left and top edges."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def y_top(self) -> float:
        """ReportLab y of the top edge."""
        return PAGE_HEIGHT - self.top

    @property
    def y_bottom(self) -> float:
        """ReportLab y of the bottom edge."""
        return PAGE_HEIGHT - self.bottom

    def inset(self, by: float) -> Box:
        return Box(self.left + by, self.top + by, self.width - 2 * by, self.height - 2 * by)

    def contains(self, other: Box, *, clearance: float = 0.0) -> bool:
        return (
            other.left - self.left >= clearance
            and self.right - other.right >= clearance
            and other.top - self.top >= clearance
            and self.bottom - other.bottom >= clearance
        )

    def overlaps(self, other: Box) -> bool:
        return (
            self.left < other.right
            and other.left < self.right
            and self.top < other.bottom
            and other.top < self.bottom
        )


def _in(inches: float) -> float:
    return inches * INCH


# Paper shifts inside the envelope: printed blocks stay this far inside their window on every side.
WINDOW_CLEARANCE = _in(1 / 8)

RETURN_WINDOW = Box(_in(0.5), _in(0.5), _in(3.5), _in(0.79))
RECIPIENT_WINDOW = Box(_in(0.5), _in(2.042), _in(3.5), _in(0.875))
WINDOWS = (RETURN_WINDOW, RECIPIENT_WINDOW)

RETURN_BLOCK = RETURN_WINDOW.inset(WINDOW_CLEARANCE)
RECIPIENT_BLOCK = RECIPIENT_WINDOW.inset(WINDOW_CLEARANCE)

# Address text is USPS-style uppercase ASCII, so a standard font (no embedding) is enough.
ADDRESS_FONT = "Helvetica"
RECIPIENT_FONT_SIZE = 9.0
RECIPIENT_LEADING = 10.0
RECIPIENT_MAX_LINES = 4  # name, line 1, line 2, city/state/ZIP
# With a care-of line (§13.2) and a second address line the block has five lines: set tighter to fit.
RECIPIENT_TIGHT_FONT_SIZE = 8.5
RECIPIENT_TIGHT_LEADING = 9.0
RECIPIENT_TIGHT_MAX_LINES = 5
# 8 pt is the smallest the mail house and USPS readers are asked to handle (issue 12): the return address
# is set at 8 pt and never shrinks below it; a line too long at 8 pt is cut.
RETURN_FONT_SIZE = 8.0
RETURN_LEADING = 9.0
RETURN_MAX_LINES = 4  # practice name, line 1, line 2, city/state/ZIP
ADDRESS_MIN_FONT_SIZE = 6.5  # long recipient lines shrink to this before they are cut

# Tri-fold for a #10 envelope: the top panel faces the windows.
FOLD_LINES = (PAGE_HEIGHT / 3, 2 * PAGE_HEIGHT / 3)
BOTTOM_BAND = _in(5 / 8)  # kept empty: envelope inserters and the USPS barcode clear zone
MARGIN = _in(0.5)
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN

# Right of the windows, on the top panel (covered by the envelope): letterhead and the amount due.
RIGHT_COLUMN_LEFT = _in(4.625)
LETTERHEAD = Box(RIGHT_COLUMN_LEFT, _in(0.5), PAGE_WIDTH - MARGIN - RIGHT_COLUMN_LEFT, _in(0.85))
LOGO_MAX = (_in(1.1), _in(0.6))  # width, height; top-left of the letterhead
SUMMARY = Box(RIGHT_COLUMN_LEFT, _in(1.5), LETTERHEAD.width, _in(1.95))

# Middle panel: greeting and body.
BODY = Box(MARGIN, _in(3.9), CONTENT_WIDTH, _in(3.3))
BODY_FONT_SIZES = (10.0, 9.5, 9.0, 8.5)  # tried in turn until the body fits
BODY_LEADING_RATIO = 1.3

# Bottom panel: payment link and its QR code, then the tear-off stub.
QR_SIZE = _in(0.9)  # the symbol, without its quiet zone
QR_QUIET_ZONE = _in(1 / 8)  # >= 4 modules up to QR version 5, kept clear of anything else
QR = Box(PAGE_WIDTH - MARGIN - QR_SIZE, _in(7.5), QR_SIZE, QR_SIZE)
PAY = Box(MARGIN, QR.top, QR.left - QR_QUIET_ZONE - MARGIN, QR_SIZE)
TEAR_LINE = _in(8.6)
STUB = Box(MARGIN, TEAR_LINE + _in(0.15), CONTENT_WIDTH, PAGE_HEIGHT - BOTTOM_BAND - TEAR_LINE - _in(0.15))

# Everything drawn outside the windows; a test checks none of it reaches a window or the bottom band.
CONTENT_BOXES = {
    "letterhead": LETTERHEAD,
    "summary": SUMMARY,
    "body": BODY,
    "pay": PAY,
    "qr": QR,
    "stub": STUB,
}
