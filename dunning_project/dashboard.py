"""The dashboard shell shared by the apps' front-desk pages: where a user lands after logging in, and the
practice a dashboard URL names (T1/T2). The payments dashboard and the after-final worklist both resolve their
organization and answer their index through these two helpers."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from payments.selectors import dashboard_organizations
from practices.models import Organization, Role
from practices.tenancy import user_has_role


def organization_from_url(request: HttpRequest, slug: str) -> tuple[Organization, list[Organization]]:
    """The organization named in the URL among the user's own (T1: any other answers 404), and all of them."""
    organizations = dashboard_organizations(user=request.user)
    for organization in organizations:
        if organization.slug == slug:
            return organization, organizations
    raise Http404


def organization_index(request: HttpRequest, *, url_name: str, title: str) -> HttpResponse:
    """A dashboard's index: straight to ``url_name`` of the user's one organization, or a choice among several;
    403 for a user with none."""
    organizations = dashboard_organizations(user=request.user)
    if not organizations:
        raise PermissionDenied
    if len(organizations) == 1:
        return redirect(url_name, organizations[0].slug)
    context = {"organizations": organizations, "url_name": url_name, "title": title}
    return render(request, "dashboard/choose_organization.html", context)


def uses_the_admin(user: Any) -> bool:
    """T2: billing managers, organization admins and ops work in the admin; the front desk on the dashboard."""
    return bool(user.is_superuser) or user_has_role(user, Role.BILLING_MANAGER)


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    """``/``, and where a login without ``next`` goes: the admin for admin users, the Payments home page for
    the front desk."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if uses_the_admin(request.user):
        return redirect("admin:index")
    return redirect("payments_dashboard:index")


def login(request: HttpRequest) -> HttpResponse:
    """The admin's login page, except that without ``next`` it goes to ``landing`` instead of always to the
    admin index (which has no way to the dashboard)."""
    explicit = REDIRECT_FIELD_NAME in request.GET or REDIRECT_FIELD_NAME in request.POST
    if explicit:
        return admin.site.login(request)
    if request.method == "GET" and request.user.is_authenticated and request.user.is_staff:
        return redirect("landing")  # the admin would send a logged-in user to its index
    return admin.site.login(request, extra_context={REDIRECT_FIELD_NAME: reverse("landing")})
