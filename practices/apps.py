from __future__ import annotations

from django.apps import AppConfig


class PracticesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "practices"
    verbose_name = "Practices and PMS mirror"

    def ready(self) -> None:
        from django.urls import register_converter

        from practices.converters import PmsIdConverter

        # ``<pmsid:guarantor_id>`` in any URLconf: PMS ids may hold "/" and "%" (issue 11).
        register_converter(PmsIdConverter, "pmsid")
