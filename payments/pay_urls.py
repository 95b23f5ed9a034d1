"""The patient payment page, mounted at the site root so that links stay short (``/p/<token>/``, P1)."""

from __future__ import annotations

from django.urls import path

from payments import views

app_name = "pay"

urlpatterns = [
    path("p/<str:token>/", views.pay_link, name="link"),
    path("p/<str:token>/receipt/<int:payment_id>/", views.receipt, name="receipt"),
]
