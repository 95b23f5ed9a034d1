"""Processor webhooks (H2, T3): ``/webhooks/stripe/`` and the sandbox's own ``/webhooks/sandbox/``.

One code path for both: the raw body and its ``Stripe-Signature`` header go to the processor's ``event_verify``
(the SDK's ``stripe.WebhookSignature.verify_header``, with the processor's signing secret), then to
``payments.confirmations.processor_event_apply``. An unsigned, wrongly signed, tampered or stale call answers 400
and changes nothing (https://docs.stripe.com/webhooks#verify-events: reply 400 to what fails verification); a
verified event answers 200 once applied, a duplicate too; an error answers 500, and the processor retries.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.confirmations import processor_event_apply
from payments.processors import configured, get_processor
from payments.processors.base import SignatureInvalid

logger = logging.getLogger(__name__)


def webhook_receive(*, processor: str, payload: bytes, signature: str) -> HttpResponse:
    """Verify and apply one delivery of ``processor``; the HTTP answer the processor gets."""
    try:
        event = get_processor(processor).event_verify(payload=payload, signature=signature)
    except SignatureInvalid as exc:
        logger.warning("%s webhook refused: %s", processor, exc)
        return HttpResponse("invalid signature", status=400, content_type="text/plain")
    applied = processor_event_apply(processor=processor, event=event)
    return JsonResponse({"received": True, "duplicate": applied.duplicate, "outcome": applied.outcome})


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    return webhook_receive(
        processor="stripe", payload=request.body, signature=request.headers.get("Stripe-Signature", "")
    )


@csrf_exempt
@require_POST
def sandbox_webhook(request: HttpRequest) -> HttpResponse:
    """Only while the sandbox is the processor: a deployment on Stripe has no second way in."""
    if configured().processor != "sandbox":
        raise Http404
    return webhook_receive(
        processor="sandbox", payload=request.body, signature=request.headers.get("Stripe-Signature", "")
    )
