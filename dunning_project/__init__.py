from __future__ import annotations

import django_stubs_ext

from .celery import app as celery_app

# Lets classes be subscripted at runtime the way django-stubs types them (``ModelAdmin[Patient]``).
django_stubs_ext.monkeypatch()

__all__ = ("celery_app",)
