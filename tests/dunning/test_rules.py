"""The engine's pure rule function ``decide(Facts, Rules)``, table-driven, no database (D2-D6, D10, D11, B5).

One row per case: the facts that differ from a plain deliverable bill, the settings, and the decisions
expected, reason included. Each row names the rule it holds; removing a condition from ``decide`` (for
example ``and all_out`` in D5) fails a row. §13.2's ``sent_by_pms`` and ``require_sms_consent`` rows too, and
K6's claims-pending hold (SPEC §15)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from dunning.engine.rules import Facts, Rules, Step, decide, held, hold_key

ON = date(2026, 11, 24)
STEPS = (
    Step(1, 0, "statement", "email", None), Step(2, 0, "statement", "sms", None), Step(3, 0, "statement", "paper", None),
    Step(4, 10, "reminder", "sms", None), Step(5, 30, "due", "email", None), Step(6, 30, "due", "sms", None),
    Step(7, 60, "past_due", "email", None), Step(8, 60, "past_due", "sms", None), Step(9, 90, "final", "paper", None),
)  # fmt: skip
PLAIN = {
    "request": False, "age": 0, "do_not_contact": False, "above_electronic": True, "above_print": True, "sms": True,
    "email": True, "sms_opted_out": False, "email_opted_out": False, "address_invalid": False,
    "amount_changed": False, "decided": frozenset(),
}  # fmt: skip


def facts(**changes: Any) -> Facts:
    return Facts(**{**PLAIN, **changes})


def rules(**changes: Any) -> Rules:
    return Rules(steps=STEPS, on=ON, **changes)


def decided_through(age: int) -> frozenset[tuple[str, str]]:
    return frozenset((s.key, s.channel) for s in STEPS if s.age <= age)


def held_through(age: int, after: int = -1) -> frozenset[tuple[str, str]]:
    """K6: the claims_pending decisions of the steps older than ``after`` up to ``age``."""
    return frozenset((hold_key(s), s.channel) for s in STEPS if after < s.age <= age)


CASES = [
    ("D1 age 0: every age-0 step", facts(), rules(),
     [(0, "email", "statement", "send", ""), (0, "paper", "statement", "send", ""), (0, "sms", "statement", "send", "")]),
    ("D1 nothing new is due", facts(age=5, decided=decided_through(0)), rules(), []),
    ("D2 catch-up: the latest per channel goes", facts(age=35), rules(),
     [(0, "email", "statement", "skip", "superseded"), (0, "paper", "statement", "send", ""),
      (0, "sms", "statement", "skip", "superseded"), (10, "sms", "reminder", "skip", "superseded"),
      (30, "email", "due", "send", ""), (30, "sms", "due", "send", "")]),
    ("D3 below the electronic threshold", facts(above_electronic=False, decided=decided_through(0), age=10), rules(),
     [(10, "sms", "reminder", "skip", "below_threshold")]),
    ("D3 below the print threshold", facts(above_print=False), rules(),
     [(0, "email", "statement", "send", ""), (0, "paper", "statement", "skip", "below_threshold"),
      (0, "sms", "statement", "send", "")]),
    ("D4 an opted-out channel is skipped", facts(sms_opted_out=True, decided=decided_through(0), age=30), rules(),
     [(10, "sms", "reminder", "skip", "superseded"), (30, "email", "due", "send", ""),
      (30, "sms", "due", "skip", "opted_out")]),
    ("D4 a missing destination still sends (undeliverable, not silence)",
     facts(sms=False, decided=decided_through(0), age=10), rules(), [(10, "sms", "reminder", "send", "")]),
    ("D5 every electronic channel opted out: due drops to paper",
     facts(sms_opted_out=True, email_opted_out=True, decided=decided_through(10), age=30), rules(drop_to_paper=True),
     [(30, "email", "due", "skip", "opted_out"), (30, "paper", "due", "send", "drop_to_paper"),
      (30, "sms", "due", "skip", "opted_out")]),
    ("D5 one channel still open: no paper", facts(sms_opted_out=True, decided=decided_through(10), age=30),
     rules(drop_to_paper=True), [(30, "email", "due", "send", ""), (30, "sms", "due", "skip", "opted_out")]),
    ("D5 needs S11", facts(sms_opted_out=True, email_opted_out=True, decided=decided_through(10), age=30), rules(),
     [(30, "email", "due", "skip", "opted_out"), (30, "sms", "due", "skip", "opted_out")]),
    ("D5 not for a reminder", facts(sms_opted_out=True, email_opted_out=True, decided=decided_through(0), age=10),
     rules(drop_to_paper=True), [(10, "sms", "reminder", "skip", "opted_out")]),
    ("D6 S12: electronic available skips paper", facts(), rules(skip_paper=True),
     [(0, "email", "statement", "send", ""), (0, "paper", "statement", "skip", "electronic_available"),
      (0, "sms", "statement", "send", "")]),
    ("D6 S12: an invalid address skips paper", facts(sms=False, email=False, address_invalid=True), rules(skip_paper=True),
     [(0, "email", "statement", "send", ""), (0, "paper", "statement", "skip", "invalid_address"),
      (0, "sms", "statement", "send", "")]),
    ("D6 S12: opted-out electronic is not available", facts(sms_opted_out=True, email_opted_out=True),
     rules(skip_paper=True),
     [(0, "email", "statement", "skip", "opted_out"), (0, "paper", "statement", "send", ""),
      (0, "sms", "statement", "skip", "opted_out")]),
    ("D11 do not contact skips every step and the bill update",
     facts(do_not_contact=True, amount_changed=True, decided=decided_through(0), age=10), rules(communicate_on_update=True),
     [(10, "email", "bill_update", "skip", "do_not_contact"), (10, "sms", "reminder", "skip", "do_not_contact"),
      (10, "sms", "bill_update", "skip", "do_not_contact")]),
    ("B5 a request's age-0 steps were the request", facts(request=True), rules(),
     [(0, "email", "statement", "skip", "request"), (0, "paper", "statement", "skip", "request"),
      (0, "sms", "statement", "skip", "request")]),
    ("D10 an amount change: one update per electronic channel",
     facts(amount_changed=True, decided=decided_through(0), age=3), rules(communicate_on_update=True),
     [(3, "email", "bill_update", "send", ""), (3, "sms", "bill_update", "send", "")]),
    ("D10 needs S7", facts(amount_changed=True, decided=decided_through(0), age=3), rules(), []),
    ("D10 opted out and below threshold", facts(amount_changed=True, sms_opted_out=True, decided=decided_through(0), age=3),
     rules(communicate_on_update=True),
     [(3, "email", "bill_update", "send", ""), (3, "sms", "bill_update", "skip", "opted_out")]),
    ("D11 the last step", facts(age=95, decided=decided_through(60)), rules(), [(90, "paper", "final", "send", "")]),
    # §13.2 sent_by_pms: the PMS mailed (paper) or emailed the statement; that channel's age-0 step stands for it.
    ("sent_by_pms mail: the age-0 letter is not mailed again", facts(sent_by_pms="paper"), rules(),
     [(0, "email", "statement", "send", ""), (0, "paper", "statement", "skip", "sent_by_pms"),
      (0, "sms", "statement", "send", "")]),
    ("sent_by_pms email: the age-0 email is not sent again", facts(sent_by_pms="email"), rules(),
     [(0, "email", "statement", "skip", "sent_by_pms"), (0, "paper", "statement", "send", ""),
      (0, "sms", "statement", "send", "")]),
    ("sent_by_pms: a late import does not send the letter D2 would have kept", facts(sent_by_pms="paper", age=35),
     rules(),
     [(0, "email", "statement", "skip", "superseded"), (0, "paper", "statement", "skip", "sent_by_pms"),
      (0, "sms", "statement", "skip", "superseded"), (10, "sms", "reminder", "skip", "superseded"),
      (30, "email", "due", "send", ""), (30, "sms", "due", "send", "")]),
    ("sent_by_pms: later steps on that channel go", facts(sent_by_pms="paper", age=95, decided=decided_through(60)),
     rules(), [(90, "paper", "final", "send", "")]),
    ("sent_by_pms is said as such for a do-not-contact guarantor",
     facts(sent_by_pms="paper", do_not_contact=True), rules(),
     [(0, "email", "statement", "skip", "do_not_contact"), (0, "paper", "statement", "skip", "sent_by_pms"),
      (0, "sms", "statement", "skip", "do_not_contact")]),
    # §13.2 require_sms_consent: without a PMS "yes" no text goes, and the guarantor is not reachable by text (D6).
    ("no SMS consent: texts are skipped", facts(sms_consent_missing=True, decided=decided_through(0), age=30), rules(),
     [(10, "sms", "reminder", "skip", "superseded"), (30, "email", "due", "send", ""),
      (30, "sms", "due", "skip", "no_sms_consent")]),
    ("no SMS consent: an opt-out says opted out", facts(sms_consent_missing=True, sms_opted_out=True,
     decided=decided_through(0), age=10), rules(), [(10, "sms", "reminder", "skip", "opted_out")]),
    ("no SMS consent: the bill update by text is skipped",
     facts(sms_consent_missing=True, amount_changed=True, decided=decided_through(0), age=3),
     rules(communicate_on_update=True),
     [(3, "email", "bill_update", "send", ""), (3, "sms", "bill_update", "skip", "no_sms_consent")]),
    ("no SMS consent and no email: S12 mails the letter", facts(sms_consent_missing=True, email=False),
     rules(skip_paper=True),
     [(0, "email", "statement", "send", ""), (0, "paper", "statement", "send", ""),
      (0, "sms", "statement", "skip", "no_sms_consent")]),
    # K6: claims over max_open_claims hold every due step (not consumed) and come back with D2 once settled.
    ("K6 claims pending: the due step is held", facts(claims_pending=True, decided=decided_through(0), age=10),
     rules(), [(10, "sms", "reminder", "skip", "claims_pending")]),
    ("K6 a held step is decided once", facts(claims_pending=True, decided=decided_through(0) | held_through(10, 0),
     age=20), rules(), []),
    ("K6 the next steps fall due while held", facts(claims_pending=True,
     decided=decided_through(0) | held_through(10, 0), age=30), rules(),
     [(30, "email", "due", "skip", "claims_pending"), (30, "sms", "due", "skip", "claims_pending")]),
    ("K6 settled: D2 sends the latest held step per channel",
     facts(decided=decided_through(0) | held_through(30, 0), age=40), rules(),
     [(10, "sms", "reminder", "skip", "superseded"), (30, "email", "due", "send", ""), (30, "sms", "due", "send", "")]),
    ("K6 a new bill held from age 0", facts(claims_pending=True), rules(),
     [(0, "email", "statement", "skip", "claims_pending"), (0, "paper", "statement", "skip", "claims_pending"),
      (0, "sms", "statement", "skip", "claims_pending")]),
    ("K6 do not contact comes first", facts(claims_pending=True, do_not_contact=True, decided=decided_through(0),
     age=10), rules(), [(10, "sms", "reminder", "skip", "do_not_contact")]),
    ("K6 a request's age-0 steps are still the request", facts(claims_pending=True, request=True), rules(),
     [(0, "email", "statement", "skip", "request"), (0, "paper", "statement", "skip", "request"),
      (0, "sms", "statement", "skip", "request")]),
    ("K6 a bill update is skipped while held", facts(claims_pending=True, amount_changed=True,
     decided=decided_through(0), age=3), rules(communicate_on_update=True),
     [(3, "email", "bill_update", "skip", "claims_pending"), (3, "sms", "bill_update", "skip", "claims_pending")]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "given", "settings", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decide(case, given, settings, expected):
    outcomes = decide(given, settings)
    assert [(o.step_age_days, o.channel, o.kind, o.action, o.reason) for o in outcomes] == expected, case


def test_next_age_is_the_next_step_and_none_past_the_last():
    assert [rules().next_age(age) for age in (0, 9, 10, 89, 90)] == [10, 10, 30, 90, None]


def test_k6_a_held_step_keeps_its_own_key_free():
    """The claims_pending decision is recorded under the hold key, so the step itself stays due (D1)."""
    (outcome,) = decide(facts(claims_pending=True, decided=decided_through(0), age=10), rules())
    assert (outcome.step_key, outcome.step_id) == ("hold:4", 4)
    assert outcome.step_key != STEPS[3].key


HELD_CASES = [
    ("claims over, a step due", facts(claims_pending=True, decided=decided_through(0), age=10), True),
    ("claims over, the held step already recorded", facts(claims_pending=True,
     decided=decided_through(0) | held_through(10, 0), age=20), True),
    ("claims over, nothing due", facts(claims_pending=True, decided=decided_through(10), age=20), False),
    ("claims within the limit", facts(decided=decided_through(0), age=10), False),
    ("do not contact consumes the steps", facts(claims_pending=True, do_not_contact=True, age=10), False),
    ("a request's age-0 steps are not held", facts(claims_pending=True, request=True, age=5), False),
    ("the letter the PMS mailed is not held", facts(claims_pending=True, sent_by_pms="paper",
     decided=decided_through(0) - {(STEPS[2].key, "paper")}, age=5), False),
]  # fmt: skip


@pytest.mark.parametrize(("case", "given", "expected"), HELD_CASES, ids=[c[0] for c in HELD_CASES])
def test_held_says_whether_steps_wait_for_the_claims(case, given, expected):
    assert held(given, rules()) is expected, case
