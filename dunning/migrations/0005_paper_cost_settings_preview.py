"""Settings impact preview (SPEC §17 W1) and the paper cost per letter (an organization setting, §16)."""

from decimal import Decimal

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0004_after_final_outcome"),
        ("practices", "0005_patient_phones_bill_closed_reason"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SettingsPreview",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("dunning", "Dunning settings"), ("payment", "Payment settings")],
                        max_length=8,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "start_date",
                    models.DateField(help_text="The first day of the forecast (the organization's today)."),
                ),
                ("days", models.PositiveSmallIntegerField(default=30)),
                (
                    "current",
                    models.JSONField(help_text="The settings in force when the preview was asked for."),
                ),
                ("proposed", models.JSONField(help_text="The unsaved settings of the form.")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Waiting for a worker"),
                            ("running", "Running"),
                            ("done", "Done"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=8,
                    ),
                ),
                ("progress", models.PositiveSmallIntegerField(default=0, help_text="Percent done.")),
                ("stage", models.CharField(blank=True, max_length=100)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("result", models.JSONField(blank=True, null=True)),
                ("error", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddField(
            model_name="dunningsettings",
            name="paper_cost",
            field=models.DecimalField(
                decimal_places=2,
                default=Decimal("0.75"),
                help_text="What one mailed letter costs the practice (print, envelope, postage); the impact preview and the results price paper letters with it.",
                max_digits=8,
            ),
        ),
        migrations.AddConstraint(
            model_name="dunningsettings",
            constraint=models.CheckConstraint(
                condition=models.Q(("paper_cost__gte", 0)), name="dunning_settings_paper_cost_not_negative"
            ),
        ),
        migrations.AddField(
            model_name="settingspreview",
            name="audit_event",
            field=models.OneToOneField(
                blank=True,
                help_text="The audit event of the save this preview was kept with.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="impact_preview",
                to="practices.auditevent",
            ),
        ),
        migrations.AddField(
            model_name="settingspreview",
            name="organization",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="practices.organization"
            ),
        ),
        migrations.AddField(
            model_name="settingspreview",
            name="requested_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="settingspreview",
            constraint=models.CheckConstraint(
                condition=models.Q(("progress__lte", 100)), name="settings_preview_progress_percent"
            ),
        ),
        migrations.AddConstraint(
            model_name="settingspreview",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["dunning", "payment"])), name="settings_preview_kind_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="settingspreview",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "running", "done", "failed"])),
                name="settings_preview_status_valid",
            ),
        ),
    ]
