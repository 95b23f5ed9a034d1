"""The dashboard pages of notifications, mounted under ``dashboard/`` by the project's URLconf."""

from __future__ import annotations

from django.urls import path

from notifications import views

app_name = "notifications_dashboard"

urlpatterns = [
    path("undeliverable/", views.undeliverable_list, name="undeliverable"),
    path("undeliverable/<int:pk>/", views.undeliverable_detail, name="undeliverable-detail"),
    path("undeliverable/<int:pk>/resend/", views.undeliverable_resend, name="undeliverable-resend"),
    path("replies/", views.replies_index, name="replies-index"),
    path("replies/<slug:org>/", views.replies, name="replies"),
    path("replies/<slug:org>/<int:pk>/decide/", views.reply_decide, name="reply-decide"),
]
