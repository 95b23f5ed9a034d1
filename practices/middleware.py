"""Admin pages show times in the practice's zone, as the dashboard does (issue 12)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from practices.models import Organization
from practices.tenancy import organization_ids_for


def admin_timezone(user: object) -> zoneinfo.ZoneInfo | None:
    """The zone the admin shows ``user`` times in: their organizations' zone when they all share one (a
    member of one practice), else None (ops and members of practices in several zones: the default, UTC)."""
    ids = organization_ids_for(user)
    if not ids:
        return None
    zones = set(Organization.objects.filter(pk__in=ids).values_list("timezone", flat=True))
    return zoneinfo.ZoneInfo(zones.pop()) if len(zones) == 1 else None


class AdminTimezoneMiddleware:
    """Activates ``admin_timezone`` for the admin's pages; the header names the zone in use
    (templates/admin/base_site.html). Other pages keep theirs: the dashboard converts times itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = reverse("admin:index")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = None
        if request.path.startswith(self.prefix) and request.user.is_authenticated:
            zone = admin_timezone(request.user)
        if zone is None:
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
