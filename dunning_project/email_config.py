"""Email configuration from the environment (SPEC N3, §10, T3): which anymail ESP, and its own variables.

``ANYMAIL_ESP`` names the ESP by anymail's module name (``postmark``, the default, ``sendgrid``, ``mailgun``,
``brevo``, ``amazon_ses``, ``mailjet``, or any other anymail ESP with a tracking webhook). Each ESP is
configured by the variables anymail itself reads, under the ESP's own prefix (``POSTMARK_SERVER_TOKEN``,
``MAILGUN_API_KEY``, …); they are copied into ``settings.ANYMAIL``.

- Nothing set at all (no ``ANYMAIL_ESP`` and none of the default ESP's variables): email is off, and the
  channel writes each message to the log and marks it sent, so the embedded default works offline (§10).
- Otherwise the ESP must be known and every variable it needs must be set, or start-up fails with one
  line that names what is missing; a message never waits in ``sending`` for a credential that is not there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Esp:
    """What one ESP needs. Names are anymail's setting names, which are also our environment variables."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # boolean settings anymail reads (given as true/false in the environment)
    flags: tuple[str, ...] = ()


# The ESPs anymail 15 sends through and receives tracking webhooks from (anymail.urls). Scaleway is left out:
# anymail has no tracking webhook for it, and N3 wants every ESP's bounces and complaints.
ESPS: dict[str, Esp] = {
    "postmark": Esp(
        required=("POSTMARK_SERVER_TOKEN",), optional=("POSTMARK_MESSAGE_STREAM", "POSTMARK_API_URL")
    ),
    "sendgrid": Esp(required=("SENDGRID_API_KEY",), optional=("SENDGRID_API_URL",)),
    # The webhook signing key is the "HTTP webhook signing key" of Mailgun's dashboard, not the API key:
    # anymail falls back to the API key, which Mailgun does not sign with, so every event would be refused.
    "mailgun": Esp(
        required=("MAILGUN_API_KEY", "MAILGUN_WEBHOOK_SIGNING_KEY"),
        optional=("MAILGUN_SENDER_DOMAIN", "MAILGUN_API_URL"),
    ),
    "brevo": Esp(required=("BREVO_API_KEY",), optional=("BREVO_API_URL",)),
    # Credentials come from boto3's own chain (``amazon_ses_credentials_problem``); anymail's prefix is
    # AMAZON_SES_. The configuration set is the one whose event destination posts to our SNS topic.
    "amazon_ses": Esp(required=(), optional=("AMAZON_SES_CONFIGURATION_SET_NAME",)),
    "mailjet": Esp(required=("MAILJET_API_KEY", "MAILJET_SECRET_KEY"), optional=("MAILJET_API_URL",)),
    "mailersend": Esp(required=("MAILERSEND_API_TOKEN", "MAILERSEND_SIGNING_SECRET")),
    "mailtrap": Esp(required=("MAILTRAP_API_TOKEN",)),
    "mandrill": Esp(
        required=("MANDRILL_API_KEY", "MANDRILL_WEBHOOK_KEY"), optional=("MANDRILL_WEBHOOK_URL",)
    ),
    "postal": Esp(required=("POSTAL_API_KEY", "POSTAL_API_URL", "POSTAL_WEBHOOK_KEY")),
    "resend": Esp(required=("RESEND_API_KEY", "RESEND_SIGNING_SECRET")),
    "sparkpost": Esp(required=("SPARKPOST_API_KEY",), optional=("SPARKPOST_API_URL",)),
    "unisender_go": Esp(required=("UNISENDER_GO_API_KEY", "UNISENDER_GO_API_URL")),
}
DEFAULT_ESP = "postmark"
# boto3's credential chain, as far as it can be seen without asking the network: keys, a profile, web
# identity (EKS), a container's credentials (ECS). On EC2 an instance role is said with
# AMAZON_SES_INSTANCE_ROLE=true, because checking the metadata service at start-up would need the network.
_AWS_CREDENTIAL_SOURCES = (
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True)
class EmailConfig:
    esp: str
    enabled: bool
    backend: str
    anymail: dict[str, object]


def _value(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def amazon_ses_credentials_problem(environ: Mapping[str, str]) -> str:
    """What is missing for Amazon SES, or '' when a region and a credential source are there."""
    if not (_value(environ, "AWS_REGION") or _value(environ, "AWS_DEFAULT_REGION")):
        return "AWS_REGION (or AWS_DEFAULT_REGION)"
    has_key = bool(_value(environ, "AWS_ACCESS_KEY_ID"))
    if has_key != bool(_value(environ, "AWS_SECRET_ACCESS_KEY")):
        return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together"
    if has_key or any(_value(environ, name) for name in _AWS_CREDENTIAL_SOURCES):
        return ""
    if _value(environ, "AMAZON_SES_INSTANCE_ROLE").lower() in ("true", "1"):
        return ""
    return (
        "AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, "
        "or AMAZON_SES_INSTANCE_ROLE=true on an instance with a role)"
    )


def email_config(environ: Mapping[str, str] | None = None) -> EmailConfig:
    """The email settings ``environ`` (default: the process environment) describes; ImproperlyConfigured
    with one clear line when an ESP is chosen but cannot work."""
    environ = os.environ if environ is None else environ
    chosen = _value(environ, "ANYMAIL_ESP").lower().replace("-", "_")
    esp_name = chosen or DEFAULT_ESP
    if esp_name not in ESPS:
        raise ImproperlyConfigured(
            f"ANYMAIL_ESP={chosen!r} is not an ESP this product supports; use one of {', '.join(sorted(ESPS))}"
        )
    esp = ESPS[esp_name]
    names = esp.required + esp.optional
    given = {name: _value(environ, name) for name in names if _value(environ, name)}
    backend = f"anymail.backends.{esp_name}.EmailBackend"
    if not chosen and not given:
        # The embedded default: no ESP at all. The channel logs and marks sent (§10).
        return EmailConfig(esp=esp_name, enabled=False, backend=backend, anymail={})
    missing = [name for name in esp.required if name not in given]
    if esp_name == "amazon_ses":
        problem = amazon_ses_credentials_problem(environ)
        if problem:
            missing.append(problem)
    if missing:
        raise ImproperlyConfigured(
            f"ANYMAIL_ESP={esp_name} needs {', '.join(missing)} (docs/operations.md, Email)"
        )
    anymail: dict[str, object] = dict(given)
    if esp_name == "amazon_ses":
        region = _value(environ, "AWS_REGION") or _value(environ, "AWS_DEFAULT_REGION")
        anymail["AMAZON_SES_CLIENT_PARAMS"] = {"region_name": region}
    secret = _value(environ, "ANYMAIL_WEBHOOK_SECRET")
    if secret:
        if ":" not in secret or secret.startswith(":") or secret.endswith(":"):
            raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be user:password (HTTP basic auth)")
        anymail["WEBHOOK_SECRET"] = secret
    return EmailConfig(esp=esp_name, enabled=True, backend=backend, anymail=anymail)
