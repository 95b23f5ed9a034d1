"""The forecast of a settings impact preview (W1): what the engine's daily runs would decide over the next
days under given settings, against the organization's live data, writing nothing.

The engine decides once per distinct set of facts (``rules.decide``). The forecast goes one step further:
bills that share every fact a run reads (the ``Facts`` but the age and the decided steps), their dunning
clock, their stored next date (D13), their snooze and their decided steps go through the days together.
One read groups the organization's active bills that way in the database (a few thousand groups for a
million bills: the clock and the contact profile make most of the difference); each group then walks the
days through the same ``decide``, ``Rules`` and next-date rule as the daily run (``engine/run.py``), its
decided steps growing as the run would record them, and sends count once per bill of the group.

What the forecast does not know is what has not happened yet: the imports, payments, requests, snoozes and
opt-outs of the coming days. It is the live data's own future under each settings, which is what tells
two settings apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, Q

from dunning.engine.rules import DROP_KINDS, Facts, Outcome, Rules, Step, decide, held
from dunning.engine.run import (
    HELD_UNTIL_SETTLED,
    SENT_BY_PMS_CHANNEL,
    max_open_claims,
    preset_steps,
    requires_sms_consent,
)
from dunning.models import Action, DunningDecision, DunningSettings
from notifications.models import Channel, OptOut
from payments.models import Snooze
from practices.models import Bill, BillSource, BillState, Organization, Patient, SmsConsent

CHANNELS = (Channel.SMS.value, Channel.EMAIL.value, Channel.PAPER.value)
# Bills per read: the read reports its progress between chunks of about this many bills.
CHUNK = 100_000
MAX_CHUNKS = 20
BITS_PER_WORD = 62  # a signed 64-bit SUM in SQLite and PostgreSQL alike

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, stage: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Group:
    """Active bills that every daily run of the window treats alike; ``above`` holds, per scenario, whether
    their amount due exceeds its electronic and print thresholds (S4, S5)."""

    count: int
    request: bool
    do_not_contact: bool
    above: tuple[tuple[bool, bool], ...]
    sms: bool
    email: bool
    sms_opted_out: bool
    email_opted_out: bool
    address_invalid: bool
    amount_changed: bool
    effective: date
    next_date: date | None
    snoozed_until: date | None
    decided: tuple[int, ...]  # bit masks over the forecast's step keys
    sent_by_pms: str = ""  # §13.2: the channel the PMS already sent the statement by
    sms_consent: bool = False  # §13.2: the PMS says yes to texts
    # K6, per scenario: the guarantor's open claims exceed that scenario's max_open_claims.
    claims_over: tuple[bool, ...] = ()
    claims_held: bool = False  # K6: the last run held the bill's steps for its claims


@dataclass
class Forecast:
    """Messages the runs of ``days`` would send, per day and channel, and the bills they would complete."""

    days: list[date]
    sends: list[dict[str, int]]
    completed: int = 0
    bills: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def total(self, channel: str) -> int:
        return sum(day[channel] for day in self.sends)

    def as_json(self, *, paper_cost: Decimal) -> dict[str, Any]:
        paper = self.total(Channel.PAPER)
        return {
            "per_day": [{"date": day.isoformat(), **sends} for day, sends in zip(self.days, self.sends, strict=True)],
            "totals": {channel: self.total(channel) for channel in CHANNELS},
            "messages": sum(self.total(channel) for channel in CHANNELS),
            "by_kind": dict(sorted(self.kinds.items())),
            "paper_letters": paper,
            "paper_cost_each": f"{paper_cost:.2f}",
            "paper_cost": f"{(paper_cost * paper).quantize(Decimal('0.01')):.2f}",
            "bills_completed": self.completed,
            "bills_read": self.bills,
        }  # fmt: skip


def _rules(settings: DunningSettings, steps: tuple[Step, ...], on: date) -> Rules:
    # As run_dunning builds them.
    return Rules(
        steps=steps, on=on, drop_to_paper=settings.drop_to_paper_on_opt_out,
        skip_paper=settings.skip_paper_when_electronic, communicate_on_update=settings.communicate_on_update,
    )  # fmt: skip


def _step_keys(steps: Sequence[tuple[Step, ...]], days: Sequence[date]) -> list[tuple[str, str]]:
    """Every (step key, channel) a run of these steps on these days may find decided (D1): the steps, the
    letters dropped to paper (D5) and the bill updates of each day (D10)."""
    keys: dict[tuple[str, str], None] = {}
    for preset in steps:
        for step in preset:
            keys[(step.key, step.channel)] = None
            if step.kind in DROP_KINDS:
                keys[(f"drop:{step.age}:{step.kind}", Channel.PAPER.value)] = None
    for day in days:
        for channel in (Channel.SMS.value, Channel.EMAIL.value):
            keys[(f"update:{day.isoformat()}", channel)] = None
    return list(keys)


def forecast(
    *, organization: Organization, settings: Sequence[DunningSettings], start: date, days: int = 30,
    progress: Progress = _no_progress, claim_limits: Sequence[int | None] | None = None,
) -> list[Forecast]:  # fmt: skip
    """The daily runs of ``start`` and the ``days - 1`` days after it under each of ``settings``, from one
    read of the live data. Reads only; ``progress`` hears the fraction done and what is being done.
    ``claim_limits``: each scenario's ``max_open_claims`` (K6), the organization's own by default."""
    window = [start + timedelta(days=n) for n in range(days)]
    if claim_limits is None:
        claim_limits = [max_open_claims(organization)] * len(settings)
    steps = [preset_steps(s.preset_id) if s.preset_id is not None else () for s in settings]
    keys = _step_keys(steps, window)
    consent = requires_sms_consent(organization)  # a notification setting: the same on both sides
    progress(0.0, "Reading the active bills")
    groups = read_groups(
        organization=organization,
        thresholds=[(s.min_electronic, s.min_print) for s in settings],
        keys=keys, start=start, end=window[-1], progress=lambda f: progress(0.8 * f, "Reading the active bills"),
        claim_limits=claim_limits,
    )  # fmt: skip
    bills = sum(g.count for g in groups)
    results = []
    for index, (config, preset) in enumerate(zip(settings, steps, strict=True)):
        progress(0.8 + 0.2 * index / len(settings), f"Forecasting {days} days")
        rules = [_rules(config, preset, day) for day in window]
        result = (
            walk(groups, scenario=index, rules=rules, keys=keys, require_sms_consent=consent)
            if preset
            else Forecast(days=window, sends=[dict.fromkeys(CHANNELS, 0) for _ in window])
        )
        result.bills = bills
        results.append(result)
    progress(1.0, f"Forecast {days} days")
    return results


def walk(
    groups: Sequence[Group], *, scenario: int, rules: Sequence[Rules], keys: Sequence[tuple[str, str]],
    require_sms_consent: bool = False,
) -> Forecast:  # fmt: skip
    """Each group through the days of ``rules`` (one Rules per day), as the daily run treats a bill
    (``_Run.take``): not read before its stored next date; before its clock starts, read again on that day;
    snoozed, read again tomorrow (D11); otherwise decided by ``decide`` and given its next step's date, or
    completed past its last step. A read consumes the bill-update flag (D10). K6: a bill held for claims
    that are within the scenario's limit is released on the first day (``_release_settled_claims``); one
    still held past its last step waits instead of completing."""
    window = [r.on for r in rules]
    result = Forecast(days=window, sends=[dict.fromkeys(CHANNELS, 0) for _ in window])
    memo: list[dict[Facts, tuple[Outcome, ...]]] = [{} for _ in window]
    sent: dict[tuple[Outcome, ...], list[tuple[str, str]]] = {}
    next_ages: dict[int, int | None] = {}
    decoded: dict[tuple[int, ...], frozenset[tuple[str, str]]] = {}
    last_rules = rules[-1]
    for group in groups:
        above_electronic, above_print = group.above[scenario]
        decided = decoded.get(group.decided)
        if decided is None:
            decided = decoded[group.decided] = _decode(group.decided, keys)
        next_date, changed, count = group.next_date, group.amount_changed, group.count
        over = bool(group.claims_over) and group.claims_over[scenario]
        waiting = group.claims_held
        for index, day in enumerate(window):
            if waiting and not over and next_date is not None and next_date > day:
                next_date = day  # K6: the claims are within the limit, the run releases the bill
            if next_date is not None and next_date > day:
                continue
            age = (day - group.effective).days
            if age < 0:
                next_date, changed, waiting = group.effective, False, False
                continue
            if group.snoozed_until is not None and group.snoozed_until > day:
                next_date, changed, waiting = day + timedelta(days=1), False, False
                continue
            facts = Facts(
                group.request, age, group.do_not_contact, above_electronic, above_print, group.sms, group.email,
                group.sms_opted_out, group.email_opted_out, group.address_invalid, changed, decided,
                group.sent_by_pms, require_sms_consent and not group.sms_consent, over,
            )  # fmt: skip
            outcomes = memo[index].get(facts)
            if outcomes is None:
                outcomes = memo[index][facts] = decide(facts, rules[index])
            if outcomes:
                sends = sent.get(outcomes)
                if sends is None:
                    sends = sent[outcomes] = [
                        (o.channel, o.kind) for o in outcomes if o.action == Action.SEND
                    ]
                day_sends = result.sends[index]
                for channel, kind in sends:
                    day_sends[channel] += count
                    result.kinds[kind] = result.kinds.get(kind, 0) + count
                decided = decided | {(o.step_key, o.channel) for o in outcomes}
            changed = False
            waiting = over and held(facts, rules[index])
            if age not in next_ages:
                next_ages[age] = last_rules.next_age(age)
            next_age = next_ages[age]
            if next_age is None and waiting:  # K6: held past its last step, not completed
                next_date = HELD_UNTIL_SETTLED
                continue
            if next_age is None:  # past its last step: completed (D11), read no more
                result.completed += count
                break
            next_date = group.effective + timedelta(days=next_age)
    return result


def _decode(masks: tuple[int, ...], keys: Sequence[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    found = []
    for word, mask in enumerate(masks):
        bit = 0
        while mask:
            if mask & 1:
                found.append(keys[word * BITS_PER_WORD + bit])
            mask >>= 1
            bit += 1
    return frozenset(found)


# --- the read ------------------------------------------------------------------------------------------------


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])  # SQLite returns dates as text


def read_groups(
    *, organization: Organization, thresholds: Sequence[tuple[Decimal, Decimal]], keys: Sequence[tuple[str, str]],
    start: date, end: date, progress: Callable[[float], None] = lambda fraction: None,
    claim_limits: Sequence[int | None] = (),
) -> list[Group]:  # fmt: skip
    """The organization's active bills a run between ``start`` and ``end`` would read (next date on or before
    ``end``, or none yet, or held for claims that a run may release: K6), grouped by everything the runs look
    at, with their count. Set-based: one grouping query per chunk of bill ids, on SQLite as on PostgreSQL.
    ``claim_limits`` holds each scenario's ``max_open_claims`` (none: no limit)."""
    limits = list(claim_limits) or [None] * len(thresholds)
    due = Bill.objects.filter(
        Q(next_dunning_date__lte=end) | Q(next_dunning_date__isnull=True) | Q(claims_held=True),
        organization=organization, state=BillState.ACTIVE,
    )  # fmt: skip
    span = due.aggregate(low=Min("pk"), high=Max("pk"), bills=Count("pk"))
    if not span["bills"]:
        progress(1.0)
        return []
    low, high = span["low"], span["high"]
    chunks = max(1, min(MAX_CHUNKS, -(-span["bills"] // CHUNK)))
    width = -(-(high - low + 1) // chunks)
    words = max(1, -(-len(keys) // BITS_PER_WORD))
    sql = _group_sql(len(keys), words, len(thresholds))
    per_scenario = [(e, p, limit) for (e, p), limit in zip(thresholds, limits, strict=True)]
    merged: dict[tuple[Any, ...], int] = {}
    for chunk in range(chunks):
        lo = low + chunk * width
        hi = min(high, lo + width - 1)
        params = _group_params(organization, per_scenario, keys, start, end, lo, hi)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for row in cursor.fetchall():
                key = tuple(row[:-1])
                merged[key] = merged.get(key, 0) + row[-1]
        progress((chunk + 1) / chunks)
    n = len(thresholds)
    groups = []
    for key, count in merged.items():
        request, dnc, *rest = key
        above = tuple((bool(rest[3 * i]), bool(rest[3 * i + 1])) for i in range(n))
        claims = tuple(bool(rest[3 * i + 2]) for i in range(n))
        facts = rest[3 * n : 3 * n + 12]
        (
            sms,
            email,
            sms_out,
            email_out,
            invalid,
            changed,
            effective,
            next_date,
            snoozed,
            sent_by_pms,
            consent,
            claims_held,
        ) = facts
        masks = tuple(int(m) for m in rest[3 * n + 12 :])
        group = Group(
            count=int(count), request=bool(request), do_not_contact=bool(dnc), above=above, sms=bool(sms),
            email=bool(email), sms_opted_out=bool(sms_out), email_opted_out=bool(email_out),
            address_invalid=bool(invalid), amount_changed=bool(changed), effective=_as_date(effective) or start,
            next_date=_as_date(next_date), snoozed_until=_as_date(snoozed), decided=masks,
            sent_by_pms=SENT_BY_PMS_CHANNEL.get(sent_by_pms, ""), sms_consent=bool(consent),
            claims_over=claims, claims_held=bool(claims_held),
        )  # fmt: skip
        groups.append(group)
    return groups


def _group_sql(n_keys: int, words: int, n_thresholds: int) -> str:
    bills, patients, decisions = _table(Bill), _table(Patient), _table(DunningDecision)
    snoozes, optouts = _table(Snooze), _table(OptOut)
    values = ", ".join(["(%s, %s, CAST(%s AS INTEGER), CAST(%s AS BIGINT))"] * n_keys)
    sums = ", ".join(
        f"CAST(SUM(CASE WHEN k.word = {w} THEN k.bit ELSE 0 END) AS BIGINT) AS w{w}" for w in range(words)
    )
    # Per scenario: the thresholds (S4, S5) and K6's claims over its limit (a NULL limit: never over).
    above = ", ".join(
        ["b.amount_due > %s, b.amount_due > %s, COALESCE(p.open_claims > CAST(%s AS INTEGER), FALSE)"]
        * n_thresholds
    )
    masks = ", ".join(f"COALESCE(x.w{w}, 0)" for w in range(words))
    columns = 2 + 3 * n_thresholds + 12 + words
    # The facts of run._due_batches (Facts, snooze, opt-outs) and the decided steps of the bill's generation.
    # Decisions are read by the chunk's range of bill ids alone, so that the unique index that leads with the
    # bill (decision_once_per_step) serves them; another organization's bills in the range are never joined.
    return f"""
        WITH keys (step_key, channel, word, bit) AS (VALUES {values}),
        decided AS (
            SELECT d.bill_id, d.generation, {sums}
            FROM {decisions} d
            JOIN keys k ON k.step_key = d.step_key AND k.channel = d.channel
            WHERE d.bill_id BETWEEN %s AND %s
            GROUP BY d.bill_id, d.generation
        ),
        snoozed AS (
            SELECT guarantor_id, MAX(until) AS until FROM {snoozes}
            WHERE organization_id = %s AND lifted_at IS NULL AND until > %s GROUP BY guarantor_id
        ),
        sms_out AS (SELECT address FROM {optouts} WHERE organization_id = %s AND active = %s AND channel = %s),
        email_out AS (SELECT address FROM {optouts} WHERE organization_id = %s AND active = %s AND channel = %s)
        SELECT b.source = %s, p.do_not_contact, {above},
               p.mobile_phone <> '', p.email <> '', p.pms_sms_opt_out OR so.address IS NOT NULL,
               p.pms_email_opt_out OR eo.address IS NOT NULL, p.address_status = %s, b.amount_changed,
               b.effective_created_date, b.next_dunning_date, s.until, b.sent_by_pms, p.sms_consent = %s,
               b.claims_held, {masks}, COUNT(*)
        FROM {bills} b
        JOIN {patients} p ON p.id = b.guarantor_id
        LEFT JOIN decided x ON x.bill_id = b.id AND x.generation = b.generation
        LEFT JOIN snoozed s ON s.guarantor_id = b.guarantor_id
        LEFT JOIN sms_out so ON so.address = p.mobile_phone
        LEFT JOIN email_out eo ON eo.address = p.email
        WHERE b.id BETWEEN %s AND %s AND b.organization_id = %s AND b.state = %s
          AND (b.next_dunning_date IS NULL OR b.next_dunning_date <= %s OR b.claims_held = %s)
        GROUP BY {", ".join(str(i) for i in range(1, columns + 1))}
    """  # noqa: S608  (table names from the models, values as parameters)


def _group_params(
    organization: Organization, thresholds: Sequence[tuple[Decimal, Decimal, int | None]],
    keys: Sequence[tuple[str, str]], start: date, end: date, lo: int, hi: int,
) -> list[Any]:  # fmt: skip
    org, active = organization.pk, BillState.ACTIVE.value
    params: list[Any] = []
    for index, (key, channel) in enumerate(keys):
        params += [key, channel, index // BITS_PER_WORD, 1 << (index % BITS_PER_WORD)]
    params += [lo, hi]
    params += [org, start]
    params += [org, True, Channel.SMS.value, org, True, Channel.EMAIL.value]
    params += [BillSource.REQUEST.value]
    for electronic, paper, limit in thresholds:
        params += [electronic, paper, limit]
    params += ["invalid", SmsConsent.YES.value]
    params += [lo, hi, org, active, end, True]
    return params
