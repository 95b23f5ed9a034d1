"""The request type of views behind django-htmx's middleware, which sets ``request.htmx`` (django-htmx's
documented way to type it)."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
