"""The D-rules as one pure function: what a bill with these facts gets on a date (D2-D6, D10, D11, B5,
§13.2's ``sent_by_pms`` and ``require_sms_consent``, and K6's claims-pending hold).

A bill's decisions depend only on a few facts (its age, its source, the thresholds it clears, how its
guarantor can be reached, what was already decided for its generation), so bills with the same facts get the
same decisions. The run decides once per distinct set of facts and applies the result to every bill that
has them: a million bills come down to a few hundred calls of ``decide``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from dunning.models import Action, SkipReason

ELECTRONIC = ("sms", "email")
DROP_KINDS = ("due", "past_due")


class Step(NamedTuple):
    pk: int
    age: int
    kind: str
    channel: str
    template_id: int | None

    @property
    def key(self) -> str:
        # The D1 uniqueness key of the messages and decisions this step produces (PresetStep.step_key).
        return f"step:{self.pk}"


class Facts(NamedTuple):
    """Everything the rules look at for one bill on one date."""

    request: bool  # a payment-request bill (B5)
    age: int  # days since effective_created_date (D1)
    do_not_contact: bool
    above_electronic: bool  # amount due > S4
    above_print: bool  # amount due > S5
    sms: bool  # a mobile number on file
    email: bool  # an email address on file
    sms_opted_out: bool  # the patient's opt-out at that number, or the PMS flag
    email_opted_out: bool
    address_invalid: bool
    amount_changed: bool  # D10
    decided: frozenset[tuple[str, str]]  # (step key, channel) already decided for this generation
    # §13.2: the channel by which the PMS itself already sent the statement ('paper', 'email' or '').
    sent_by_pms: str = ""
    # §13.2: ``require_sms_consent`` is on and the PMS does not say ``yes`` for this patient.
    sms_consent_missing: bool = False
    # K6: ``max_open_claims`` is set and the guarantor's open insurance claims exceed it.
    claims_pending: bool = False

    def opted_out(self, channel: str) -> bool:
        return self.sms_opted_out if channel == "sms" else self.email_opted_out

    def deliverable(self, channel: str) -> bool:
        if channel == "sms":
            return self.sms and not self.sms_opted_out and not self.sms_consent_missing
        return self.email and not self.email_opted_out


class Outcome(NamedTuple):
    """One decision, without the bill: the run adds bill, generation and age."""

    step_id: int | None
    template_id: int | None  # the step's own template, for a message on the step's channel
    step_key: str
    kind: str
    channel: str
    step_age_days: int
    action: str
    reason: str


@dataclass(frozen=True)
class Rules:
    """The organization's settings for one run."""

    steps: tuple[Step, ...]
    on: date
    drop_to_paper: bool = False  # S11
    skip_paper: bool = False  # S12
    communicate_on_update: bool = False  # S7

    def next_age(self, age: int) -> int | None:
        """The age of the next step after ``age`` (None: past the last step)."""
        later = [s.age for s in self.steps if s.age > age]
        return min(later) if later else None


