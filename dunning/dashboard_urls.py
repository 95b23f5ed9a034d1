"""The after-final worklist (SPEC §13.1), mounted under ``dashboard/after-final/`` by the project's URLconf.

Like the payments dashboard, the organization is a path segment (T1: another organization's slug or bill
answers 404)."""

from __future__ import annotations

from django.urls import path

from dunning import views

app_name = "dunning_dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:org>/", views.worklist, name="worklist"),
    path("<slug:org>/collections.csv", views.collections_export, name="collections-export"),
    path("<slug:org>/bills/<pmsid:bill_id>/outcome/", views.record_outcome, name="outcome"),
]
