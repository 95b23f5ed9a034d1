from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from dunning_project import dashboard
from practices.api import api

admin.site.site_header = "Patient payments back office"
admin.site.site_title = "Patient payments"
# The admin's "View site": the front desk's Payments home page, mounted below (the root sends admin users back
# to the admin, so it would loop).
admin.site.site_url = "/dashboard/payments/"

urlpatterns = [
    path("", dashboard.landing, name="landing"),
    # Before the admin's own URLs: without ?next= a login lands by role, not always on the admin index.
    path("admin/login/", dashboard.login, name="login"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("webhooks/", include("notifications.urls")),
    path("dashboard/payments/", include("payments.dashboard_urls")),
    path("dashboard/after-final/", include("dunning.dashboard_urls")),
    path("dashboard/results/", include("payments.results.urls")),
    path("dashboard/", include("notifications.dashboard_urls")),
    path("", include("payments.pay_urls")),
]
