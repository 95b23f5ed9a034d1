"""The built-in dunning presets (SPEC §6).

Frozen here rather than imported, so that later changes to the shipped schedules are new migrations.
Each step is (bill_age_days, kind, channels); paper steps sit at multiples of paper_cycle_days. A step's
template is NULL (the system default for its kind and channel) except where TEMPLATE_STEPS points it at a
system default explicitly, which shows the template link in the admin.

``create_presets`` is idempotent (presets by slug, steps by (age, channel)) so that tests/conftest.py can
put the rows back after a transactional test's flush.
"""

from django.db import migrations

PRESETS = {
    "standard-30": {
        "name": "Standard 30-day",
        "description": "A statement, then reminders; letters at the statement, due date, 60 and 90 days.",
        "cycle_days": 30,
        "paper_cycle_days": 30,
        "steps": [
            (0, "statement", ("email", "sms", "paper")),
            (10, "reminder", ("sms",)),
            (20, "reminder", ("email",)),
            (30, "due", ("email", "sms", "paper")),
            (45, "past_due", ("sms",)),
            (60, "past_due", ("email", "paper")),
            (75, "reminder", ("sms",)),
            (90, "final", ("email", "sms", "paper")),
        ],
    },
    "accelerated-14": {
        "name": "Accelerated 14-day",
        "description": "Two-week cycles with letters every four weeks; the final notice at eight weeks.",
        "cycle_days": 14,
        "paper_cycle_days": 28,
        "steps": [
            (0, "statement", ("email", "sms", "paper")),
            (5, "reminder", ("sms",)),
            (10, "reminder", ("email",)),
            (14, "due", ("email", "sms")),
            (21, "past_due", ("sms",)),
            (28, "past_due", ("email", "paper")),
            (35, "reminder", ("sms",)),
            (42, "reminder", ("email",)),
            (56, "final", ("email", "sms", "paper")),
        ],
    },
    "electronic-only": {
        "name": "Electronic only",
        "description": "The standard 30-day schedule by email and text only; no letters.",
        "cycle_days": 30,
        "paper_cycle_days": 30,
        "steps": [
            (0, "statement", ("email", "sms")),
            (10, "reminder", ("sms",)),
            (20, "reminder", ("email",)),
            (30, "due", ("email", "sms")),
            (45, "past_due", ("sms",)),
            (60, "past_due", ("email",)),
            (75, "reminder", ("sms",)),
            (90, "final", ("email", "sms")),
        ],
    },
}

# (preset slug, bill_age_days, channel): steps pointed explicitly at the system default of their kind.
TEMPLATE_STEPS = {("standard-30", 90, "paper")}


def create_presets(apps, schema_editor):
    Preset = apps.get_model("dunning", "Preset")
    PresetStep = apps.get_model("dunning", "PresetStep")
    Template = apps.get_model("notifications", "Template")
    for slug, spec in PRESETS.items():
        preset, _ = Preset.objects.update_or_create(
            slug=slug,
            defaults={
                "name": spec["name"],
                "description": spec["description"],
                "cycle_days": spec["cycle_days"],
                "paper_cycle_days": spec["paper_cycle_days"],
                "built_in": True,
            },
        )
        for age, kind, channels in spec["steps"]:
            for channel in channels:
                template = None
                if (slug, age, channel) in TEMPLATE_STEPS:
                    template = Template.objects.filter(
                        organization__isnull=True, kind=kind, channel=channel
                    ).first()
                PresetStep.objects.get_or_create(
                    preset=preset,
                    bill_age_days=age,
                    channel=channel,
                    defaults={"kind": kind, "template": template},
                )


def delete_presets(apps, schema_editor):
    # Presets an organization still uses are kept (DunningSettings.preset is PROTECT).
    Preset = apps.get_model("dunning", "Preset")
    DunningSettings = apps.get_model("dunning", "DunningSettings")
    in_use = DunningSettings.objects.filter(preset__isnull=False).values_list("preset_id", flat=True)
    Preset.objects.filter(slug__in=list(PRESETS), built_in=True).exclude(pk__in=in_use).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0001_initial"),
        ("notifications", "0002_system_templates"),
    ]

    operations = [migrations.RunPython(create_presets, delete_presets)]
