"""Every organization gets its payment settings row (issue 12): until now the row was made by the first
org_settings write or by pressing Add in the admin, so the admin listed none for a practice whose settings
were the defaults. New organizations get theirs when they are created (``organization_settings_create``).

The row holds the model defaults, which ``payment_settings_get`` returned for an organization without one,
so no organization's list changes."""

from django.db import migrations


def create_missing_rows(apps, schema_editor):
    Organization = apps.get_model("practices", "Organization")
    PaymentSettings = apps.get_model("payments", "PaymentSettings")
    missing = Organization.objects.filter(payment_settings__isnull=True)
    PaymentSettings.objects.bulk_create(PaymentSettings(organization=org) for org in missing)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_link_lockout_escalation"),
        ("practices", "0005_patient_phones_bill_closed_reason"),
    ]

    operations = [migrations.RunPython(create_missing_rows, migrations.RunPython.noop)]
