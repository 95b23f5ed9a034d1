"""The sandbox processor's hosted page (H1), under /sandbox/ while ``PAYMENT_PROCESSOR`` is ``sandbox``."""

from __future__ import annotations

from django.urls import path

from payments import sandbox_views

app_name = "sandbox"

urlpatterns = [
    path("checkout/<str:session_id>/", sandbox_views.checkout_page, name="checkout"),
]
