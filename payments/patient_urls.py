"""The patient payment page, mounted at the site root so that links stay short (``/p/<token>/``, P1), and the
pages the processor sends the patient back to (H2)."""

from __future__ import annotations

from django.urls import path

from payments import plan_views, views

app_name = "pay"

urlpatterns = [
    path("p/<str:token>/", views.pay_link, name="link"),
    path("p/<str:token>/checkout/<str:reference>/", views.checkout_done, name="done"),
    path("p/<str:token>/plan/", plan_views.plan_choose, name="plan"),
    path("p/<str:token>/plan/review/", plan_views.plan_review, name="plan-review"),
    path("p/<str:token>/plan/<str:reference>/", plan_views.plan_done, name="plan-done"),
    path("p/<str:token>/cancelled/", views.checkout_cancelled, name="cancelled"),
    path("p/<str:token>/receipt/<int:payment_id>/", views.receipt, name="receipt"),
    path("p/<str:token>/receipt/<int:payment_id>/pdf/", views.receipt_download, name="receipt-pdf"),
]
