"""H5: the notice kinds of payment plans (``plan_retry``: an installment was declined and will be tried again on
a date; ``plan_failed``: declined for the last time, the plan ended) and their system default templates, by text
and email (the plan's notices are electronic: a declined card is news of the day), English with their Spanish
translations, frozen here like 0002's and 0006's. The Spanish texts avoid á, í, ó and ú to stay GSM-7 (0006)."""

from django.db import migrations, models

_KINDS = [
    ("request", "Payment request"), ("statement", "Statement"), ("reminder", "Reminder"), ("due", "Due"),
    ("past_due", "Past due"), ("final", "Final notice"), ("bill_update", "Bill update"), ("resend", "Resend"),
    ("receipt", "Payment receipt"), ("plan_retry", "Payment plan: payment declined, will retry"),
    ("plan_failed", "Payment plan: ended after declines"),
]  # fmt: skip

# kind -> channel -> (name, subject, body)
DEFAULTS = {
    "plan_retry": {
        "sms": (
            "Plan payment declined",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, your payment plan payment of {{ amount_due }} was "
            "declined. We will try again on {{ due_date }}. Questions? Call {{ practice.phone }}. "
            "Reply STOP to opt out",
        ),
        "email": (
            "Plan payment declined",
            "Your payment plan payment to {{ practice.name }} was declined",
            "Hello {{ patient.first_name }},\n\n"
            "The payment of {{ amount_due }} of your payment plan with {{ practice.name }} was declined by your "
            "card's bank, so nothing was charged. We will try the same card again on {{ due_date }}.\n\n"
            "If your card has changed, or you would like to talk about your plan, please call us at "
            "{{ practice.phone }}.\n\nThank you,\n{{ practice.name }}",
        ),
    },
    "plan_failed": {
        "sms": (
            "Plan ended",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, your payment plan payment of {{ amount_due }} was "
            "declined again, so the plan has ended. Please call {{ practice.phone }}. Reply STOP to opt out",
        ),
        "email": (
            "Plan ended",
            "Your payment plan with {{ practice.name }} has ended",
            "Hello {{ patient.first_name }},\n\n"
            "The payment of {{ amount_due }} of your payment plan with {{ practice.name }} was declined again "
            "after several tries, so the plan has ended and the rest of your balance is due. You will receive "
            "the practice's usual reminders, with a link to pay online.\n\n"
            "To set up a new plan or talk about payment options, please call us at {{ practice.phone }}.\n\n"
            "Thank you,\n{{ practice.name }}",
        ),
    },
}

DEFAULTS_ES = {
    "plan_retry": {
        "sms": (
            "{{ practice.name }}: Hola {{ patient.first_name }}, su pago del plan de {{ amount_due }} fue "
            "rechazado. Lo intentaremos de nuevo {{ due_date }}. Preguntas: {{ practice.phone }}. "
            "Responda STOP para cancelar",
        ),
        "email": (
            "Su pago del plan con {{ practice.name }} fue rechazado",
            "Hola {{ patient.first_name }}:\n\n"
            "El banco de su tarjeta rechazó el pago de {{ amount_due }} de su plan de pagos con "
            "{{ practice.name }}, así que no se cobró nada. Volveremos a intentarlo con la misma tarjeta "
            "{{ due_date }}.\n\n"
            "Si su tarjeta cambió, o si desea hablar de su plan, llámenos a {{ practice.phone }}.\n\n"
            "Gracias,\n{{ practice.name }}",
        ),
    },
    "plan_failed": {
        "sms": (
            "{{ practice.name }}: Hola {{ patient.first_name }}, su pago del plan de {{ amount_due }} fue "
            "rechazado otra vez y el plan de pagos ha terminado. Por favor llame a {{ practice.phone }}. "
            "Responda STOP para cancelar",
        ),
        "email": (
            "Su plan de pagos con {{ practice.name }} ha terminado",
            "Hola {{ patient.first_name }}:\n\n"
            "El pago de {{ amount_due }} de su plan de pagos con {{ practice.name }} fue rechazado otra vez "
            "después de varios intentos, así que el plan ha terminado y el resto de su saldo está pendiente. "
            "Recibirá los recordatorios habituales de la práctica, con un enlace para pagar en línea.\n\n"
            "Para acordar un nuevo plan o hablar de opciones de pago, llámenos a {{ practice.phone }}.\n\n"
            "Gracias,\n{{ practice.name }}",
        ),
    },
}

_CHANNEL_LABELS = {"sms": "SMS", "email": "email"}


def create_defaults(apps, schema_editor):
    Template = apps.get_model("notifications", "Template")
    TemplateTranslation = apps.get_model("notifications", "TemplateTranslation")
    for kind, channels in DEFAULTS.items():
        for channel, (name, subject, body) in channels.items():
            template, _ = Template.objects.update_or_create(
                organization=None, kind=kind, channel=channel,
                defaults={"name": f"{name} — {_CHANNEL_LABELS[channel]}", "subject": subject, "body": body},
            )  # fmt: skip
            translated = DEFAULTS_ES[kind][channel]
            subject_es, body_es = ("", translated[0]) if channel == "sms" else translated
            TemplateTranslation.objects.update_or_create(
                template=template, organization=None, language="es",
                defaults={"subject": subject_es, "body": body_es},
            )  # fmt: skip


def delete_defaults(apps, schema_editor):
    apps.get_model("notifications", "Template").objects.filter(
        organization__isnull=True, kind__in=list(DEFAULTS)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0012_number_lookup")]

    operations = [
        migrations.AlterField(
            model_name="message", name="kind", field=models.CharField(choices=_KINDS, max_length=12)
        ),
        migrations.AlterField(
            model_name="template", name="kind", field=models.CharField(choices=_KINDS, max_length=12)
        ),
        migrations.RunPython(create_defaults, delete_defaults),
    ]
