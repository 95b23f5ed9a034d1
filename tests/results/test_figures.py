"""The Results figures (SPEC §16 V1-V2) against answers computed by hand on small worlds. Every world is
checked twice: with every day settled (read from the daily summary rows) and with none (from the live tables),
and both must give the same answer."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from notifications.models import Channel, Reason, State
from payments.models import BuiltDay, DailyFigure, Metric
from payments.results.selectors import RangeError, Report, preset_range, range_check, results_report
from payments.results.services import settled_through
from tests.results import world
from tests.results.world import denver

pytestmark = pytest.mark.django_db

SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 30)
LATER = denver("2027-02-01 12:00")  # every November day settled long ago
EARLY = denver("2026-11-01 12:00")  # nothing of November settled yet (the rows are dated ahead of it)


def both(org, since=SINCE, until=UNTIL) -> Report:
    """The report from the live tables, then from the summary rows; they must agree."""
    live = results_report(organization=org, since=since, until=until, now=EARLY)
    assert not BuiltDay.objects.filter(organization=org, day__gte=since, day__lte=until).exists()
    kept = results_report(organization=org, since=since, until=until, now=LATER)
    assert (
        BuiltDay.objects.filter(organization=org, day__gte=since, day__lte=until).count()
        == (until - since).days + 1
    )
    again = results_report(organization=org, since=since, until=until, now=LATER)  # read back from the rows
    for report in (kept, again):
        assert _figures(report) == _figures(live)
    return again


def _figures(report: Report) -> dict:
    def rows(table):
        return [(r.key, {m: (s.count, s.amount) for m, s in r.stages.items()}) for r in table]

    return {
        "channel": rows(report.by_channel), "kind": rows(report.by_kind), "step": rows(report.by_step),
        "weeks": [(w.start, w.amount) for w in report.weeks], "recovered": report.recovered,
        "median": report.median_days, "undeliverable": report.undeliverable, "attempted": report.attempted,
        "paper": report.paper,
    }  # fmt: skip


def channel(report: Report, key: str):
    return next(r for r in report.by_channel if r.key == key)


def test_a_payment_after_two_messages_counts_for_the_one_opened_last():
    org = world.organization()
    bill = world.campaign(org, amount="100.00")
    sms = world.message(bill, channel=Channel.SMS, sent="2026-11-02 09:00", delivered="2026-11-02 09:01")
    email = world.message(bill, channel=Channel.EMAIL, sent="2026-11-02 09:00", state=State.DELIVERED,
                          delivered="2026-11-02 09:05")  # fmt: skip
    world.opened(sms, "2026-11-02 10:00")
    world.opened(email, "2026-11-03 08:00")
    world.pay(bill, "100.00", "2026-11-03 08:10")

    report = both(org)

    assert channel(report, "email").stage(Metric.PAID).count == 1
    assert channel(report, "email").stage(Metric.PAID).amount == Decimal("100.00")
    assert channel(report, "sms").stage(Metric.PAID).count == 0
    assert channel(report, "sms").stage(Metric.OPENED).count == 1
    assert report.total.stage(Metric.SENT).count == 2
    assert report.total.stage(Metric.SENT).amount == Decimal("200.00")
    assert report.total.stage(Metric.DELIVERED).count == 2
    assert report.total.stage(Metric.OPENED).count == 2
    assert report.recovered == Decimal("100.00")
    assert report.median_days == Decimal("1.0")  # sent Nov 2, paid Nov 3


def test_an_open_after_the_payment_does_not_take_it_and_a_message_opened_twice_counts_once():
    org = world.organization()
    bill = world.campaign(org)
    sms = world.message(bill, channel=Channel.SMS, sent="2026-11-02 09:00")
    email = world.message(bill, channel=Channel.EMAIL, sent="2026-11-02 09:00")
    world.opened(sms, "2026-11-02 10:00")
    world.opened(sms, "2026-11-04 10:00")
    world.pay(bill, "40.00", "2026-11-04 10:05")
    world.opened(email, "2026-11-04 11:00")  # after the payment

    report = both(org)

    assert channel(report, "sms").stage(Metric.PAID).amount == Decimal("40.00")
    assert channel(report, "email").stage(Metric.PAID).amount == Decimal("0")
    assert channel(report, "sms").stage(Metric.OPENED).count == 1


def test_a_payment_without_an_opened_link_counts_for_its_campaign():
    org = world.organization()
    bill = world.campaign(org)
    world.message(bill, channel=Channel.SMS, sent="2026-11-05 09:00")
    world.pay(bill, "25.00", "2026-11-06 12:00")

    report = both(org)

    assert [r.key for r in report.by_channel] == ["sms", ""]
    campaign = report.by_channel[-1]
    assert campaign.label == "No opened link (the campaign)"
    assert campaign.stage(Metric.PAID).count == 1 and campaign.stage(Metric.PAID).amount == Decimal("25.00")
    assert report.by_step[-1].key == "" and report.by_step[-1].stage(Metric.PAID).amount == Decimal("25.00")
    assert report.recovered == Decimal("25.00")


def test_a_refund_lowers_recovered_dollars_where_its_payment_counted():
    org = world.organization()
    bill = world.campaign(org, amount="100.00")
    email = world.message(bill, channel=Channel.EMAIL, sent="2026-11-02 09:00")
    world.opened(email, "2026-11-02 09:30")
    payment = world.pay(bill, "100.00", "2026-11-02 09:40")
    world.opened(world.message(bill, channel=Channel.SMS, sent="2026-11-09 09:00"), "2026-11-09 09:10")
    world.refund(payment, "40.00", "2026-11-10 15:00")  # after the SMS was opened: still the email's

    report = both(org)

    assert report.recovered == Decimal("60.00")
    assert report.payments == 1  # a refund is not a payment
    assert channel(report, "email").stage(Metric.PAID).amount == Decimal("60.00")
    assert channel(report, "sms").stage(Metric.PAID).amount == Decimal("0")
    weeks = {w.start: w.amount for w in report.weeks}
    assert weeks[date(2026, 11, 2)] == Decimal("100.00")
    assert weeks[date(2026, 11, 9)] == Decimal("-40.00")


def test_a_range_boundary_falls_at_midnight_in_the_practices_zone():
    org = world.organization()
    bill = world.campaign(org)
    late = world.message(bill, channel=Channel.SMS, sent="2026-11-10 23:30")  # 06:30 UTC on Nov 11
    world.opened(late, "2026-11-10 23:40")
    world.pay(bill, "30.00", "2026-11-10 23:50")
    early = world.message(world.campaign(org), channel=Channel.EMAIL, sent="2026-11-11 00:10")

    up_to_the_10th = both(org, SINCE, date(2026, 11, 10))
    from_the_11th = both(org, date(2026, 11, 11), UNTIL)

    assert up_to_the_10th.total.stage(Metric.SENT).count == 1
    assert channel(up_to_the_10th, "sms").stage(Metric.SENT).count == 1
    assert up_to_the_10th.recovered == Decimal("30.00")
    assert from_the_11th.total.stage(Metric.SENT).count == 1
    assert channel(from_the_11th, "email").stage(Metric.SENT).count == 1
    assert from_the_11th.recovered == Decimal("0")
    assert early.pk != late.pk


def test_undeliverable_rate_by_reason_over_the_messages_attempted():
    org = world.organization()
    bill = world.campaign(org)
    for _ in range(3):
        world.message(bill, channel=Channel.EMAIL, sent="2026-11-03 09:00", step_key="")
    world.message(
        bill,
        channel=Channel.SMS,
        state=State.UNDELIVERED,
        reason=Reason.NO_DESTINATION,
        updated="2026-11-03 09:00",
        step_key="",
    )  # never sent
    world.message(
        bill,
        channel=Channel.EMAIL,
        sent="2026-11-03 09:00",
        state=State.UNDELIVERED,
        reason=Reason.BOUNCED,
        updated="2026-11-04 09:00",
        step_key="",
    )  # sent, then bounced

    report = both(org)

    assert report.attempted == 5  # four sent, one that never could be
    assert [(r.reason, r.count, r.rate) for r in report.undeliverable] == [
        (Reason.BOUNCED, 1, Decimal("0.2000")),
        (Reason.NO_DESTINATION, 1, Decimal("0.2000")),
    ]


def test_paper_cost_against_what_paper_reached_campaigns_paid():
    org = world.organization()
    from dunning.models import DunningSettings

    DunningSettings.objects.update_or_create(organization=org, defaults={"paper_cost": Decimal("0.80")})
    mailed = world.campaign(org)
    world.message(mailed, channel=Channel.PAPER, kind="statement", step_key="", sent="2026-11-02 20:00")
    world.message(
        world.campaign(org), channel=Channel.PAPER, kind="statement", step_key="", sent="2026-11-02 20:00"
    )
    world.pay(mailed, "55.00", "2026-11-12 10:00")
    electronic = world.campaign(org)
    world.message(electronic, channel=Channel.SMS, sent="2026-11-02 09:00")
    world.pay(electronic, "70.00", "2026-11-03 10:00")

    report = both(org)

    assert report.paper.letters == 2
    assert report.paper.cost == Decimal("1.60")
    assert (report.paper.payments, report.paper.paid) == (1, Decimal("55.00"))
    assert report.recovered == Decimal("125.00")
    assert report.median_days == Decimal("5.5")  # 1 day and 10 days


def test_ranges_end_on_or_after_their_start_and_span_at_most_three_years():
    with pytest.raises(RangeError, match="before the start"):
        range_check(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(RangeError, match="at most 3 years"):
        range_check(date(2023, 1, 1), date(2026, 1, 2))
    range_check(date(2023, 1, 3), date(2026, 1, 2))  # 1 096 days
    assert preset_range("month", today=date(2026, 12, 3)) == (date(2026, 12, 1), date(2026, 12, 3))
    assert preset_range("30", today=date(2026, 12, 3)) == (date(2026, 11, 4), date(2026, 12, 3))
    assert preset_range("365", today=date(2026, 12, 3))[0] == date(2026, 12, 3) - timedelta(days=364)


def test_settled_days_are_kept_once_and_the_rest_stays_live():
    org = world.organization()
    bill = world.campaign(org)
    world.message(bill, channel=Channel.SMS, sent="2026-11-02 09:00")
    world.message(bill, channel=Channel.SMS, sent="2026-12-01 09:00", kind="reminder", step_key="")

    report = results_report(
        organization=org, since=SINCE, until=date(2026, 12, 1), now=denver("2026-12-01 12:00")
    )

    assert report.total.stage(Metric.SENT).count == 2
    assert settled_through(organization=org, now=denver("2026-12-01 05:59")) == date(2026, 11, 29)
    built = set(BuiltDay.objects.filter(organization=org).values_list("day", flat=True))
    assert max(built) == date(2026, 11, 30)  # a day is kept once it ended six hours ago; Dec 1 is still live
    assert DailyFigure.objects.filter(organization=org, metric=Metric.SENT).count() == 1
