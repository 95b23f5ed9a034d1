from __future__ import annotations

from django.apps import AppConfig


class DunningConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "dunning"

    def ready(self) -> None:
        from dunning import settings_keys  # noqa: F401  (registers org_settings keys)
        from dunning.policy import bill_policy
        from dunning.services import dunning_settings_create
        from practices.importer.policy import register_policy_provider
        from practices.services import register_organization_settings

        # The importer moves bills' dunning clocks by these settings (D7-D10) without importing dunning.
        register_policy_provider(bill_policy)
        # A new organization gets its settings row (S1-S12) at once.
        register_organization_settings(dunning_settings_create)
