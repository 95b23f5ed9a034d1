"""``run_dunning``: read the due bills, decide per distinct set of facts, write everything in bulk (D1, D13).

The run reads only the active bills whose stored next dunning date has come (or is NULL: new or reset
bills) through the partial index ``bill_dunning_due``, locking them ``FOR UPDATE SKIP LOCKED`` so that two
concurrent runs split the work instead of repeating it. It streams them in batches as plain tuples (no
model instances) with what the rules need of the guarantor, their snooze and their opt-outs in the same
query, plus one query per batch for the decisions already taken.

Writes are set-based: payment links, messages and the decisions that send are streamed with COPY on
PostgreSQL (``practices.bulk``); the skip decisions (most of a catch-up) are expanded on the server from
two small temporary tables, bills x their decision class, and every bill read gets its next due date in
one ``UPDATE … FROM``. Decisions stay unique per (bill, generation, step, channel) in the database (D1).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from dunning.engine.rules import Facts, Outcome, Rules, Step, decide, held
from dunning.models import Action, DunningDecision, DunningRun, PresetStep
from dunning.selectors import dunning_settings_get
from notifications.models import Channel, Message, NotificationSettings, OptOut, State, Template
from notifications.outbox import initial_state, messages_queue_on_commit, send_policy
from notifications.state_rules import recipient_states, rules_for
from notifications.templating import message_values, render_message, template_for
from payments.links import payment_links_create
from payments.models import PaymentSettings, Snooze, claims_over
from practices.bulk import bulk_insert, copy_rows, ids_in
from practices.models import Bill, BillSource, BillState, Organization, Patient, SentByPms, SmsConsent
from practices.timezones import candidate_zones, state_for_zip

BATCH = 10_000
NOTHING_DECIDED: frozenset[tuple[str, str]] = frozenset()
NO_POSTAL: dict[str, str] = {}

COLUMNS = (
    "pk", "bill_id", "source", "generation", "effective_created_date", "amount_due", "amount_changed", "due_date",
    "statement_date", "guarantor_id", "guarantor__first_name", "guarantor__last_name", "guarantor__do_not_contact",
    "guarantor__mobile_phone", "guarantor__email", "guarantor__pms_sms_opt_out", "guarantor__pms_email_opt_out",
    "guarantor__address_status", "guarantor__address_line1", "guarantor__address_line2", "guarantor__address_city",
    "guarantor__address_state", "guarantor__address_zip", "guarantor__timezone", "guarantor__timezone_source",
    "snoozed", "sms_blocked", "email_blocked", "guarantor__preferred_name", "guarantor__language", "guarantor__care_of",
    "guarantor__sms_consent", "guarantor__open_claims", "sent_by_pms",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "organization_id", "patient_id", "bill_id", "generation", "step_key", "kind", "channel", "template_id",
    "subject", "body", "context", "destination", "postal_address", "state", "reason", "hold_detail", "scheduled_for",
    "attempts", "provider_id", "error_code", "error_message", "created_at", "updated_at",
)  # fmt: skip
DECISION_COLUMNS = (
    "organization_id", "bill_id", "generation", "step_id", "step_key", "run_date", "bill_age_days", "step_age_days",
    "kind", "channel", "action", "reason", "message_id", "created_at",
)  # fmt: skip
RUN_BILLS = "dunning_run_bill"
RUN_SKIPS = "dunning_run_skip"
# K6: the next date of a bill held for its guarantor's claims with no later step to fall due: only the claims
# settling brings it back (``_release_settled_claims``), never a date.
HELD_UNTIL_SETTLED = date(9999, 12, 31)


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision of a run, as `run_dunning --json` prints it (SPEC §10)."""

    bill_id: str
    generation: int
    bill_age_days: int
    step_age_days: int
    kind: str
    channel: str
    action: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "bill_id": self.bill_id, "generation": self.generation, "bill_age_days": self.bill_age_days,
            "step_age_days": self.step_age_days, "kind": self.kind, "channel": self.channel, "action": self.action,
            "reason": self.reason,
        }  # fmt: skip


