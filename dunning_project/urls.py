from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from practices.api import api

admin.site.site_header = "Patient payments back office"
admin.site.site_title = "Patient payments"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("webhooks/", include("notifications.urls")),
    path("dashboard/payments/", include("payments.dashboard_urls")),
    path("dashboard/after-final/", include("dunning.dashboard_urls")),
    path("dashboard/", include("notifications.dashboard_urls")),
    path("", include("payments.pay_urls")),
]
