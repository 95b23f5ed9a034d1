from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        from notifications import settings_keys  # noqa: F401  (registers org_settings keys)
        from notifications.consent import consent_from_pms
        from notifications.settings_keys import notification_settings_create
        from practices.importer.consent import register_consent_hook
        from practices.services import register_organization_settings

        # K3: the PMS consent flags an import changes become consent ledger rows.
        register_consent_hook(consent_from_pms)
        # A new organization gets its sending settings row (quiet hours, K1, K2, K5) at once.
        register_organization_settings(notification_settings_create)