class RunDecisions(Sequence[Decision]):
    """The decisions of a run, sorted by bill id, step age and channel. Kept compactly (a bill and its decision
    class) and materialised on iteration: a first run over a million bills decides some fifteen million."""

    def __init__(self, bills: list[tuple[str, int, int, int]], classes: list[tuple[Outcome, ...]]) -> None:
        self._bills = bills
        self._classes = classes
        self._count = sum(len(classes[index]) for _, _, _, index in bills)
        self._sorted = False

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Decision]:
        if not self._sorted:
            self._bills.sort(key=itemgetter(0))
            self._sorted = True
        for bill_id, generation, age, index in self._bills:
            for o in self._classes[index]:
                yield Decision(
                    bill_id, generation, age, o.step_age_days, o.kind, o.channel, o.action, o.reason
                )

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __repr__(self) -> str:
        return f"<RunDecisions: {self._count} decisions for {len(self._bills)} bills>"


def run_dunning(
    *, organization: Organization, on: date, dry_run: bool = False, now: datetime | None = None
) -> RunDecisions:
    """Decide and record every communication due on ``on``; with ``dry_run`` nothing is written."""
    moment = now or timezone.now()
    settings = dunning_settings_get(organization=organization)
    if settings.preset_id is None:
        return RunDecisions([], [])
    steps = preset_steps(settings.preset_id)
    rules = Rules(
        steps=steps, on=on, drop_to_paper=settings.drop_to_paper_on_opt_out,
        skip_paper=settings.skip_paper_when_electronic, communicate_on_update=settings.communicate_on_update,
    )  # fmt: skip
    with transaction.atomic():
        run = _Run(
            organization, rules, settings.min_electronic, settings.min_print, moment, write=not dry_run
        )
        _release_settled_claims(organization, on, run.max_open_claims)
        for batch in _due_batches(organization, on):
            run.take(batch)
        if dry_run:
            transaction.set_rollback(True)
        else:
            run.finish()
    return run.decisions()


def requires_sms_consent(organization: Organization) -> bool:
    """§13.2: with the organization's require_sms_consent on, only a PMS "yes" is texted."""
    return bool(
        NotificationSettings.objects.filter(organization=organization)
        .values_list("require_sms_consent", flat=True)
        .first()
    )


def max_open_claims(organization: Organization) -> int | None:
    """K6 (and R10): the organization's ``max_open_claims``; None, the default, is no limit."""
    return (
        PaymentSettings.objects.filter(organization=organization)
        .values_list("max_open_claims", flat=True)
        .first()
    )


def _release_settled_claims(organization: Organization, on: date, limit: int | None) -> None:
    """K6: the bills held for their guarantor's claims (``claims_held``) whose claims have settled since (a
    feed brought the count down, or the limit was raised or removed) fall due on ``on``: the run that follows
    reads them and catches up (D2). One UPDATE through the partial index ``bill_claims_held``, so the daily
    run still reads only the bills with something due (D13)."""
    held_bills = Bill.objects.filter(
        organization=organization, state=BillState.ACTIVE, claims_held=True, next_dunning_date__gt=on
    )
    if limit is not None:
        held_bills = held_bills.filter(guarantor__open_claims__lte=limit)
    held_bills.update(next_dunning_date=on)


def preset_steps(preset_id: int) -> tuple[Step, ...]:
    """The preset's steps as the rules take them, by age then channel."""
    return tuple(
        Step(*row)
        for row in PresetStep.objects.filter(preset_id=preset_id)
        .order_by("bill_age_days", "channel")
        .values_list("pk", "bill_age_days", "kind", "channel", "template_id")
    )


# A row is the bill's first ten columns, its guarantor's, then the bill's later ones (§13.2's sent_by_pms).
BILL_COLUMNS = (*COLUMNS[:10], *COLUMNS[33:])
GUARANTOR_COLUMNS = ("pk", *(c.removeprefix("guarantor__") for c in COLUMNS[10:33]))
# §13.2: the channel by which the PMS already sent a statement (Facts.sent_by_pms).
SENT_BY_PMS_CHANNEL = {SentByPms.MAIL: Channel.PAPER, SentByPms.EMAIL: Channel.EMAIL}


