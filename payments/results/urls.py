"""The Results dashboard (SPEC §16), mounted under ``dashboard/results/``: one page per organization (T1: its
slug is in the URL) and a CSV per table."""

from __future__ import annotations

from django.urls import path

from payments.results import views

app_name = "results_dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:org>/", views.results, name="results"),
    path("<slug:org>/csv/<slug:table>/", views.results_csv, name="csv"),
]
