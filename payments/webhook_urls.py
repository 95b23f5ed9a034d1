"""The processors' webhooks under /webhooks/ (SPEC §10, H2)."""

from __future__ import annotations

from django.urls import path

from payments import webhooks

app_name = "payments_webhooks"

urlpatterns = [
    path("stripe/", webhooks.stripe_webhook, name="stripe"),
    path("sandbox/", webhooks.sandbox_webhook, name="sandbox"),
]
