"""The project's URLconf plus the payments dashboard under ``dashboard/payments/`` when the project does not
mount it yet (the dashboard workload reverses ``payments_dashboard:bulk``)."""

from __future__ import annotations

from django.urls import include, path

from dunning_project.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns]
if not any(getattr(p, "namespace", None) == "payments_dashboard" for p in project_urlpatterns):
    try:
        import payments.dashboard_urls  # noqa: F401
    except ImportError:  # the dashboard is not there yet: the workload says so and skips
        pass
    else:
        urlpatterns.insert(0, path("dashboard/payments/", include("payments.dashboard_urls")))
