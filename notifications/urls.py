"""Provider webhooks under /webhooks/ (SPEC §10)."""

from __future__ import annotations

from django.urls import path

from notifications import webhooks

app_name = "webhooks"

urlpatterns = [
    path("twilio/status/<int:message_id>/", webhooks.twilio_status, name="twilio-status"),
    path("twilio/inbound/", webhooks.twilio_inbound, name="twilio-inbound"),
    path("anymail/<slug:esp>/tracking/", webhooks.email_tracking, name="email-tracking"),
]
