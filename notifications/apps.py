from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from notifications import settings_keys  # noqa: F401  (registers org_settings keys)
        from notifications.consent import consent_from_pms
        from practices.importer.consent import register_consent_hook

        # K3: the PMS consent flags an import changes become consent ledger rows.
        register_consent_hook(consent_from_pms)
