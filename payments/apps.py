from __future__ import annotations

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from payments import settings_keys  # noqa: F401  (registers org_settings keys)
        from payments.checkout import payments_reapply_after_import
        from payments.services import payment_settings_create
        from practices.importer.policy import register_post_import_hook
        from practices.services import register_organization_settings

        # I6 vs P3: an import must not undo payments the PMS has not posted yet.
        register_post_import_hook(payments_reapply_after_import)
        # H5: an import must not take a guarantor off the plan they took here (R2), nor reopen its campaign.
        from payments.plans import plans_reassert_after_import

        register_post_import_hook(plans_reassert_after_import)
        # A new organization gets its settings row (§4) at once.
        register_organization_settings(payment_settings_create)
        # Messages keep a link's reference, never its token; the outbox and the letters ask us for the URL.
        from notifications.paylinks import register_pay_url
        from payments.links import payment_url_for_ref

        register_pay_url(payment_url_for_ref)
        # Results (SPEC §16): the AR snapshot of each import and the daily figures of the days kept since; and a
        # few months of history for seed_demo's practice.
        from payments.results.demo import demo_history
        from payments.results.services import results_after_import
        from practices.demo import register_demo_extension

        register_post_import_hook(results_after_import)
        register_demo_extension(demo_history)
