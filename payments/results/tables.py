"""The tables of the Results page, one definition for the page and its CSV exports: each cell keeps its value
(for the CSV: numbers as numbers, money with 2 decimals) and how the page prints it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from payments.results.charts import dollars, whole
from payments.results.selectors import FUNNEL, FunnelRow, Report

STAGE_NAMES = {"sent": "Sent", "delivered": "Delivered", "opened": "Link opened", "verified": "Verified",
               "paid": "Paid"}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    value: Any
    text: str
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    slug: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    footer: list[Cell] | None = None
    first_column_is_header: bool = True

    def html(self) -> SafeString:
        """The table as HTML, written here rather than by the template engine (a range of a year is a thousand
        cells); every value is escaped."""

        def row(cells: list[Cell], tag: str = "td") -> str:
            out = []
            for index, cell in enumerate(cells):
                if index == 0:
                    out.append(f'<th scope="row">{escape(cell.text)}</th>')
                else:
                    css = ' class="num"' if cell.numeric else ""
                    out.append(f"<{tag}{css}>{escape(cell.text)}</{tag}>")
            return "<tr>" + "".join(out) + "</tr>"

        numeric = ' class="num"'
        head = "".join(
            f'<th scope="col"{"" if i == 0 else numeric}>{escape(name)}</th>'
            for i, name in enumerate(self.header)
        )
        body = "".join(row(r) for r in self.rows) or (
            f'<tr><td colspan="{len(self.header)}" class="muted">Nothing in this range.</td></tr>'
        )
        foot = f"<tfoot>{row(self.footer)}</tfoot>" if self.footer else ""
        html = (
            f'<table class="data compact results-table" id="table-{escape(self.slug)}">'
            f"<caption>{escape(self.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{foot}</table>"
        )
        return mark_safe(html)  # noqa: S308  (every value above is escaped)

    def csv_rows(self) -> list[list[Any]]:
        rows = self.rows + ([self.footer] if self.footer else [])
        return [[cell.value for cell in row] for row in rows]


def _count(value: int) -> Cell:
    return Cell(value, whole(value), True)


def _money(value: Decimal) -> Cell:
    return Cell(value.quantize(Decimal("0.01")), dollars(value), True)


def _day(value: date) -> Cell:
    return Cell(value.isoformat(), f"{value:%b} {value.day}, {value:%Y}")


def _funnel(slug: str, title: str, first: str, rows: list[FunnelRow], total: FunnelRow) -> Table:
    header = [first]
    for metric in FUNNEL:
        header += [STAGE_NAMES[metric], f"{STAGE_NAMES[metric]} ($)"]

    def cells(row: FunnelRow) -> list[Cell]:
        out = [Cell(row.label, row.label)]
        for metric in FUNNEL:
            stage = row.stages[metric]
            out += [_count(stage.count), _money(stage.amount)]
        return out

    return Table(slug, title, header, [cells(r) for r in rows], footer=cells(total) if rows else None)


def report_tables(report: Report) -> dict[str, Table]:
    """Every table of the report by its slug (the CSV's name)."""
    tables = [
        _funnel("by-channel", "Funnel by channel", "Channel", report.by_channel, report.total),
        _funnel("by-kind", "Funnel by kind of message", "Kind", report.by_kind, report.total),
        _funnel("by-step", "Funnel by preset step", "Step", report.by_step, report.total),
        Table(
            "recovered-by-week", "Dollars recovered per week", ["Week from", "To", "Recovered ($)"],
            [[_day(w.start), _day(w.end), _money(w.amount)] for w in report.weeks],
            footer=[Cell("Total", "Total"), Cell("", ""), _money(report.recovered)],
        ),
        Table(
            "undeliverable", "Undeliverable by reason", ["Reason", "Messages", "Rate"],
            [
                [Cell(r.label, r.label), _count(r.count),
                 Cell(r.rate if r.rate is not None else "", f"{r.rate * 100:.1f} %" if r.rate is not None else "—", True)]
                for r in report.undeliverable
            ],
            footer=[Cell("Messages attempted", "Messages attempted"), _count(report.attempted), Cell("", "")],
        ),
        Table(
            "paper", "Paper: cost against what it brought in", ["Figure", "Value"],
            [
                [Cell("Letters mailed", "Letters mailed"), _count(report.paper.letters)],
                [Cell("Cost per letter", "Cost per letter"), _money(report.paper.cost_each)],
                [Cell("Paper cost", "Paper cost"), _money(report.paper.cost)],
                [Cell("Payments on campaigns reached by paper", "Payments on campaigns reached by paper"),
                 _count(report.paper.payments)],
                [Cell("Paid on campaigns reached by paper", "Paid on campaigns reached by paper"),
                 _money(report.paper.paid)],
            ],
        ),
        Table(
            "ar", "Accounts receivable by aging bucket",
            ["Date", "0–30 days", "31–60 days", "61–90 days", "Over 90 days", "Total", "Guarantors owing"],
            [
                [_day(p.day), _money(p.bucket_0_30), _money(p.bucket_31_60), _money(p.bucket_61_90),
                 _money(p.bucket_over_90), _money(p.total), _count(p.guarantors)]
                for p in report.ar
            ],
        ),
    ]  # fmt: skip
    return {table.slug: table for table in tables}