def decide(facts: Facts, rules: Rules) -> tuple[Outcome, ...]:
    """The decisions for a bill with ``facts``, sorted by step age then channel (D1-D6, D10, D11, B5)."""
    age = facts.age
    due = [s for s in rules.steps if s.age <= age and (s.key, s.channel) not in facts.decided]
    out: list[Outcome] = []

    def put(
        step: Step | None, kind: str, channel: str, step_age: int, key: str, action: str, reason: str
    ) -> None:
        template_id = step.template_id if step is not None and channel == step.channel else None
        out.append(
            Outcome(step.pk if step else None, template_id, key, kind, channel, step_age, action, reason)
        )

    # B5: a payment request's age-0 messages were the request itself.
    if facts.request:
        for step in [s for s in due if s.age == 0]:
            put(step, step.kind, step.channel, 0, step.key, Action.SKIP, SkipReason.REQUEST)
        due = [s for s in due if s.age > 0]

    # §13.2: the PMS already mailed or emailed the statement; its age-0 step on that channel stands for it.
    if facts.sent_by_pms:
        by_pms = [s for s in due if s.age == 0 and s.channel == facts.sent_by_pms]
        for step in by_pms:
            put(step, step.kind, step.channel, 0, step.key, Action.SKIP, SkipReason.SENT_BY_PMS)
        due = [s for s in due if s not in by_pms]

    if facts.do_not_contact:  # D11; a bill update is skipped like every step (D12: no silent decisions)
        for step in due:
            put(step, step.kind, step.channel, step.age, step.key, Action.SKIP, SkipReason.DO_NOT_CONTACT)
        for channel in _bill_update_channels(facts, rules):
            put(None, "bill_update", channel, age, _update_key(rules), Action.SKIP, SkipReason.DO_NOT_CONTACT)
        return _sorted(out)

    if facts.claims_pending:  # K6: nothing goes and no step is consumed (see hold_key)
        for step in due:
            key = hold_key(step)
            if (key, step.channel) not in facts.decided:
                put(step, step.kind, step.channel, step.age, key, Action.SKIP, SkipReason.CLAIMS_PENDING)
        for channel in _bill_update_channels(facts, rules):
            put(None, "bill_update", channel, age, _update_key(rules), Action.SKIP, SkipReason.CLAIMS_PENDING)
        return _sorted(out)

    # D2: per channel only the latest due step goes; the earlier ones are superseded.
    latest: dict[str, Step] = {}
    for step in due:
        if step.channel not in latest or step.age > latest[step.channel].age:
            latest[step.channel] = step
    dropped: set[tuple[int, str]] = set()
    paper_due_ages = {s.age for s in latest.values() if s.channel == "paper"}
    for step in due:
        if latest[step.channel] is not step:
            put(step, step.kind, step.channel, step.age, step.key, Action.SKIP, SkipReason.SUPERSEDED)
            continue
        if step.channel == "paper":
            reason = _paper_reason(facts, rules)
            put(step, step.kind, "paper", step.age, step.key, Action.SKIP if reason else Action.SEND, reason)
            continue
        if not facts.above_electronic:  # D3
            put(step, step.kind, step.channel, step.age, step.key, Action.SKIP, SkipReason.BELOW_THRESHOLD)
            continue
        if facts.opted_out(step.channel):  # D4
            put(step, step.kind, step.channel, step.age, step.key, Action.SKIP, SkipReason.OPTED_OUT)
            all_out = all(facts.opted_out(c) for c in ELECTRONIC)
            drop_key = (step.age, step.kind)
            if (rules.drop_to_paper and step.kind in DROP_KINDS and all_out  # D5
                    and drop_key not in dropped and step.age not in paper_due_ages):  # fmt: skip
                dropped.add(drop_key)
                key = f"drop:{step.age}:{step.kind}"
                if (key, "paper") not in facts.decided and not _paper_reason(facts, rules):
                    put(step, step.kind, "paper", step.age, key, Action.SEND, SkipReason.DROP_TO_PAPER)
            continue
        if step.channel == "sms" and facts.sms_consent_missing:  # §13.2 require_sms_consent
            put(step, step.kind, "sms", step.age, step.key, Action.SKIP, SkipReason.NO_SMS_CONSENT)
            continue
        # A missing destination still sends: the outbox makes it undeliverable (U1), not silence (D4).
        put(step, step.kind, step.channel, step.age, step.key, Action.SEND, "")

    key = _update_key(rules)
    for channel in _bill_update_channels(facts, rules):  # D10
        if not facts.above_electronic:
            put(None, "bill_update", channel, age, key, Action.SKIP, SkipReason.BELOW_THRESHOLD)
        elif facts.opted_out(channel):
            put(None, "bill_update", channel, age, key, Action.SKIP, SkipReason.OPTED_OUT)
        elif channel == "sms" and facts.sms_consent_missing:
            put(None, "bill_update", channel, age, key, Action.SKIP, SkipReason.NO_SMS_CONSENT)
        else:
            put(None, "bill_update", channel, age, key, Action.SEND, "")
    return _sorted(out)


def hold_key(step: Step) -> str:
    """K6: the key of a step's ``claims_pending`` decision. Not the step's own key, so the step stays due (D1)
    and comes back, with catch-up (D2), once the claims settle; unique like any decision, so a held step is
    recorded once per generation however many runs see it held."""
    return f"hold:{step.pk}"


def held(facts: Facts, rules: Rules) -> bool:
    """K6: whether a bill with ``facts`` has steps waiting for its guarantor's claims to settle: claims over
    the limit and a step due that neither B5, the PMS (§13.2) nor do-not-contact (D11) has already decided."""
    if not facts.claims_pending or facts.do_not_contact:
        return False
    for step in rules.steps:
        if step.age > facts.age or (step.key, step.channel) in facts.decided:
            continue
        if step.age == 0 and (facts.request or step.channel == facts.sent_by_pms):
            continue
        return True
    return False


def _update_key(rules: Rules) -> str:
    return f"update:{rules.on.isoformat()}"


def _bill_update_channels(facts: Facts, rules: Rules) -> tuple[str, ...]:
    """D10: the electronic channels a bill update is still to be decided on (S7 on, the amount changed)."""
    if not (facts.amount_changed and rules.communicate_on_update):
        return ()
    key = _update_key(rules)
    return tuple(channel for channel in ELECTRONIC if (key, channel) not in facts.decided)


def _sorted(out: list[Outcome]) -> tuple[Outcome, ...]:
    # Stable: of two decisions at one age on one channel (a step and a bill update) the step comes first.
    return tuple(sorted(out, key=lambda o: (o.step_age_days, o.channel)))


def _paper_reason(facts: Facts, rules: Rules) -> str:
    """D6 and D3 for a letter: '' when it may go."""
    if rules.skip_paper:
        if any(facts.deliverable(c) for c in ELECTRONIC):
            return SkipReason.ELECTRONIC_AVAILABLE
        if facts.address_invalid:
            return SkipReason.INVALID_ADDRESS
    if not facts.above_print:
        return SkipReason.BELOW_THRESHOLD
    return ""