def _due_batches(organization: Organization, on: date) -> Iterator[list[tuple[Any, ...]]]:
    """The due bills with their guarantor's facts (in the order of ``COLUMNS``), locked, in batches.

    Two queries per batch, each on an index: the due bills alone (D13: ``bill_dunning_due``), then their
    guarantors by primary key with the snooze and opt-out flags. Joining them in one query let the planner
    read every patient of the database once the due set was large, so a daily run grew with the table."""
    bills = (
        Bill.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(
            Q(next_dunning_date__lte=on) | Q(next_dunning_date__isnull=True),
            organization=organization,
            state=BillState.ACTIVE,
        )
        .order_by()
        .values_list(*BILL_COLUMNS)
    )
    # PostgreSQL: a server-side cursor, a million bills never sit in memory. SQLite gives no isolation between
    # a half-read cursor and writes on the same connection, so it reads them all first.
    iterator = bills.iterator(chunk_size=BATCH) if connection.vendor == "postgresql" else iter(list(bills))
    optouts = OptOut.objects.filter(organization=organization, active=True)
    while batch := list(itertools.islice(iterator, BATCH)):
        guarantors = {
            row[0]: row[1:]
            for row in Patient.objects.filter(pk__in=ids_in({bill[9] for bill in batch}))
            .annotate(
                snoozed=Exists(
                    Snooze.objects.filter(guarantor=OuterRef("pk"), lifted_at__isnull=True, until__gt=on)
                ),
                sms_blocked=Exists(optouts.filter(channel="sms", address=OuterRef("mobile_phone"))),
                email_blocked=Exists(optouts.filter(channel="email", address=OuterRef("email"))),
            )
            .order_by()
            .values_list(*GUARANTOR_COLUMNS)
        }
        yield [bill[:10] + guarantors[bill[9]] + bill[10:] for bill in batch]


