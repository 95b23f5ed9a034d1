from __future__ import annotations

from django.apps import AppConfig


class PmsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pms"
    verbose_name = "PMS connectors"

    def ready(self) -> None:
        from pms import settings_keys  # noqa: F401  (registers the pms* org_settings keys)
