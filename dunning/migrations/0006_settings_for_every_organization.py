"""Every organization gets its dunning settings row (issue 12): until now the row was made by the first
org_settings write or by pressing Add in the admin, so the admin listed none for a practice whose settings
were the defaults. New organizations get theirs when they are created (``organization_settings_create``).

The row holds what ``dunning_settings_get`` returned for an organization without one: the built-in
``standard-30`` preset when it exists, and the model defaults, so no organization's dunning changes."""

from django.db import migrations

DEFAULT_PRESET_SLUG = "standard-30"


def create_missing_rows(apps, schema_editor):
    Organization = apps.get_model("practices", "Organization")
    DunningSettings = apps.get_model("dunning", "DunningSettings")
    Preset = apps.get_model("dunning", "Preset")
    preset = Preset.objects.filter(slug=DEFAULT_PRESET_SLUG).first()
    missing = Organization.objects.filter(dunning_settings__isnull=True)
    DunningSettings.objects.bulk_create(DunningSettings(organization=org, preset=preset) for org in missing)


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0005_paper_cost_settings_preview"),
        ("practices", "0005_patient_phones_bill_closed_reason"),
    ]

    operations = [migrations.RunPython(create_missing_rows, migrations.RunPython.noop)]
