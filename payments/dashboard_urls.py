"""The payments dashboard (B1-B4, R12), mounted under ``dashboard/payments/`` by the project's URLconf.

The organization is a path segment, so every URL names the practice it acts on (T1: another organization's
slug or guarantor answers 404) and a user with several organizations picks one on the index page. An
organization's own URL is its Payments home page; the bulk payment request list hangs below it.
"""

from __future__ import annotations

from django.urls import path

from payments import dashboard_views as views

app_name = "payments_dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:org>/", views.home, name="home"),
    path("<slug:org>/bulk/", views.bulk, name="bulk"),
    path("<slug:org>/bulk/settings/", views.bulk_settings, name="bulk-settings"),
    path("<slug:org>/send/", views.send, name="send"),
    path("<slug:org>/snooze/", views.snooze, name="snooze"),
    path("<slug:org>/snooze/undo/", views.undo_snooze, name="snooze-undo"),
    path("<slug:org>/lift/", views.lift, name="lift"),
    path("<slug:org>/guarantors/<pmsid:guarantor_id>/", views.guarantor, name="guarantor"),
    path(
        "<slug:org>/guarantors/<pmsid:guarantor_id>/consent.csv",
        views.guarantor_consent_csv,
        name="guarantor-consent-csv",
    ),
    path(
        "<slug:org>/guarantors/<pmsid:guarantor_id>/request/",
        views.guarantor_request,
        name="guarantor-request",
    ),
    path(
        "<slug:org>/guarantors/<pmsid:guarantor_id>/links/<int:link_id>/reissue/",
        views.link_reissue,
        name="link-reissue",
    ),
]
