"""System default templates (N4): one per (kind, channel), organization NULL.

The copy is frozen here rather than imported, so that later edits of the defaults are new migrations.
SMS: the practice first (the sender), first name only, no clinical information, the opt-out hint, within
one 160-character GSM-7 segment with typical values. Paper: the letter renderer prints the greeting,
letterhead, addresses, amounts and payment stub; the body is the text between them.
"""

from django.db import migrations

_HELP = (
    "If you have questions about your bill or would like to talk about payment options, please call us "
    "at {{ practice.phone }}."
)
_PAID = "If you have already paid, thank you, and please disregard this message."
_PAID_LETTER = "If you have already sent your payment, thank you, and please disregard this letter."
_LINK = (
    "You can review your balance and pay securely online. For your privacy, the page first asks you to "
    "confirm your month and year of birth:\n{{ pay_url }}"
)
_LETTER_PAY = (
    "You can pay online at the address below or by scanning the QR code, or mail a check payable to "
    "{{ practice.name }} with the stub at the bottom of this page."
)
_SIGN_EMAIL = "Thank you,\n{{ practice.name }}"
_SIGN_LETTER = "Sincerely,\n{{ practice.name }}"


def _email(greeting: str, *paragraphs: str) -> str:
    return "\n\n".join(["Hello {{ patient.first_name }},", greeting, _LINK, *paragraphs, _SIGN_EMAIL])


def _letter(*paragraphs: str) -> str:
    return "\n\n".join([*paragraphs, _SIGN_LETTER])


# kind -> channel -> (name, subject, body)
DEFAULTS = {
    "request": {
        "sms": (
            "Payment request",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, you have a balance of {{ amount_due }}. "
            "Pay securely at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Payment request",
            "Your payment request from {{ practice.name }}",
            _email(
                "Thank you for choosing {{ practice.name }}. Your account has a balance of {{ amount_due }}.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Payment request",
            "",
            _letter(
                "Thank you for choosing {{ practice.name }}. Your account has a balance of {{ amount_due }}.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
    "statement": {
        "sms": (
            "Statement",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, your statement is ready: {{ amount_due }} "
            "due {{ due_date }}. Pay at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Statement",
            "Your statement from {{ practice.name }} is ready",
            _email(
                "Your statement from {{ practice.name }} is ready. The amount due is {{ amount_due }}, "
                "due {{ due_date }}.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Statement",
            "",
            _letter(
                "This is your statement from {{ practice.name }}. The amount due is {{ amount_due }}, "
                "due {{ due_date }}. The summary above shows your balance by the age of the charges.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
    "reminder": {
        "sms": (
            "Reminder",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, a friendly reminder that your balance is "
            "{{ amount_due }}. Pay at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Reminder",
            "A reminder about your {{ practice.name }} balance",
            _email(
                "This is a friendly reminder that your account with {{ practice.name }} has an open "
                "balance of {{ amount_due }}.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Reminder",
            "",
            _letter(
                "This is a friendly reminder that your account with {{ practice.name }} has an open "
                "balance of {{ amount_due }}.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
    "due": {
        "sms": (
            "Payment due",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, your payment of {{ amount_due }} is due "
            "{{ due_date }}. Pay at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Payment due",
            "Your payment to {{ practice.name }} is due",
            _email(
                "Your payment of {{ amount_due }} to {{ practice.name }} is due {{ due_date }}.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Payment due",
            "",
            _letter(
                "Your payment of {{ amount_due }} to {{ practice.name }} is due {{ due_date }}.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
    "past_due": {
        "sms": (
            "Past due",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, your balance of {{ amount_due }} is past due. "
            "Pay at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Past due",
            "Your {{ practice.name }} balance is past due",
            _email(
                "Our records show that your balance of {{ amount_due }} with {{ practice.name }} is past "
                "due. We would appreciate your payment at your earliest convenience.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Past due",
            "",
            _letter(
                "Our records show that your balance of {{ amount_due }} with {{ practice.name }} is past "
                "due. We would appreciate your payment at your earliest convenience.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
    "final": {
        "sms": (
            "Final notice",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, this is our final reminder of your balance of "
            "{{ amount_due }}. Pay at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Final notice",
            "Final reminder about your {{ practice.name }} balance",
            _email(
                "This is our final reminder that your balance of {{ amount_due }} with {{ practice.name }} "
                "remains open. Please pay it, or call us so that we can work out a plan together.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Final notice",
            "",
            _letter(
                "This is our final reminder that your balance of {{ amount_due }} with {{ practice.name }} "
                "remains open. Please pay it, or call us so that we can work out a plan together.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
    "bill_update": {
        "sms": (
            "Balance update",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, your balance has been updated to "
            "{{ amount_due }}. Details at {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Balance update",
            "Your {{ practice.name }} balance has been updated",
            _email(
                "Your balance with {{ practice.name }} has been updated, for example after an insurance "
                "payment or an adjustment. The amount due is now {{ amount_due }}.",
                _HELP,
                "If you have already paid the new amount, thank you, and please disregard this message.",
            ),
        ),
        "paper": (
            "Balance update",
            "",
            _letter(
                "Your balance with {{ practice.name }} has been updated, for example after an insurance "
                "payment or an adjustment. The amount due is now {{ amount_due }}.",
                _LETTER_PAY,
                f"{_HELP} If you have already sent the new amount, thank you, and please disregard this "
                "letter.",
            ),
        ),
    },
    "resend": {
        "sms": (
            "Resend",
            "",
            "{{ practice.name }}: Hi {{ patient.first_name }}, here is your payment link for your balance of "
            "{{ amount_due }}: {{ pay_url }} Reply STOP to opt out",
        ),
        "email": (
            "Resend",
            "Your payment link from {{ practice.name }}",
            _email(
                "We were unable to reach you earlier, so here is your payment link again. Your balance "
                "with {{ practice.name }} is {{ amount_due }}.",
                _HELP,
                _PAID,
            ),
        ),
        "paper": (
            "Resend",
            "",
            _letter(
                "We were unable to reach you earlier, so we are sending this letter again. Your balance "
                "with {{ practice.name }} is {{ amount_due }}.",
                _LETTER_PAY,
                f"{_HELP} {_PAID_LETTER}",
            ),
        ),
    },
}


_CHANNEL_LABELS = {"sms": "SMS", "email": "email", "paper": "letter"}


def create_defaults(apps, schema_editor):
    Template = apps.get_model("notifications", "Template")
    for kind, channels in DEFAULTS.items():
        for channel, (name, subject, body) in channels.items():
            Template.objects.update_or_create(
                organization=None,
                kind=kind,
                channel=channel,
                defaults={"name": f"{name} — {_CHANNEL_LABELS[channel]}", "subject": subject, "body": body},
            )


def delete_defaults(apps, schema_editor):
    Template = apps.get_model("notifications", "Template")
    Template.objects.filter(organization__isnull=True, kind__in=list(DEFAULTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, delete_defaults)]
