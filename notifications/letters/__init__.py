"""Paper letters (SPEC L1): a pure renderer, ``render(letters) -> bytes``, and its envelope layout."""

from __future__ import annotations

from notifications.letters.render import (
    Letter,
    LetterTooLong,
    PostalAddress,
    Practice,
    calibration_page,
    qr_runs,
    render,
    usps_line,
)

__all__ = [
    "Letter",
    "LetterTooLong",
    "PostalAddress",
    "Practice",
    "calibration_page",
    "qr_runs",
    "render",
    "usps_line",
]
