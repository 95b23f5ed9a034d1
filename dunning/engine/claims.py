"""K6 at send: a dunning message cancelled by the outbox because its guarantor's claims grew past the limit
after it was queued (``notifications.outbox``, reason ``claims_pending``) gives its step back to the engine.

The message's ``send`` decision becomes the step's ``claims_pending`` hold (``rules.hold_key``), so the step's
own key is free again: it stays due (D1), and once a feed shows the claims settled the run sends the latest due
step of each channel (D2 catch-up), exactly as if the engine had seen the claims on the day it decided.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from dunning.engine.rules import Step, hold_key
from dunning.models import Action, DunningDecision, SkipReason
from notifications.models import Message
from practices.models import Bill
from practices.timezones import organization_today


def decision_hold(message: Message, *, now: datetime) -> None:
    """Turn ``message``'s send decision into the step's claims hold, and mark its bill held for the claims
    (``claims_held``) and due today, so that the next run re-decides it: held again while the claims are over
    the limit, sent with catch-up once they settle. Four queries (five on a key clash), only for such a message. A message without a
    send decision (not the engine's) changes nothing."""
    decision = DunningDecision.objects.filter(message_id=message.pk, action=Action.SEND).first()
    if decision is None:
        return
    changed = False
    if decision.step_id is not None:
        key = hold_key(Step(decision.step_id, decision.step_age_days, decision.kind, decision.channel, None))
        try:
            with transaction.atomic():
                changed = (
                    DunningDecision.objects.filter(pk=decision.pk).update(
                        step_key=key, action=Action.SKIP, reason=SkipReason.CLAIMS_PENDING, message=None
                    )
                    == 1
                )
        except IntegrityError:
            changed = False  # the step was held before (a hold row exists): dropping the send frees it too
    if not changed:
        DunningDecision.objects.filter(pk=decision.pk).delete()
    # The cancelled message keeps its row (the outbox shows why it did not go) but frees the step's D1 key, so
    # that the caught-up step's own message can be written.
    Message.objects.filter(pk=message.pk).update(step_key=f"claims:{message.pk}")
    today = organization_today(message.organization, at=now)
    Bill.objects.filter(pk=decision.bill_id).update(claims_held=True, next_dunning_date=today)
