"""Paper letters (SPEC §11, L1): ``notifications.letters.render`` over letters with a unique QR code each.

The letters carry the system default paper statement rendered for each guarantor, a 32-character payment
token in the URL (so every QR code differs) and a full aging summary. The 10 000 letters are cut into ten
parts of 1 000: one process renders five of them in turn (the median rate of the five is the figure), then
two worker processes (already started, fonts loaded) render each of the other five as two halves side by
side, from dispatch to both halves back. The baseline draws the same lines of text on a bare ReportLab canvas page, in the
standard Helvetica font, no QR code and no layout: what a page costs at the least.
"""

from __future__ import annotations

import multiprocessing
import secrets
import time
from datetime import date, timedelta
from decimal import Decimal

from bench.harness import Row, median, row, say
from bench.workloads import Context

PARTS = 5


def _letters(count: int) -> list:
    from notifications.letters import Letter, PostalAddress, Practice
    from notifications.models import Template
    from notifications.templating import format_amount, render

    template = Template.objects.get(organization__isnull=True, kind="statement", channel="paper")
    practice = Practice(
        name="Bench Family Dental", phone="(801) 555-0199",
        return_address=PostalAddress("Bench Family Dental", "100 Main St", "Suite 200", "Salt Lake City", "UT", "84101"),
    )  # fmt: skip
    letters = []
    for i in range(count):
        amount = Decimal(30 + i % 900) + Decimal("0.45")
        url = f"https://pay.example.com/p/{secrets.token_urlsafe(24)}/"
        body = render(
            body=template.body,
            values={"patient.first_name": "Ana", "practice.name": practice.name, "amount_due": format_amount(amount),
                    "due_date": "Dec 14, 2026", "pay_url": url, "practice.phone": practice.phone},
        )  # fmt: skip
        letters.append(
            Letter(
                reference=f"G{i:07d}", practice=practice,
                recipient=PostalAddress(f"Ana Diaz{i % 997}", f"{1 + i % 9000} Main St", "", "Salt Lake City", "UT", "84101"),
                greeting_name="Ana", kind="statement", body=body, amount_due=amount,
                aging={"0_30": amount - 20, "31_60": Decimal("20.00"), "61_90": Decimal(0), "over_90": Decimal(0)},
                due_date=date(2026, 12, 14) + timedelta(days=i % 3), pay_url=url, statement_date=date(2026, 11, 24),
                mailed_on=date(2026, 11, 24),
            )
        )  # fmt: skip
    return letters


# The letters, set before the worker processes fork so that each one finds them in its own memory (a real
# batch worker reads its messages from the database; pickling letters to it would be the benchmark's cost).
_LETTERS: list = []


def _render(letters: list) -> int:
    from notifications.letters import render

    return len(render(letters))


def _render_slice(bounds: tuple[int, int]) -> int:
    return _render(_LETTERS[bounds[0] : bounds[1]])


def _bare(letters: list) -> int:
    """The same text on a bare canvas page: one drawString per line, Helvetica, no QR, no layout."""
    import io

    from reportlab.lib.pagesizes import LETTER
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER, pageCompression=1)
    for letter in letters:
        lines = [
            letter.practice.name, letter.practice.phone, letter.recipient.name, letter.recipient.line1,
            f"{letter.recipient.city} {letter.recipient.state} {letter.recipient.zip}", f"Account {letter.reference}",
            f"Amount due {letter.amount_due}", *(f"{k} {v}" for k, v in letter.aging.items()),
            f"Dear {letter.greeting_name},", *letter.body.splitlines(), letter.pay_url, "Remittance",
            f"Account {letter.reference}", f"Amount due {letter.amount_due}",
        ]  # fmt: skip
        canvas.setFont("Helvetica", 10)
        y = 740
        for line in lines:
            canvas.drawString(72, y, line)
            y -= 14
        canvas.showPage()
    canvas.save()
    return len(buffer.getvalue())


def _warm(_: int) -> int:
    from notifications.letters.render import register_fonts

    register_fonts()
    return 0


def run(ctx: Context) -> list[Row]:
    count = ctx.n(10_000, minimum=50)
    letters = _letters(count)
    size = max(2, count // (2 * PARTS))
    parts = [letters[i * size : (i + 1) * size] for i in range(PARTS)]
    _render(parts[0][:5])  # fonts registered, imports done: the figure is rendering

    one = []
    for part in parts:
        started = time.perf_counter()
        _render(part)
        one.append(len(part) / (time.perf_counter() - started))
    bare = []
    for part in parts[:2]:
        started = time.perf_counter()
        _bare(part)
        bare.append(len(part) / (time.perf_counter() - started))

    two = []
    _LETTERS[:] = letters
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_warm, [0, 1])
        for index in range(PARTS, 2 * PARTS):
            start, half = index * size, size // 2
            started = time.perf_counter()
            pool.map(_render_slice, [(start, start + half), (start + half, start + size)], chunksize=1)
            two.append(size / (time.perf_counter() - started))
    _LETTERS.clear()

    rate, bare_rate, pair = median(one), median(bare), median(two)
    say(f"letters: {rate:.0f}/s in one process, {pair:.0f}/s with two, bare canvas {bare_rate:.0f} pages/s")
    notes = (
        f"{count:,} letters in {2 * PARTS} parts of {size:,}, five for each figure; median rate of the parts"
    )
    return [
        row("paper_letters_1proc", value=rate, unit="letters/s", baseline=bare_rate, budget="≥ 150 letters/s",
            ok=rate >= 150, reps=one, notes=f"{notes}; baseline: the same text on a bare canvas page"),
        row("paper_letters_2proc", value=pair, unit="letters/s", baseline=rate, budget="≥ 1.7× one process",
            ok=pair >= 1.7 * rate and pair >= 1.7 * 150, reps=two,
            notes=f"{notes}; two worker processes each render half of a part; baseline: one process"),
    ]  # fmt: skip
