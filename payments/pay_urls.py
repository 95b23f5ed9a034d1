"""What the payments app mounts at the site root: the patient payment page (``/p/<token>/``: short links, P1),
the processors' webhooks (``/webhooks/stripe/``, ``/webhooks/sandbox/``: H2) and the sandbox processor's hosted
page (``/sandbox/checkout/<id>/``: H1)."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("webhooks/", include("payments.webhook_urls")),
    path("sandbox/", include("payments.sandbox_urls")),
    path("", include("payments.patient_urls")),
]
