"""The one CSV writer (issue 11): formulas neutralised in every export, numbers left alone (OWASP CSV injection:
cells starting with =, +, -, @, tab or carriage return run as formulas in spreadsheets)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from practices.csv_export import csv_cell, csv_text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ana", "Ana"), ("-10.00", "-10.00"),
        (Decimal("-5.00"), "-5.00"), (3, "3"), (None, ""), ("", ""), ("José", "José"),
    ],
)  # fmt: skip
def test_a_cell_that_would_run_as_a_formula_gets_an_apostrophe(value, cell):
    assert csv_cell(value) == cell


def test_rows_may_be_sequences_or_mappings_and_read_back_as_written():
    text = csv_text(["id", "name"], [["=1", "Ana, Jr."], {"id": "P2", "name": '"Bo"'}])
    assert list(csv.reader(io.StringIO(text))) == [["id", "name"], ["'=1", "Ana, Jr."], ["P2", '"Bo"']]
