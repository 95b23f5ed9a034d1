"""Thin, named Celery tasks over the outbox services; each takes primary keys and is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from notifications.letters.batch import letter_batches_render_all
from notifications.outbox import message_send, messages_release_due, messages_send, messages_sweep_stale
from notifications.replies import opt_out_confirmation_send


@shared_task(name="notifications.send_message", acks_late=True, ignore_result=True)
def send_message(message_id: int) -> str:
    return message_send(message_id=message_id)


@shared_task(name="notifications.send_messages", acks_late=True, ignore_result=True)
def send_messages(message_ids: list[int]) -> int:
    """A chunk queued at once (a bulk send, a dunning run): each message is claimed and sent on its own, so
    a redelivered chunk sends nothing twice."""
    messages_send(message_ids)
    return len(message_ids)


@shared_task(name="notifications.release_due", ignore_result=True)
def release_due() -> int:
    return messages_release_due()


@shared_task(name="notifications.sweep_stale", ignore_result=True)
def sweep_stale() -> int:
    return messages_sweep_stale()


@shared_task(name="notifications.render_letter_batches", ignore_result=True)
def render_letter_batches() -> list[int]:
    return letter_batches_render_all()


@shared_task(name="notifications.send_opt_out_confirmation", acks_late=True, ignore_result=True)
def send_opt_out_confirmation(review_id: int) -> str:
    """K4: the one confirmation text after staff opted a number out from the replies review queue."""
    return opt_out_confirmation_send(review_id=review_id)
