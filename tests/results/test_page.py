"""The Results page (SPEC §16 V1, T1, T2), its CSV exports and the ``results`` command (§10)."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO
from typing import cast

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from notifications.models import Channel
from practices.models import Organization, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.results import world

pytestmark = pytest.mark.django_db
NOW = world.denver("2026-12-03 10:00")


@pytest.fixture
def org_world():
    org = world.organization("smile-results")
    bill = world.campaign(org, amount="80.00")
    sms = world.message(bill, channel=Channel.SMS, sent="2026-11-20 09:00", delivered="2026-11-20 09:01")
    world.opened(sms, "2026-11-20 12:00")
    world.pay(bill, "80.00", "2026-11-21 12:00")
    other = world.campaign(org)
    world.message(other, channel=Channel.EMAIL, sent="2026-12-02 09:00")  # not settled yet: live
    return org


def _client(client, org, role=Role.FRONT_DESK):
    user = UserFactory(username=f"u-{role}")
    MembershipFactory(user=user, organization=org, role=role)
    client.force_login(user)
    return client


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.BILLING_MANAGER])
def test_members_read_the_page_with_every_chart_and_its_table(client, org_world, role):
    response = _client(client, org_world, role).get(
        reverse("results_dashboard:results", args=[org_world.slug]), {"preset": "30"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="img"') == 5
    for title in ("Funnel by channel", "Dollars recovered per week", "Undeliverable by reason",
                  "Paper: cost against what it brought in", "Accounts receivable by aging bucket"):  # fmt: skip
        assert f"<caption>{title}</caption>" in html
    assert "$80.00" in html
    assert "<form" in html and "<script" not in html.split("<main", 1)[1]  # no script of its own


@time_machine.travel(NOW, tick=False)
def test_the_payments_home_page_links_to_results(client, org_world):
    response = _client(client, org_world).get(reverse("payments_dashboard:home", args=[org_world.slug]))
    assert reverse("results_dashboard:results", args=[org_world.slug]) in response.content.decode()


@time_machine.travel(NOW, tick=False)
def test_another_practice_answers_404(client, org_world):
    stranger = OrganizationFactory(slug="elsewhere")
    c = _client(client, stranger)
    assert c.get(reverse("results_dashboard:results", args=[org_world.slug])).status_code == 404
    assert c.get(reverse("results_dashboard:csv", args=[org_world.slug, "by-channel"])).status_code == 404


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"since": "2026-11-10", "until": "2026-11-01"}, "is before the start date"),
        ({"since": "2022-01-01", "until": "2026-11-01"}, "at most 3 years"),
        ({"since": "2026-13-01"}, "Enter the start date as YYYY-MM-DD."),
        ({"since": "2026-11-01", "until": "yesterday"}, "Enter the end date as YYYY-MM-DD."),
        ({"preset": "7"}, "Select a valid choice"),
    ],
)
def test_a_bad_range_is_a_form_error_on_the_page_not_a_500(client, org_world, query, error):
    c = _client(client, org_world)
    response = c.get(reverse("results_dashboard:results", args=[org_world.slug]), query)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    csv = c.get(reverse("results_dashboard:csv", args=[org_world.slug, "by-channel"]), query)
    assert csv.status_code == 400


@time_machine.travel(NOW, tick=False)
def test_every_table_exports_as_csv(client, org_world):
    c = _client(client, org_world)
    query = {"since": "2026-11-01", "until": "2026-12-03"}
    funnel = c.get(reverse("results_dashboard:csv", args=[org_world.slug, "by-channel"]), query)
    assert funnel["Content-Type"].startswith("text/csv")
    lines = funnel.content.decode().splitlines()
    assert lines[0].startswith("Channel,Sent,Sent ($),Delivered,Delivered ($),Link opened")
    assert lines[1] == "SMS,1,80.00,1,80.00,1,80.00,0,0.00,1,80.00"
    assert lines[2] == "Email,1,100.00,0,0.00,0,0.00,0,0.00,0,0.00"
    assert lines[3].startswith("All messages,2,180.00")
    for table in ("by-kind", "by-step", "recovered-by-week", "undeliverable", "paper", "ar"):
        response = c.get(reverse("results_dashboard:csv", args=[org_world.slug, table]), query)
        assert response.status_code == 200, table
    weeks = c.get(reverse("results_dashboard:csv", args=[org_world.slug, "recovered-by-week"]), query)
    assert "2026-11-16,2026-11-22,80.00" in weeks.content.decode()
    assert c.get(reverse("results_dashboard:csv", args=[org_world.slug, "nope"]), query).status_code == 404


@time_machine.travel(NOW, tick=False)
def test_the_page_takes_a_fixed_number_of_queries(client, org_world, django_assert_max_num_queries):
    c = _client(client, org_world)
    url = reverse("results_dashboard:results", args=[org_world.slug])
    with django_assert_max_num_queries(20):  # the first view builds the settled days too
        assert c.get(url, {"preset": "365"}).status_code == 200
    for _ in range(30):  # a bigger world: the same number of queries
        bill = world.campaign(org_world)
        msg = world.message(bill, channel=Channel.EMAIL, sent="2026-11-25 09:00")
        world.opened(msg, "2026-11-25 10:00")
        world.pay(bill, "10.00", "2026-11-26 10:00")
    with django_assert_max_num_queries(20):
        assert c.get(url, {"preset": "365"}).status_code == 200


@time_machine.travel(NOW, tick=False)
def test_the_command_prints_the_same_figures_as_json(org_world):
    out = StringIO()
    call_command("results", "--org", org_world.slug, "--since", "2026-11-01", "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert document["until"] == "2026-12-03"
    assert document["recovered"] == "80.00"
    assert document["funnel"]["total"]["sent"] == {"count": 2, "amount": "180.00"}
    sms = next(r for r in document["funnel"]["by_channel"] if r["key"] == "sms")
    assert sms["paid"] == {"count": 1, "amount": "80.00"}
    assert document["median_days_to_pay"] == "1.0"
    human = StringIO()
    call_command("results", "--org", org_world.slug, "--since", "2026-11-01", stdout=human)
    assert "Funnel by channel" in human.getvalue() and "$80.00" in human.getvalue()


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-10", "--until", "2026-11-01"], "before the start date"),
        (["--since", "2020-01-01"], "at most 3 years"),
        (["--since", "11/01/2026"], "--since must be a date YYYY-MM-DD"),
        (["--since", "2026-11-01", "--until", "2026-02-30"], "--until must be a date YYYY-MM-DD"),
    ],
)
def test_the_command_exits_2_with_one_line_on_a_bad_range(org_world, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        call_command("results", "--org", org_world.slug, *args, stdout=StringIO())
    assert raised.value.returncode == 2
    assert "\n" not in str(raised.value)


def test_the_command_refuses_an_unknown_organization():
    with pytest.raises(CommandError) as raised:
        call_command("results", "--org", "nope", "--since", "2026-11-01", stdout=StringIO())
    assert raised.value.returncode == 2


def test_the_ar_snapshot_is_taken_at_each_import():
    from payments.models import ARSnapshot
    from practices.importer import feed_import
    from practices.models import FeedSource
    from tests.factories import feed_patient

    org = cast(Organization, OrganizationFactory(slug="ar-world", timezone="America/Denver"))
    patients = [
        feed_patient("G1", balance={"0_30": "100.00", "31_60": "50.00", "61_90": "0", "over_90": "25.50",
                                    "insurance_estimate": "0"}),
        feed_patient("G2", balance={"0_30": "-40.00", "31_60": "0", "61_90": "0", "over_90": "0",
                                    "insurance_estimate": "0"}),
        feed_patient("D1", guarantor_id="G1"),
    ]  # fmt: skip
    for generated_at in ("2026-11-24T06:00:00Z", "2026-11-25T06:00:00Z"):
        document = {
            "organization": org.slug,
            "generated_at": generated_at,
            "patients": patients,
            "statements": [],
        }
        with time_machine.travel(generated_at, tick=False):
            feed_import(raw=json.dumps(document).encode(), source=FeedSource.COMMAND, organization=org)
        patients[0]["balance"]["0_30"] = "60.00"
    snapshots = list(ARSnapshot.objects.filter(organization=org).order_by("day"))
    assert [s.day for s in snapshots] == [
        date(2026, 11, 23),
        date(2026, 11, 24),
    ]  # 06:00 UTC is still the eve in Denver
    first = snapshots[0]
    assert (first.bucket_0_30, first.bucket_31_60, first.bucket_over_90) == (60, 50, 25.5)
    assert (
        first.total == 135.5 and first.guarantors == 1
    )  # the credit is in the totals, not a guarantor owing
    assert snapshots[1].bucket_0_30 == 20
