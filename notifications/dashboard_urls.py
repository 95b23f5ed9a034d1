"""The dashboard pages of notifications, mounted under ``dashboard/`` by the project's URLconf."""

from __future__ import annotations

from django.urls import path

from notifications import views

app_name = "notifications_dashboard"

urlpatterns = [
    path("undeliverable/", views.undeliverable_list, name="undeliverable"),
    path("undeliverable/<int:pk>/", views.undeliverable_detail, name="undeliverable-detail"),
    path("undeliverable/<int:pk>/resend/", views.undeliverable_resend, name="undeliverable-resend"),
]
