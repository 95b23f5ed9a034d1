"""Messages that answer something the patient just did, not messages that ask for money (H4, K1, K2).

A payment's receipt is such a message: it confirms a transaction the patient completed a moment ago, so it goes
at once, whatever the hour (quiet hours Q1, a state's window K1, Sundays and holidays) and whatever the contact
count (the frequency cap K2, a state's limit per 24 h), and it is not counted as a contact either: the cap
measures collection contacts, and counting a receipt would push back the next reminder of a partial payment.
The pre-send re-check (N1) still applies: an email opt-out, do-not-contact or a deceased patient cancels it
(docs/decisions.md, "Receipts are transactional").
"""

from __future__ import annotations

from notifications.models import Kind

TRANSACTIONAL_KINDS: frozenset[str] = frozenset({Kind.RECEIPT})


def is_transactional(kind: str) -> bool:
    return kind in TRANSACTIONAL_KINDS
