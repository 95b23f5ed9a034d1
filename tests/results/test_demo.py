"""The demo practice carries a few months of history for its Results page (``payments.results.demo``), and that history
leaves today's demo alone: every past campaign is over and started before the guarantor's last visit (R7), and
none of its messages is on the undeliverable list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from notifications.selectors import undeliverable_messages
from payments.models import ARSnapshot, LinkEvent, Metric, Payment, PaymentKind
from payments.results.demo import PREFIX
from payments.results.selectors import results_report
from practices.demo import seed_demo
from practices.models import Bill, BillState
from practices.timezones import organization_today
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_demo_has_months_of_results_and_today_is_untouched():
    organization, _logins, _summary = seed_demo()
    today = organization_today(organization)
    history = Bill.objects.filter(organization=organization, bill_id__startswith=PREFIX)

    assert history.count() > 30
    assert not history.exclude(state__in=[BillState.PAID, BillState.CLOSED]).exists()
    assert not history.filter(effective_created_date__gte=F("guarantor__last_visit_date")).exists()
    assert Payment.objects.filter(bill__in=history, kind=PaymentKind.REFUND).exists()
    assert LinkEvent.objects.filter(organization=organization).exists()
    assert ARSnapshot.objects.filter(organization=organization).count() >= 120
    ops = UserFactory(username="demo-ops", is_superuser=True)
    assert not undeliverable_messages(user=ops).filter(bill__in=history).exists()

    report = results_report(organization=organization, since=today - timedelta(days=119), until=today)
    assert report.recovered > 0 and report.payments > 10
    assert report.total.stage(Metric.OPENED).count > 0 and report.paper.letters > 0
    assert report.median_days is not None

    seed_demo()  # again: no second history
    assert (
        Bill.objects.filter(organization=organization, bill_id__startswith=PREFIX).count() == history.count()
    )
