"""The settings impact preview (SPEC §17 W1): hand-checked small worlds, the admin's start and status views,
nothing written to the live data, progress to 100 %, and the preview kept with the save's audit event."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from dunning.engine import run_dunning
from dunning.impact import current_values, impact_compute, impact_preview_run, impact_preview_start
from dunning.models import DunningDecision, DunningSettings, Preset, PreviewStatus, SettingsPreview
from notifications.models import Message
from payments.models import PaymentRequest, PaymentSettings, Snooze
from practices.importer import feed_import
from practices.models import Account, AuditEvent, Bill, Patient, Role
from practices.timezones import organization_today
from tests.factories import (
    AccountFactory,
    GuarantorFactory,
    MembershipFactory,
    OrganizationFactory,
    feed_patient,
    feed_statement,
)

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 24)


@pytest.fixture(autouse=True)
def _no_worker(monkeypatch):
    """The task is queued on commit; here the tests run it themselves (a worker round trip has its own test)."""
    queued: list[int] = []
    monkeypatch.setattr("dunning.impact.service._enqueue", queued.append)
    return queued


@pytest.fixture
def org():
    organization = OrganizationFactory.create(
        slug="smile-dental", name="Smile Dental", timezone="America/Denver"
    )
    DunningSettings.objects.update_or_create(organization=organization,
                                             defaults={"preset": Preset.objects.get(slug="standard-30")})  # fmt: skip
    PaymentSettings.objects.get_or_create(organization=organization)
    return organization


@pytest.fixture
def manager(client, org):
    membership = MembershipFactory.create(organization=org, role=Role.BILLING_MANAGER)
    client.force_login(membership.user)
    return membership.user


def guarantor(org, pid, portion="100.00", aging="0_30", **kw) -> Patient:
    defaults = {"mobile_phone": "+18015550100", "email": f"{pid.lower()}@example.com", "address_line1": "1 Main St",
                "address_city": "Salt Lake City", "address_state": "UT", "address_zip": "84101", "address_status": "valid",
                "timezone": "America/Denver", "first_name": "Ana", "last_name": pid, "last_visit_date": date(2026, 10, 1)}  # fmt: skip
    patient = GuarantorFactory.create(organization=org, external_id=pid, **{**defaults, **kw})
    AccountFactory.create(guarantor=patient, patient_portion=Decimal(portion), total=Decimal(portion),
                          aging_category=aging)  # fmt: skip
    return patient


def bill(org, patient, bill_id, start, amount="100.00") -> Bill:
    moment = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    return Bill.objects.create(organization=org, guarantor=patient, bill_id=bill_id, source="statement", statement_date=start,
                               amount_due=Decimal(amount), created_at=moment, effective_created_date=start,
                               last_seen_at=moment)  # fmt: skip


def run(org, day):
    run_dunning(
        organization=org,
        on=day,
        now=datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=18),
    )


def compute(org, **changes):
    current = current_values(organization=org)
    return impact_compute(organization=org, current=current, proposed={**current, **changes}, start=TODAY)


def live_counts():
    return {
        "bills": list(Bill.objects.order_by("pk").values_list("pk", "state", "generation", "next_dunning_date",
                                                             "effective_created_date", "amount_changed")),
        "decisions": DunningDecision.objects.count(), "messages": Message.objects.count(),
        "requests": PaymentRequest.objects.count(), "snoozes": Snooze.objects.count(),
        "audit": AuditEvent.objects.count(), "patients": Patient.objects.count(), "accounts": Account.objects.count(),
        "dunning": list(DunningSettings.objects.values()), "payment": list(PaymentSettings.objects.values()),
    }  # fmt: skip


# --- hand-checked worlds -------------------------------------------------------------------------------------


def test_a_higher_minimum_takes_a_known_guarantor_off_the_list_and_an_aging_category_puts_one_on(org):
    guarantor(org, "G100", portion="100.00")
    guarantor(org, "G200", portion="200.00")
    guarantor(org, "G090", portion="300.00", aging="over_90")
    PaymentSettings.objects.filter(organization=org).update(eligible_aging=["0_30", "31_60", "61_90"])

    bulk = compute(org, min_payment_amount="150.00", eligible_aging=["0_30", "31_60", "61_90", "over_90"])[
        "bulk_list"
    ]

    assert (bulk["on"], bulk["current"], bulk["proposed"]) == ("2026-11-24", 2, 2)
    assert [p["guarantor_id"] for p in bulk["leaving"]["sample"]] == ["G100"]
    assert [p["guarantor_id"] for p in bulk["entering"]["sample"]] == ["G090"]
    assert bulk["entering"]["sample"][0] == {
        "guarantor_id": "G090",
        "name": "Ana G090",
        "patient_portion": "300.00",
    }
    assert (bulk["entering"]["count"], bulk["leaving"]["count"]) == (1, 1)


def test_a_faster_preset_changes_the_messages_per_day(org):
    """A bill 4 days into standard-30 (its statement sent). Standard: the day-10 text on Nov 30, the day-20
    email on Dec 10, the day-30 due notice on all three channels on Dec 20. Accelerated-14: nothing before
    the stored next date (Nov 30, age 10), then a catch-up of its own undecided steps (D2: the latest of each
    channel: the day-5 text, the day-10 email, the day-0 letter), the day-14 due notice by email and text on
    Dec 4, the day-21 text on Dec 11 and the day-28 past-due email and letter on Dec 18."""
    start = TODAY - timedelta(days=4)
    bill(org, guarantor(org, "G1"), "S-1", start)
    run(org, start)

    result = compute(org, preset="accelerated-14")

    def day(side, d):
        return {k: v for k, v in result[side]["per_day"][(d - TODAY).days].items() if k != "date" and v}

    now, then = result["current"], result["proposed"]
    assert {d: day("current", d) for d in (date(2026, 11, 30), date(2026, 12, 10), date(2026, 12, 20))} == {
        date(2026, 11, 30): {"sms": 1}, date(2026, 12, 10): {"email": 1}, date(2026, 12, 20): {"sms": 1, "email": 1, "paper": 1},
    }  # fmt: skip
    assert now["totals"] == {"sms": 2, "email": 2, "paper": 1} and now["messages"] == 5
    assert {d: day("proposed", d) for d in (date(2026, 11, 30), date(2026, 12, 4), date(2026, 12, 11), date(2026, 12, 18))} == {
        date(2026, 11, 30): {"sms": 1, "email": 1, "paper": 1}, date(2026, 12, 4): {"sms": 1, "email": 1},
        date(2026, 12, 11): {"sms": 1}, date(2026, 12, 18): {"email": 1, "paper": 1},
    }  # fmt: skip
    assert then["totals"] == {"sms": 3, "email": 3, "paper": 2} and then["messages"] == 8
    assert (now["paper_cost"], then["paper_cost"]) == ("0.75", "1.50")
    assert [c["key"] for c in result["changed"]] == ["preset"]


def test_paper_is_priced_at_each_sides_paper_cost(org):
    bill(org, guarantor(org, "G1"), "S-1", TODAY)
    result = compute(org, paper_cost="1.10")
    assert result["same_forecast"] is True  # the runs decide the same; only the price differs
    assert (result["current"]["paper_letters"], result["current"]["paper_cost"]) == (1, "0.75")
    assert (result["proposed"]["paper_letters"], result["proposed"]["paper_cost"]) == (1, "1.10")


def test_a_higher_print_threshold_drops_a_known_letter(org):
    bill(org, guarantor(org, "G1"), "S-1", TODAY, amount="40.00")
    bill(org, guarantor(org, "G2"), "S-2", TODAY, amount="90.00")
    result = compute(org, min_print="50.00")
    assert result["current"]["per_day"][0] == {"date": "2026-11-24", "sms": 2, "email": 2, "paper": 2}
    assert result["proposed"]["per_day"][0] == {"date": "2026-11-24", "sms": 2, "email": 2, "paper": 1}


def test_a_reset_rule_resets_a_known_bill_of_the_recent_imports(org, feed_bytes):
    """Two kept feeds: S-1's amount changes between them, S-2 stays. With S9 on amount_due, the second import
    would have reset S-1 (D9); with the current settings (S9 off) nothing resets."""
    patients = [feed_patient("P1"), feed_patient("P2")]
    first = [feed_statement("S-1", "P1", amount_due="100.00"), feed_statement("S-2", "P2")]
    second = [feed_statement("S-1", "P1", amount_due="120.00"), feed_statement("S-2", "P2")]
    for at, statements in (("2026-11-10T06:00:00Z", first), ("2026-11-20T06:00:00Z", second)):
        summary = feed_import(raw=feed_bytes(generated_at=at, patients=patients, statements=statements))
        assert summary.rejected == 0, summary.errors

    resets = compute(org, reset_on_fields=True, reset_fields=["amount_due"])["resets"]

    assert resets["replayed"] is True
    assert (resets["feeds"], resets["statements"], resets["current"], resets["proposed"]) == (2, 2, 0, 1)
    assert resets["would_reset"] == {"count": 1, "sample": ["S-1"]}
    assert resets["no_longer"] == {"count": 0, "sample": []}
    # The same rule on a field that did not change resets nothing.
    assert compute(org, reset_on_fields=True, reset_fields=["due_date"])["resets"]["proposed"] == 0


def test_raising_max_open_claims_forecasts_the_held_steps_going_out(org):
    """K6: a bill of Nov 20 whose guarantor has 3 open claims over a limit of 2, its statement held. Current
    settings: nothing in 30 days. No limit (or 3): the run of Nov 24 releases it and D2 sends the held
    statement on all three channels (the latest due step of each), then standard-30 goes on: the day-10 text
    on Nov 30, the day-20 email on Dec 10, the day-30 due notice on all three channels on Dec 20."""
    PaymentSettings.objects.filter(organization=org).update(max_open_claims=2)
    start = TODAY - timedelta(days=4)
    bill(org, guarantor(org, "G1", open_claims=3), "S-1", start)
    run(org, start)
    assert DunningDecision.objects.filter(reason="claims_pending").count() == 3

    for proposed in (None, 3):
        result = compute(org, max_open_claims=proposed)
        assert result["same_forecast"] is False
        assert result["current"]["messages"] == 0
        days = {d["date"]: (d["sms"], d["email"], d["paper"]) for d in result["proposed"]["per_day"]
                if d["sms"] or d["email"] or d["paper"]}  # fmt: skip
        assert days == {"2026-11-24": (1, 1, 1), "2026-11-30": (1, 0, 0), "2026-12-10": (0, 1, 0),
                        "2026-12-20": (1, 1, 1)}, proposed  # fmt: skip
    assert compute(org, max_open_claims=1)["proposed"]["messages"] == 0


def test_a_change_the_runs_do_not_read_compares_the_same_forecast(org):
    bill(org, guarantor(org, "G1"), "S-1", TODAY)
    result = compute(org, bill_reset_flag=True)
    assert result["same_forecast"] is True
    assert result["current"] == result["proposed"]
    assert result["resets"]["replayed"] is True and result["resets"]["feeds"] == 0


# --- the preview row and its task ----------------------------------------------------------------------------


def test_a_preview_writes_nothing_to_the_live_data_and_its_progress_reaches_100(org, manager, _no_worker):
    start = TODAY - timedelta(days=40)
    bill(org, guarantor(org, "G1"), "S-1", start)
    run(org, start)
    bill(org, guarantor(org, "G2"), "S-2", TODAY)
    guarantor(org, "G3", portion="20.00")
    before = live_counts()
    proposed = {**current_values(organization=org), "preset": "accelerated-14", "min_payment_amount": "50.00"}

    preview = impact_preview_start(
        organization=org, kind="dunning", proposed=proposed, user=manager, today=TODAY
    )
    assert (preview.status, preview.progress) == (PreviewStatus.PENDING, 0)
    done = impact_preview_run(preview_id=preview.pk)

    assert done is not None and done.error == "" and done.result is not None
    assert (done.status, done.progress, done.stage) == (PreviewStatus.DONE, 100, "Done")
    assert done.result["proposed"]["messages"] > 0 and done.result["bulk_list"]["leaving"]["count"] == 1
    assert live_counts() == before
    assert impact_preview_run(preview_id=preview.pk) is None  # a second delivery of the task does nothing


def test_progress_is_written_while_the_preview_runs(org, manager, monkeypatch):
    bill(org, guarantor(org, "G1"), "S-1", TODAY)
    seen: list[tuple[int, str]] = []
    from dunning.impact import service

    real = service._reporter

    def spy(rows):
        report = real(rows)

        def wrapped(fraction, stage):
            report(fraction, stage)
            seen.append(rows.values_list("progress", "stage").get())

        return wrapped

    monkeypatch.setattr(service, "_reporter", spy)
    preview = impact_preview_start(organization=org, kind="dunning", user=manager, today=TODAY,
                                   proposed={**current_values(organization=org), "min_print": "500.00"})  # fmt: skip
    impact_preview_run(preview_id=preview.pk)
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and len(set(percents)) > 3 and max(percents) >= 85
    assert {stage for _, stage in seen} >= {"Reading the active bills", "Forecasting 30 days"}


def test_a_failing_preview_says_so(org, manager, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("dunning.impact.service.impact_compute", broken)
    preview = impact_preview_start(organization=org, kind="dunning", user=manager, today=TODAY,
                                   proposed=current_values(organization=org))  # fmt: skip
    failed = impact_preview_run(preview_id=preview.pk)
    assert failed is not None and (failed.status, failed.error) == (
        PreviewStatus.FAILED,
        "the database went away",
    )


# --- the admin ------------------------------------------------------------------------------------------------


def payment_form(**overrides):
    data = {"min_payment_amount": "0.00", "eligible_aging": ["0_30", "31_60", "61_90", "over_90"],
            "max_open_claims": "", "request_channels": ["sms", "email"], "snooze_reasons": "Paying Friday",
            "link_lifetime_days": "30", "plan_max_months": "6", "plan_min_installment": "25.00"}  # fmt: skip
    data.update(overrides)
    return data


def htmx(client, method, url, data=None):
    return getattr(client, method)(url, data or {}, headers={"HX-Request": "true"})


def test_the_payment_settings_form_previews_its_unsaved_values_and_the_save_keeps_the_preview(
    client, org, manager, _no_worker, django_capture_on_commit_callbacks
):
    guarantor(org, "G100", portion="100.00")
    row = PaymentSettings.objects.get(organization=org)
    change = reverse("admin:payments_paymentsettings_change", args=[row.pk])
    page = client.get(change).content.decode()
    assert "Preview impact" in page and "js/impact-preview.js" in page and "htmx-2.min.js" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = htmx(client, "post", reverse("admin:payments_paymentsettings_impact", args=[row.pk]),
                        payment_form(min_payment_amount="150.00"))  # fmt: skip
    assert response.status_code == 200
    preview = SettingsPreview.objects.get()
    assert (preview.kind, preview.requested_by, preview.proposed["min_payment_amount"]) == (
        "payment",
        manager,
        "150.00",
    )
    assert preview.current["min_payment_amount"] == "0.00"
    assert _no_worker == [preview.pk]
    text = response.content.decode()
    assert "waiting for a worker" in text and 'hx-trigger="load delay:1s"' in text
    row.refresh_from_db()
    assert row.min_payment_amount == Decimal("0.00")  # nothing saved

    impact_preview_run(preview_id=preview.pk)
    status = reverse("admin:payments_paymentsettings_impact_status", args=[row.pk, preview.pk])
    text = htmx(client, "get", status).content.decode()
    assert f'name="_impact_preview" value="{preview.pk}"' in text
    assert "Ana G100 (G100), $100.00" in text and "Current settings" in text and "Proposed settings" in text

    response = client.post(
        change, {**payment_form(min_payment_amount="150.00"), "_impact_preview": str(preview.pk)}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.change", object_type="payments.PaymentSettings")
    preview.refresh_from_db()
    assert preview.audit_event == event
    assert event.changes["min_payment_amount"] == ["0.00", "150.00"]
    old, new = event.changes["impact_preview"]
    assert old.startswith("Current settings: ") and "bulk list 1" in old
    assert (
        new.startswith(f"Impact preview {preview.pk}: ") and "bulk list 0" in new and "−1 guarantors" in new
    )
    assert "other values" not in new


def test_a_preview_of_other_values_is_kept_with_a_note(client, org, manager):
    row = PaymentSettings.objects.get(organization=org)
    htmx(
        client,
        "post",
        reverse("admin:payments_paymentsettings_impact", args=[row.pk]),
        payment_form(min_payment_amount="150.00"),
    )
    preview = SettingsPreview.objects.get()
    impact_preview_run(preview_id=preview.pk)
    change = reverse("admin:payments_paymentsettings_change", args=[row.pk])
    client.post(change, {**payment_form(min_payment_amount="75.00"), "_impact_preview": str(preview.pk)})
    event = AuditEvent.objects.get(action="admin.change")
    assert event.changes["impact_preview"][1].endswith("Made for other values of: Minimum payment amount")


def test_a_save_without_a_finished_preview_keeps_none(client, org, manager):
    row = PaymentSettings.objects.get(organization=org)
    htmx(
        client,
        "post",
        reverse("admin:payments_paymentsettings_impact", args=[row.pk]),
        payment_form(min_payment_amount="5.00"),
    )
    preview = SettingsPreview.objects.get()  # still pending
    change = reverse("admin:payments_paymentsettings_change", args=[row.pk])
    client.post(change, {**payment_form(min_payment_amount="5.00"), "_impact_preview": str(preview.pk)})
    event = AuditEvent.objects.get(action="admin.change")
    assert "impact_preview" not in event.changes
    preview.refresh_from_db()
    assert preview.audit_event is None


def test_a_form_with_errors_is_not_previewed(client, org, manager):
    row = PaymentSettings.objects.get(organization=org)
    response = htmx(client, "post", reverse("admin:payments_paymentsettings_impact", args=[row.pk]),
                    payment_form(min_payment_amount="-1.00"))  # fmt: skip
    assert (
        "The form has errors" in response.content.decode()
        and "cannot be negative" in response.content.decode()
    )
    assert not SettingsPreview.objects.exists()


def test_another_organizations_settings_and_previews_answer_404(client, org, manager):
    other = OrganizationFactory.create(slug="other")
    theirs, _ = PaymentSettings.objects.get_or_create(organization=other)
    assert (
        htmx(
            client, "post", reverse("admin:payments_paymentsettings_impact", args=[theirs.pk]), payment_form()
        ).status_code
        == 404
    )
    preview = impact_preview_start(organization=other, kind="payment", user=None, today=TODAY,
                                   proposed=current_values(organization=other))  # fmt: skip
    mine = PaymentSettings.objects.get(organization=org)
    status = reverse("admin:payments_paymentsettings_impact_status", args=[mine.pk, preview.pk])
    assert htmx(client, "get", status).status_code == 404
    assert client.get(reverse("admin:dunning_settingspreview_change", args=[preview.pk])).status_code in (
        302,
        404,
    )


def test_the_front_desk_cannot_preview(client, org):
    membership = MembershipFactory.create(organization=org, role=Role.FRONT_DESK)
    client.force_login(membership.user)
    row = PaymentSettings.objects.get(organization=org)
    # The settings are not theirs to see (T2): no such row for them.
    assert (
        htmx(
            client, "post", reverse("admin:payments_paymentsettings_impact", args=[row.pk]), payment_form()
        ).status_code
        == 404
    )
    assert not SettingsPreview.objects.exists()


def test_a_preview_without_htmx_opens_its_own_page(client, org, manager):
    row = PaymentSettings.objects.get(organization=org)
    response = client.post(reverse("admin:payments_paymentsettings_impact", args=[row.pk]), payment_form())
    preview = SettingsPreview.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "admin:dunning_settingspreview_change", args=[preview.pk]
    )
    impact_preview_run(preview_id=preview.pk)
    page = client.get(response.url).content.decode()
    assert "Settings impact preview" in page and "The next 30 days" in page


def test_the_paper_cost_is_an_organization_setting(org):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("org_settings", "--org", org.slug, "--set", "paper_cost=0.92", "--json", stdout=out)
    assert DunningSettings.objects.get(organization=org).paper_cost == Decimal("0.92")
    assert '"paper_cost": "0.92"' in out.getvalue()


def dunning_form(**overrides):
    data = {"preset": Preset.objects.get(slug="standard-30").pk, "min_electronic": "0.00", "min_print": "0.00",
            "bill_aging": "natural", "reset_fields": ["amount_due"], "run_at": "07:00", "paper_cost": "0.75"}  # fmt: skip
    data.update(overrides)
    return data


def test_the_dunning_settings_form_previews_a_preset_change_and_the_save_keeps_it(client, org, manager):
    start = organization_today(org) - timedelta(days=4)  # the form previews from the practice's today
    bill(org, guarantor(org, "G1"), "S-1", start)
    run(org, start)
    row = DunningSettings.objects.get(organization=org)
    change = reverse("admin:dunning_dunningsettings_change", args=[row.pk])
    page = client.get(change).content.decode()
    assert "Preview impact" in page and "Paper cost per letter" in page
    accelerated = Preset.objects.get(slug="accelerated-14")

    impact = reverse("admin:dunning_dunningsettings_impact", args=[row.pk])
    assert (
        htmx(client, "post", impact, dunning_form(preset=accelerated.pk, paper_cost="1.00")).status_code
        == 200
    )
    preview = SettingsPreview.objects.get()
    assert (preview.kind, preview.proposed["preset"], preview.proposed["paper_cost"]) == (
        "dunning",
        "accelerated-14",
        "1.00",
    )
    impact_preview_run(preview_id=preview.pk)
    preview.refresh_from_db()
    assert preview.result is not None
    # The hand-checked world of test_a_faster_preset_changes_the_messages_per_day, from the form this time.
    assert (preview.result["current"]["messages"], preview.result["proposed"]["messages"]) == (5, 8)
    assert (preview.result["current"]["paper_cost"], preview.result["proposed"]["paper_cost"]) == (
        "0.75",
        "2.00",
    )
    text = htmx(
        client, "get", reverse("admin:dunning_dunningsettings_impact_status", args=[row.pk, preview.pk])
    ).content.decode()
    assert "Dunning configuration" in text and "accelerated-14" in text and "$2.00" in text

    response = client.post(
        change, {**dunning_form(preset=accelerated.pk, paper_cost="1.00"), "_impact_preview": str(preview.pk)}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row.refresh_from_db()
    assert (row.preset, row.paper_cost) == (accelerated, Decimal("1.00"))
    event = AuditEvent.objects.get(action="admin.change", object_type="dunning.DunningSettings")
    preview.refresh_from_db()
    assert preview.audit_event == event
    assert event.changes["impact_preview"][1].startswith(
        f"Impact preview {preview.pk}: 8 messages in 30 days"
    )
    assert event.changes["impact_preview"][0].startswith("Current settings: 5 messages in 30 days")


def test_a_negative_paper_cost_is_refused_and_not_previewed(client, org, manager):
    row = DunningSettings.objects.get(organization=org)
    response = htmx(
        client,
        "post",
        reverse("admin:dunning_dunningsettings_impact", args=[row.pk]),
        dunning_form(paper_cost="-0.10"),
    )
    assert "A letter cannot cost less than nothing." in response.content.decode()
    assert not SettingsPreview.objects.exists()
