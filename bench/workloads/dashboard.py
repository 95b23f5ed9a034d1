"""The front desk's bulk list page (SPEC §11, B1): ``payments_dashboard:bulk`` with 50 000 eligible guarantors.

A front-desk user (staff, with a membership) is logged in with Django's test client and GETs the page of the
list organization (``list_data``), through the whole stack: middleware, the view, its selectors, the
templates. The figure is the median of 15 requests after 2 warm-up ones, and the number of SQL queries of
one request; the same page of an organization with 50 eligible guarantors must take the same number of
queries (the count does not grow with the list). The baseline is the page's data in hand-written SQL: the
count of the eligible guarantors and the first 50 rows.

The dashboard is another session's work; if its view cannot be imported yet this workload says so and
reports nothing rather than failing the run.
"""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from bench.harness import Row, median, repeat, row, say
from bench.workloads import Context
from bench.workloads.bulk_list import BASELINE
from bench.workloads.list_data import list_organization
from practices.models import Membership, Organization

URL_NAME = "payments_dashboard:bulk"
PAGE = 50


def _skipped(reason: str) -> list[Row]:
    say(f"dashboard: skipped: {reason}")
    return [
        Row(name, None, unit, None, None, budget, False, notes=f"skipped: {reason}")
        for name, unit, budget in (
            ("dashboard_list_page", "ms", "≤ 150 ms"),
            ("dashboard_list_queries", "queries", "≤ 15, same at any size"),
        )
    ]


def run(ctx: Context) -> list[Row]:
    try:
        import payments.dashboard_views  # noqa: F401

        reverse(URL_NAME, args=["x"])
    except (ImportError, NoReverseMatch) as exc:
        return _skipped(f"the dashboard view is not available ({exc!r})")

    from django.contrib.auth import get_user_model

    eligible = ctx.n(50_000, minimum=100)
    big = list_organization(eligible)
    small = list_organization(50, slug="list-small", prefix="M")
    user = get_user_model().objects.create_user("bench-front-desk", password="bench-password", is_staff=True)
    for org in (big, small):
        Membership.objects.create(user=user, organization=org, role="front_desk")
    client = Client()
    client.force_login(user)

    def get(org: Organization) -> int:
        response = client.get(reverse(URL_NAME, args=[org.slug]))
        if response.status_code != 200:
            raise RuntimeError(f"the dashboard answered {response.status_code}")
        return len(response.content)

    def queries(org: Organization) -> int:
        with CaptureQueriesContext(connection) as captured:
            get(org)
        return len(captured.captured_queries)

    reps = 15
    times = repeat(lambda: get(big), reps=reps, warmup=2)
    n_big, n_small = queries(big), queries(small)

    def sql() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({BASELINE}) q", {"org": big.pk, "on": ctx.today})
            cursor.fetchone()
            cursor.execute(f"{BASELINE} LIMIT {PAGE}", {"org": big.pk, "on": ctx.today})
            cursor.fetchall()

    base = repeat(sql, reps=reps, warmup=2)
    value, baseline = median(times) * 1000, median(base) * 1000
    say(f"dashboard: {value:.0f} ms ({n_big} queries; {n_small} with 50 eligible), SQL {baseline:.0f} ms")
    return [
        row("dashboard_list_page", value=value, unit="ms", baseline=baseline, budget="≤ 150 ms", ok=value <= 150,
            reps=[t * 1000 for t in times],
            notes=f"GET of the bulk list, {eligible:,} eligible, median of {reps}; baseline: the count and the first "
            f"{PAGE} rows in hand-written SQL"),
        row("dashboard_list_queries", value=n_big, unit="queries", baseline=n_small,
            budget="≤ 15, same at any size", ok=n_big <= 15 and n_big == n_small,
            notes=f"queries of one request with {eligible:,} eligible; baseline: with 50 eligible"),
    ]  # fmt: skip
