"""Settings impact preview (SPEC §11, §17 W1): a 30-day forecast over 1 000 000 active bills, with progress.

Data: one organization with 1 000 000 guarantors (``bench.data.guarantors``: a few percent without email or
phone, opted out in the PMS, do-not-contact, with an invalid address), each with one active statement bill
on ``standard-30`` as the morning before the daily run finds it: ages spread over 0-89 days, every step
before the bill's age decided (the trail a run reads), the next due date stored (D13), so that the bills
standing at a step's age (about 8 %) are due today; 1 % of the guarantors snoozed for the first ten days,
1 % of the bills with an amount change waiting (D10).

The figure is the preview's task itself (``impact_preview_run`` over a ``SettingsPreview`` row, its progress
written to the row as it goes) for a change the daily run reads (the preset to ``accelerated-14`` and the
electronic threshold to 50.00): two 30-day forecasts, current and proposed, and the bulk list. The baseline
is the one SPEC §11 names, 30 single-day dry runs of the engine (``run_dunning(dry_run=True)``, today and the
29 days after) under the proposed settings: the preview does more than that (the current settings' forecast
and the list too), and the row also gives a forecast of the proposed settings alone, the baseline's work.
A dry run cannot carry one day's decisions into the next, so on its later days it decides catch-ups the
preview does not; the first day must agree exactly, and the row says whether it does. One repetition of the
baseline: at full size it takes over an hour on a 2-core machine.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench import data
from bench.harness import Row, median, repeat, row, say, timed
from bench.workloads import Context
from dunning.engine import run_dunning
from dunning.impact import current_values, impact_preview_run
from dunning.impact.forecast import forecast
from dunning.impact.scenario import scenario
from dunning.models import DunningSettings, Preset, PresetStep, PreviewStatus, SettingsPreview
from practices.models import Organization

DAYS = 30
MOMENT_HOUR_UTC = 19  # noon in Denver
CHANGE = {"preset": "accelerated-14", "min_electronic": "50.00"}
BUDGET = "≤ 60 s, with progress; ratio ≤ 1"


def run(ctx: Context) -> list[Row]:
    today = ctx.today
    n = ctx.n(1_000_000, minimum=1000)
    say(f"impact preview: {n:,} guarantors and active bills, the morning before the daily run")
    seconds, org = timed(lambda: _organization(n, today))
    say(f"impact preview: data in {seconds:.0f} s")
    current = current_values(organization=org)
    proposed = {**current, **CHANGE}
    moment = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=MOMENT_HOUR_UTC)

    previews: list[SettingsPreview] = []

    def preview() -> None:
        made = SettingsPreview.objects.create(
            organization=org, kind="dunning", start_date=today, days=DAYS, current=current, proposed=proposed
        )
        done = impact_preview_run(preview_id=made.pk)
        assert done is not None
        previews.append(done)

    reps = 3 if ctx.scale >= 1 else 5
    times = repeat(preview, reps=reps, warmup=1)
    last = previews[-1]
    if last.status != PreviewStatus.DONE or last.result is None:
        raise RuntimeError(f"the preview did not finish: {last.status} {last.error}")
    progress_seen = SettingsPreview.objects.filter(pk=last.pk, progress=100).exists()
    value = median(times)
    alone = scenario(name="proposed", organization=org, values=proposed).dunning
    single = median(
        repeat(lambda: forecast(organization=org, settings=[alone], start=today, days=DAYS), reps=reps)
    )
    say(
        f"impact preview: {value:.1f} s (median of {reps}), the proposed forecast alone {single:.1f} s; baseline"
    )

    day0: dict[str, int] = {}

    def dry_runs() -> None:
        _apply(org, proposed)
        for offset in range(DAYS):
            day = today + timedelta(days=offset)
            decisions = run_dunning(
                organization=org, on=day, dry_run=True, now=moment + timedelta(days=offset)
            )
            if offset == 0:
                sends = Counter(d.channel for d in decisions if d.action == "send")
                day0.update({channel: sends.get(channel, 0) for channel in ("sms", "email", "paper")})
            say(f"impact preview: dry run {offset + 1}/{DAYS}: {len(decisions):,} decisions")
        _apply(org, current)

    baseline, _ = timed(dry_runs)
    result = last.result
    forecast0 = {k: v for k, v in result["proposed"]["per_day"][0].items() if k != "date"}
    sends0 = sum(day0.values())
    mismatch = "" if forecast0 == day0 and sends0 > 0 else f"DAY 0 DIFFERS: {forecast0} vs {day0}. "
    if not progress_seen:
        mismatch += "THE PREVIEW'S PROGRESS DID NOT REACH 100. "
    ratio = value / baseline
    say(f"impact preview: baseline {baseline:.1f} s, ratio {ratio:.4f} {mismatch}")
    notes = (
        f"{mismatch}{result['current']['bills_read']:,} active bills; the preview's task: 2 forecasts of {DAYS} "
        f"days ({result['current']['messages']:,} messages under the current settings, "
        f"{result['proposed']['messages']:,} under the proposed), the bulk list, progress to 100 on its row; "
        f"median of {reps} after a warm-up. The proposed forecast alone: {single:.2f} s (ratio "
        f"{single / baseline:.4f}). Baseline: {DAYS} single-day dry runs of the engine under the proposed "
        f"settings, one repetition; their first day agrees with the forecast's ({sends0:,} sends)"
    )
    return [
        row("settings_impact_preview", value=value, unit="s", baseline=baseline, budget=BUDGET,
            ok=value <= 60 and ratio <= 1 and not mismatch, notes=notes, reps=times),
    ]  # fmt: skip


def _apply(org: Organization, values: dict[str, Any]) -> None:
    DunningSettings.objects.filter(organization=org).update(
        preset=Preset.objects.get(slug=values["preset"]), min_electronic=Decimal(values["min_electronic"])
    )


def _organization(n: int, today: date) -> Organization:
    org = data.organization("impact")
    preset = Preset.objects.get(slug="standard-30")
    DunningSettings.objects.create(organization=org, preset=preset)
    data.guarantors(org, n, prefix="W")
    data.statement_bills(org, effective="%(on)s::date - (p.id %% 90)::int", params={"on": today})
    steps = list(
        PresetStep.objects.filter(preset=preset).values_list("bill_age_days", "kind", "channel", "pk")
    )
    values = ", ".join(f"({age}, '{kind}', '{channel}', {pk})" for age, kind, channel, pk in steps)
    params = {"org": org.pk, "on": today, "at": data.FEED_TIME}
    # The trail of the days before: every step before the bill's age decided on its day (D1); the next date is
    # that of the first step not decided yet, today for a bill standing at a step's age.
    data.execute(
        f"""
        INSERT INTO dunning_dunningdecision (organization_id, bill_id, generation, step_id, step_key, run_date,
            bill_age_days, step_age_days, kind, channel, action, reason, created_at)
        SELECT b.organization_id, b.id, 1, s.pk, 'step:' || s.pk, b.effective_created_date + s.age, s.age, s.age,
               s.kind, s.channel, 'send', '', %(at)s
        FROM practices_bill b JOIN (VALUES {values}) AS s(age, kind, channel, pk)
          ON s.age < %(on)s::date - b.effective_created_date
        WHERE b.organization_id = %(org)s
        """,
        params,
    )  # fmt: skip
    data.execute(
        f"""
        UPDATE practices_bill b SET next_dunning_date = b.effective_created_date + (
            SELECT min(s.age) FROM (VALUES {values}) AS s(age, kind, channel, pk)
            WHERE s.age >= %(on)s::date - b.effective_created_date),
            amount_changed = (b.id %% 100 = 7)
        WHERE b.organization_id = %(org)s
        """,
        params,
    )  # fmt: skip
    data.execute(
        """
        INSERT INTO payments_snooze (organization_id, guarantor_id, until, reason, created_at)
        SELECT p.organization_id, p.id, %(on)s::date + 10, 'Insurance pending', %(at)s
        FROM practices_patient p WHERE p.organization_id = %(org)s AND p.id %% 100 = 3
        """,
        params,
    )
    data.execute("VACUUM ANALYZE practices_patient, practices_account, practices_bill, dunning_dunningdecision, "
                 "payments_snooze")  # fmt: skip
    return org
