"""Every organization gets its sending settings row: until now the row was made by the first org_settings
write or by pressing Add in the admin, so the admin listed none for a practice on the defaults (the trap issue 12
fixed for the dunning and payment settings). New organizations get theirs when they are created
(``organization_settings_create``).

The row holds the model defaults, which every reader used for an organization without one (21:00-08:00, no cap,
every day, no hourly limit), so nothing any organization sends changes."""

from django.db import migrations


def create_missing_rows(apps, schema_editor):
    Organization = apps.get_model("practices", "Organization")
    NotificationSettings = apps.get_model("notifications", "NotificationSettings")
    missing = Organization.objects.filter(notification_settings__isnull=True)
    NotificationSettings.objects.bulk_create(NotificationSettings(organization=org) for org in missing)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0010_inbound_review"),
    ]

    operations = [migrations.RunPython(create_missing_rows, migrations.RunPython.noop)]
