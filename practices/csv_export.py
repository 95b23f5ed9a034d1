"""The one CSV writer of the product (issue 11): every export is opened in a spreadsheet sooner or later,
so a cell that a spreadsheet would run as a formula (a PMS id or name starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is written with a leading apostrophe (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def csv_cell(value: Any) -> str:
    """``value`` as a safe cell. Numbers stay numbers (a negative amount such as a refund is not a formula)."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return f"'{text}"
    return text


def csv_text(
    header: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]], *, lineterminator: str = "\r\n"
) -> str:
    """A whole CSV document: ``header``, then each row (a sequence in header order, or a mapping by column),
    every cell through ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    for row in rows:
        cells = [row.get(column) for column in header] if isinstance(row, Mapping) else row
        writer.writerow([csv_cell(cell) for cell in cells])
    return buffer.getvalue()
