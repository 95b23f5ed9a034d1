"""The sandbox processor's hosted page: a stand-in for Stripe's, plainly marked as a test, with no card field.

The patient picks an outcome (pay, or a declined card; for a card-save session: a card, or one that declines
later); ``payments.processors.sandbox.hosted_outcome`` records it on the sandbox's side and queues the signed
events, which reach ``/webhooks/sandbox/`` a moment after the patient is sent back, as Stripe's would.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from payments.models import SandboxSession
from payments.processors import configured
from payments.processors.base import ProcessorError
from payments.processors.sandbox import hosted_outcome


@never_cache
@csrf_protect
def checkout_page(request: HttpRequest, session_id: str) -> HttpResponse:
    if configured().processor != "sandbox":
        raise Http404
    session = SandboxSession.objects.filter(pk=session_id, mode__in=["payment", "setup"]).first()
    if session is None:
        raise Http404
    message = ""
    if request.method == "POST":
        try:
            session, message = hosted_outcome(
                session_id=session.pk, outcome=str(request.POST.get("outcome", "")),
                webhook_url=request.build_absolute_uri(reverse("payments_webhooks:sandbox")),
            )  # fmt: skip
        except ProcessorError as exc:
            message = str(exc)
        else:
            if session.status == "complete":
                return redirect(session.success_url)
    context = {
        "session": session,
        "amount": f"${(session.amount_cents or 0) / 100:,.2f}",
        "message": message,
        "open": session.status == "open",
    }
    response = render(request, "payments/sandbox_checkout.html", context)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
