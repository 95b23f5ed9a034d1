"""Settings shared by every environment.

Every value that differs between deployments comes from the environment (SPEC §10 names). With no
environment at all the product runs on SQLite and an embedded filesystem broker, so a newcomer needs
nothing but Python.
"""

from __future__ import annotations

from pathlib import Path

import environ
from csp.constants import NONE, SELF

from dunning_project.email_config import email_config
from dunning_project.env import env_bool, env_list, env_str
from dunning_project.payment_config import payment_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_htmx",
    "anymail",
    "practices",
    "payments",
    "dunning",
    "notifications",
    "pms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the admin shows times in the user's practice's zone (issue 12).
    "practices.middleware.AdminTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Content-Security-Policy (django-csp), everywhere, so the browser tests run under it: no inline script or
# style anywhere (dashboard behaviour is in static/js, the payment page's styles in static/css), no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

ROOT_URLCONF = "dunning_project.urls"
WSGI_APPLICATION = "dunning_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL switches to PostgreSQL; the embedded default is a SQLite file under var/.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker) share the file; wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

LOGIN_URL = "admin:login"

# Celery: REDIS_URL switches to Redis; the embedded default is kombu's filesystem transport under var/.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_DIR = VAR_DIR / "celery" / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Tasks are never scheduled with eta/countdown (SPEC N1), so the visibility timeout only bounds how long
    # a task from a crashed worker waits before another worker runs it.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    for _folder in (CELERY_BROKER_DIR, VAR_DIR / "celery" / "control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "polling_interval": 0.1,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOG_LEVEL = env_str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # A payment-link token never reaches a log (T4): "Not Found: /p/<token>/" and request lines are redacted.
    "filters": {"redact_pay_tokens": {"()": "payments.logfilters.RedactPaymentTokens"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_pay_tokens"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Feed import: largest document accepted by the API (bytes). 100 000 patients is about 60 MB of JSON.
FEED_MAX_BYTES = env.int("FEED_MAX_BYTES", default=256 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FEED_MAX_BYTES

# --- Notifications (SPEC §10). Each provider is on only when its credentials are set; without them the
# channel logs the message and marks it sent, so the embedded default works offline.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
# Default: Twilio's own API. Tests and benchmarks point the real SDK at a local fake server through it.
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_ENABLED = bool(TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)
# K4, N2: true (the default, as Twilio ships): Twilio's own opt-out handling (its STOP filtering or a
# Messaging Service's Advanced Opt-Out) sends the STOP/START/HELP replies and we answer inbound keywords with
# empty TwiML. false: Twilio's replies are off for our senders and we send exactly one reply ourselves.
TWILIO_ADVANCED_OPT_OUT = env_bool("TWILIO_ADVANCED_OPT_OUT", default=True)

# N3: the ESP and its own variables (dunning_project/email_config.py); a chosen ESP without its credentials
# stops start-up here. With nothing set, email is off and the channel logs each message (§10).
_EMAIL = email_config()
ANYMAIL_ESP = _EMAIL.esp
EMAIL_ENABLED = _EMAIL.enabled
EMAIL_BACKEND = _EMAIL.backend
ANYMAIL = _EMAIL.anymail
ANYMAIL_WEBHOOK_SECRET = str(ANYMAIL.get("WEBHOOK_SECRET", ""))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="billing@localhost")

# --- PMS connectors (SPEC §13.2). Each organization's connection (Open Dental's base URL, keys, sync time) is
# an org_settings key; these are the machine's. The developer and customer keys are stored as Fernet tokens
# under PMS_KEYS_FERNET_KEY (one key, or a comma list to rotate: the first encrypts, all decrypt); without it
# no key can be stored (docs/operations.md, Open Dental).
PMS_KEYS_FERNET_KEY = env_str("PMS_KEYS_FERNET_KEY")
PMS_HTTP_TIMEOUT = env.float("PMS_HTTP_TIMEOUT", default=60.0)  # Open Dental stops a request at 60 s itself
# Connections the per-family requests of a sync use at once (aging, payment plans); 1 for strictly serial.
PMS_CONCURRENCY = env.int("PMS_CONCURRENCY", default=4)

# --- Payments (SPEC §9, §14): the processor behind the payment page's hosted checkout, ``sandbox`` (the embedded
# default, offline) or ``stripe`` with its variables; dunning_project/payment_config.py reads and checks them.
_PAYMENTS = payment_config()
PAYMENT_PROCESSOR = _PAYMENTS.processor
STRIPE_SECRET_KEY = _PAYMENTS.stripe_secret_key
STRIPE_WEBHOOK_SECRET = _PAYMENTS.stripe_webhook_secret
# Default: Stripe's own API. Tests and benchmarks point the real SDK at a local fake server through it.
STRIPE_API_BASE_URL = _PAYMENTS.stripe_api_base_url