class _Run:
    def __init__(
        self, organization: Organization, rules: Rules, min_electronic: Decimal, min_print: Decimal,
        moment: datetime, *, write: bool,
    ) -> None:  # fmt: skip
        self.organization = organization
        self.rules = rules
        self.min_electronic = min_electronic
        self.min_print = min_print
        self.moment = moment
        self.write = write
        self.created = timezone.now()
        self.policy = send_policy(organization)
        self.require_sms_consent = requires_sms_consent(organization)
        self.max_open_claims = max_open_claims(organization)
        self.classes: list[tuple[Outcome, ...]] = []
        self.class_sends: list[tuple[Outcome, ...]] = []
        self.class_held: list[bool] = []
        self.class_of: dict[Facts, int] = {}
        self.next_ages: dict[int, int | None] = {}
        self.templates: dict[tuple[str, str, int | None, str], Template] = {}
        self.states: dict[
            tuple[str, bool, tuple[str, ...], tuple[str, ...]], tuple[str, str, datetime, str]
        ] = {}
        self.result: list[tuple[str, int, int, int]] = []
        self.bills_read = 0
        self.queued: list[int] = []
        self.tables = False
        self.decision_count = 0

    # --- deciding ------------------------------------------------------------------------------------

    def take(self, batch: list[tuple[Any, ...]]) -> None:
        on = self.rules.on
        decided: dict[tuple[int, int], set[tuple[str, str]]] = {}
        for bill_pk, generation, key, channel in DunningDecision.objects.filter(
            bill_id__in=ids_in([row[0] for row in batch])
        ).values_list("bill_id", "generation", "step_key", "channel"):
            decided.setdefault((bill_pk, generation), set()).add((key, channel))

        plan: list[tuple[int, int, int, int | None, date | None, bool, bool]] = []
        sending: list[tuple[tuple[Any, ...], int, int]] = []
        for row in batch:
            pk, bill_id, source, generation, effective, amount = row[:6]
            age = (on - effective).days
            if age < 0:
                plan.append((pk, generation, age, None, effective, False, False))
                continue
            if row[25]:  # snoozed (D11): nothing now; the steps fall due again afterwards, with catch-up (D2)
                plan.append((pk, generation, age, None, on + timedelta(days=1), False, False))
                continue
            done = decided.get((pk, generation))
            facts = Facts(
                source == BillSource.REQUEST, age, row[12], amount > self.min_electronic, amount > self.min_print,
                bool(row[13]), bool(row[14]), row[15] or row[26], row[16] or row[27], row[17] == "invalid", row[6],
                frozenset(done) if done else NOTHING_DECIDED, SENT_BY_PMS_CHANNEL.get(row[33], ""),
                self.require_sms_consent and row[31] != SmsConsent.YES, claims_over(row[32], self.max_open_claims),
            )  # fmt: skip
            index = self.class_of.get(facts)
            if index is None:
                index = self._new_class(facts)
            if age not in self.next_ages:
                self.next_ages[age] = self.rules.next_age(age)
            next_age = self.next_ages[age]
            waiting = self.class_held[index]
            if next_age is not None:  # read again when its next step falls due, held or not
                next_date: date | None = effective + timedelta(days=next_age)
            elif waiting:  # K6: past its last step, steps held: back when the claims settle, not completed
                next_date = HELD_UNTIL_SETTLED
            else:  # past its last step: completed (D11)
                next_date = None
            plan.append((pk, generation, age, index, next_date, next_date is None, waiting))
            if self.classes[index]:
                self.result.append((bill_id, generation, age, index))
                self.decision_count += len(self.classes[index])
                if self.class_sends[index]:
                    sending.append((row, age, index))
        self.bills_read += len(plan)
        if self.write:
            self._write_batch(plan, sending)

    def _new_class(self, facts: Facts) -> int:
        outcomes = decide(facts, self.rules)
        index = len(self.classes)
        self.classes.append(outcomes)
        self.class_sends.append(tuple(o for o in outcomes if o.action == Action.SEND))
        self.class_held.append(held(facts, self.rules))
        self.class_of[facts] = index
        return index

    def decisions(self) -> RunDecisions:
        return RunDecisions(self.result, self.classes)

    # --- writing -------------------------------------------------------------------------------------

    def _write_batch(
        self, plan: list[tuple[int, int, int, int | None, date | None, bool, bool]],
        sending: list[tuple[tuple[Any, ...], int, int]],
    ) -> None:  # fmt: skip
        if not self.tables:
            _temp_tables()
            self.tables = True
        copy_rows(
            RUN_BILLS, ["bill_id", "generation", "age", "class_id", "next_date", "complete", "held"], plan
        )
        if not sending:
            return
        organization = self.organization
        refs = payment_links_create(
            organization_id=organization.pk, bill_ids=[row[0] for row, _, _ in sending], now=self.moment
        )
        ids = _message_ids(sum(len(self.class_sends[index]) for _, _, index in sending))
        # The messages are produced while COPY streams them: PostgreSQL writes each row (and its indexes) as
        # it arrives, on the other core, while the next ones are rendered. Their sending decisions are
        # collected on the way and written after. No other statement can run during the COPY, so the
        # templates are read first.
        for index, language in {(index, row[29]) for row, _, index in sending}:
            for outcome in self.class_sends[index]:
                self._template(outcome, language)
        decisions: list[tuple[Any, ...]] = []
        bulk_insert(Message, self._messages(sending, refs, ids, decisions), columns=MESSAGE_COLUMNS)
        bulk_insert(DunningDecision, decisions, columns=DECISION_COLUMNS)

    def _messages(
        self, sending: list[tuple[tuple[Any, ...], int, int]], refs: dict[int, str], ids: Iterator[int],
        decisions: list[tuple[Any, ...]],
    ) -> Iterator[tuple[Any, ...]]:  # fmt: skip
        """The message rows of ``sending`` in the order of ``MESSAGE_COLUMNS``; each one's sending decision is
        appended to ``decisions`` and each pending electronic message to the run's queue."""
        organization = self.organization
        org_id, on, created = organization.pk, self.rules.on, self.created
        for row, age, index in sending:
            pk, generation, amount, first, last = row[0], row[3], row[5], row[10], row[11]
            language = row[29]
            values = message_values(
                first_name=first, last_name=last, organization=organization, amount_due=amount, pay_ref=refs[pk],
                due_date=row[7], statement_date=row[8], preferred_name=row[28], language=language,
            )  # fmt: skip
            postal = NO_POSTAL
            if row[18]:
                postal = {"name": f"{first} {last}".strip(), "line1": row[18], "line2": row[19], "city": row[20],
                          "state": row[21], "zip": row[22], "care_of": row[30]}  # fmt: skip
            # Q3/K1: the guarantor's candidate zones and state rules from the row itself (no query); the same
            # functions the outbox applies again when the message is claimed.
            zones = candidate_zones(
                timezone=row[23], source=row[24], zip_code=row[22], phone=row[13],
                organization_timezone=organization.timezone,
            )  # fmt: skip
            states = recipient_states(
                address_state=row[21], zip_state=state_for_zip(row[22]) or "", phone=row[13],
                organization_state=organization.return_address_state,
            )  # fmt: skip
            for outcome in self.class_sends[index]:
                channel = outcome.channel
                template = self._template(outcome, language)
                subject, body = render_message(template=template, values=values)
                destination = (
                    row[13] if channel == Channel.SMS else row[14] if channel == Channel.EMAIL else ""
                )
                paper = channel == Channel.PAPER
                state, reason, scheduled, detail = self._state(
                    channel, bool(destination) or (paper and bool(postal)), zones, states
                )
                message_id = next(ids)
                decisions.append((
                    org_id, pk, generation, outcome.step_id, outcome.step_key, on, age, outcome.step_age_days,
                    outcome.kind, channel, Action.SEND, outcome.reason, message_id, created,
                ))  # fmt: skip
                if state == State.PENDING and not paper:
                    self.queued.append(message_id)
                yield (
                    message_id, org_id, row[9], pk, generation, outcome.step_key, outcome.kind, channel, template.pk,
                    subject, body, values, destination, postal if paper else NO_POSTAL, state, reason, detail,
                    scheduled, 0, "", "", "", created, created,
                )  # fmt: skip

    def _template(self, outcome: Outcome, language: str) -> Template:
        key = (outcome.kind, outcome.channel, outcome.template_id, language)
        template = self.templates.get(key)
        if template is None:
            template = self.templates[key] = template_for(
                organization=self.organization, kind=outcome.kind, channel=outcome.channel,
                template_id=outcome.template_id, language=language,
            )  # fmt: skip
        return template

    def _state(
        self, channel: str, has_destination: bool, zones: tuple[str, ...], states: tuple[str, ...]
    ) -> tuple[str, str, datetime, str]:
        key = (channel, has_destination, zones, states)
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = initial_state(
                channel=channel, has_destination=has_destination, now=self.moment, policy=self.policy, zones=zones,
                rules=rules_for(states, channel),
            )  # fmt: skip
        return state

    def finish(self) -> None:
        organization, on = self.organization, self.rules.on
        if self.tables:
            skips = [
                (index, o.step_id, o.step_key, o.kind, o.channel, o.step_age_days, o.reason)
                for index, outcomes in enumerate(self.classes)
                for o in outcomes
                if o.action == Action.SKIP
            ]
            copy_rows(
                RUN_SKIPS, ["class_id", "step_id", "step_key", "kind", "channel", "step_age", "reason"], skips
            )
            created = _db_datetime(self.created)
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute(f"ANALYZE {RUN_BILLS}")
                    cursor.execute(f"ANALYZE {RUN_SKIPS}")
                # The skip decisions of every bill, from its class: the bulk of a catch-up (D2).
                cursor.execute(
                    f"""INSERT INTO dunning_dunningdecision (organization_id, bill_id, generation, step_id, step_key,
                        run_date, bill_age_days, step_age_days, kind, channel, action, reason, created_at)
                    SELECT %s, b.bill_id, b.generation, s.step_id, s.step_key, %s, b.age, s.step_age, s.kind, s.channel,
                        %s, s.reason, %s
                    FROM {RUN_BILLS} b JOIN {RUN_SKIPS} s ON s.class_id = b.class_id""",  # noqa: S608
                    [organization.pk, on, Action.SKIP, created],
                )
                # D13: each bill read gets its next due date; one past its last step is completed (D11); the
                # bill-update flag is consumed (D10); K6's hold is marked or lifted.
                cursor.execute(
                    f"""UPDATE practices_bill SET next_dunning_date = b.next_date, amount_changed = %s,
                        claims_held = b.held,
                        state = CASE WHEN b.complete THEN %s ELSE practices_bill.state END,
                        ended_at = CASE WHEN b.complete THEN %s ELSE practices_bill.ended_at END
                    FROM {RUN_BILLS} b WHERE practices_bill.id = b.bill_id AND practices_bill.state = %s""",  # noqa: S608
                    [False, BillState.COMPLETED, _db_datetime(self.moment), BillState.ACTIVE],
                )
                cursor.execute(f"DROP TABLE {RUN_BILLS}")
                cursor.execute(f"DROP TABLE {RUN_SKIPS}")
        run, _ = DunningRun.objects.get_or_create(organization=organization, run_date=on)
        DunningRun.objects.filter(pk=run.pk).update(
            finished_at=self.moment, decisions=run.decisions + self.decision_count
        )
        messages_queue_on_commit(self.queued)


def _temp_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {RUN_BILLS} (bill_id bigint, generation integer, age integer, class_id integer, "
            "next_date date, complete boolean, held boolean)"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE {RUN_SKIPS} (class_id integer, step_id bigint, step_key varchar(64), "
            "kind varchar(12), channel varchar(5), step_age integer, reason varchar(24))"
        )


def _message_ids(count: int) -> Iterator[int]:
    """``count`` new message ids, taken before the rows are written so that each sending decision can name
    its message in the same COPY."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return iter([row[0] for row in cursor.fetchall()])
        # SQLite: the write transaction holds the database lock, so max + 1 stays ours.
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")  # noqa: S608
        start = cursor.fetchone()[0] + 1
        cursor.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = %s", [table])
        start = max(start, cursor.fetchone()[0] + 1)
        return iter(range(start, start + count))


def _db_datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)
