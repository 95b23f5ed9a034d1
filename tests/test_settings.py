"""Configuration: strict booleans, the embedded default, production refusing unsafe settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dunning_project.email_config import email_config
from dunning_project.env import env_bool
from dunning_project.payment_config import payment_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)]
)
def test_env_bool_accepts_true_and_false(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG", default=not expected) is expected


@pytest.mark.parametrize("raw", ["yes", "on", "ture", "2"])
def test_env_bool_refuses_anything_else(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)
    with pytest.raises(ImproperlyConfigured):
        env_bool("SOME_FLAG", default=False)


def _fresh_environment() -> dict[str, str]:
    """This process's environment without the product's configuration: a machine nobody has configured."""
    return {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ANYMAIL_ESP", "ANYMAIL_WEBHOOK_SECRET"}
        and not k.startswith(("POSTMARK_", "AWS_", "STRIPE_", "PAYMENT_"))
    }


def _settings(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = _fresh_environment()
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": module, "VAR_DIR": "/tmp/dunning-settings-test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_no_environment_the_product_runs_on_sqlite_and_the_filesystem_broker():
    result = _settings("dunning_project.settings.local", {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


def test_database_url_and_redis_url_switch_to_postgresql_and_redis():
    result = _settings(
        "dunning_project.settings.local",
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/3"},
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/3"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "true", "SECRET_KEY": "x" * 50}, "DEBUG must be false"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "insecure-local-development-key-do-not-use-in-production"}, "SECRET_KEY must be set"),
        ({"DEBUG": "maybe", "SECRET_KEY": "x" * 50}, "DEBUG must be 'true' or 'false'"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(env, message):
    result = _settings("dunning_project.settings.production", env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_a_real_secret_key():
    result = _settings("dunning_project.settings.production", {"SECRET_KEY": "k" * 50, "DEBUG": "false"})
    assert result.returncode == 0, result.stderr


# --- email (N3, T3) ----------------------------------------------------------------------------------------


def test_with_nothing_set_email_is_off_and_the_channel_logs():
    config = email_config({})
    assert (config.esp, config.enabled) == ("postmark", False)


@pytest.mark.parametrize(
    ("env", "backend", "expected"),
    [
        ({"POSTMARK_SERVER_TOKEN": "t"}, "postmark", {"POSTMARK_SERVER_TOKEN": "t"}),
        ({"ANYMAIL_ESP": "sendgrid", "SENDGRID_API_KEY": "SG.k"}, "sendgrid", {"SENDGRID_API_KEY": "SG.k"}),
        (
            {"ANYMAIL_ESP": "mailgun", "MAILGUN_API_KEY": "k", "MAILGUN_WEBHOOK_SIGNING_KEY": "s",
             "MAILGUN_API_URL": "https://api.eu.mailgun.net/v3"},
            "mailgun",
            {"MAILGUN_API_KEY": "k", "MAILGUN_WEBHOOK_SIGNING_KEY": "s", "MAILGUN_API_URL": "https://api.eu.mailgun.net/v3"},
        ),
        ({"ANYMAIL_ESP": "brevo", "BREVO_API_KEY": "x"}, "brevo", {"BREVO_API_KEY": "x"}),
        (
            {"ANYMAIL_ESP": "amazon_ses", "AWS_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"},
            "amazon_ses",
            {"AMAZON_SES_CLIENT_PARAMS": {"region_name": "us-west-2"}},
        ),
        (
            {"ANYMAIL_ESP": "mailjet", "MAILJET_API_KEY": "p", "MAILJET_SECRET_KEY": "s"},
            "mailjet",
            {"MAILJET_API_KEY": "p", "MAILJET_SECRET_KEY": "s"},
        ),
    ],
)  # fmt: skip
def test_each_esp_is_configured_by_its_own_variables(env, backend, expected):
    config = email_config({**env, "ANYMAIL_WEBHOOK_SECRET": "hook:secret"})
    assert config.enabled and config.backend == f"anymail.backends.{backend}.EmailBackend"
    assert config.anymail == {**expected, "WEBHOOK_SECRET": "hook:secret"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANYMAIL_ESP": "brevo"}, "ANYMAIL_ESP=brevo needs BREVO_API_KEY"),
        ({"ANYMAIL_ESP": "postmark"}, "ANYMAIL_ESP=postmark needs POSTMARK_SERVER_TOKEN"),
        ({"ANYMAIL_ESP": "mailgun", "MAILGUN_API_KEY": "k"}, "needs MAILGUN_WEBHOOK_SIGNING_KEY"),
        ({"ANYMAIL_ESP": "mailjet", "MAILJET_API_KEY": "p"}, "needs MAILJET_SECRET_KEY"),
        ({"ANYMAIL_ESP": "amazon_ses", "AWS_REGION": "us-east-1"}, "needs AWS credentials"),
        ({"ANYMAIL_ESP": "amazon_ses", "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"}, "AWS_REGION"),
        ({"ANYMAIL_ESP": "sendgird"}, "ANYMAIL_ESP='sendgird' is not an ESP"),
        ({"POSTMARK_SERVER_TOKEN": "t", "ANYMAIL_WEBHOOK_SECRET": "nocolon"}, "must be user:password"),
    ],
)
def test_a_chosen_esp_without_its_credentials_is_a_clear_start_up_error(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        email_config(env)


def test_a_missing_esp_credential_stops_the_process_at_start_up():
    result = _settings("dunning_project.settings.local", {"ANYMAIL_ESP": "brevo"})
    assert result.returncode != 0
    assert "ANYMAIL_ESP=brevo needs BREVO_API_KEY" in result.stderr


def test_production_refuses_an_esp_without_the_webhook_secret():
    env = {"SECRET_KEY": "k" * 50, "ANYMAIL_ESP": "postmark", "POSTMARK_SERVER_TOKEN": "t"}
    result = _settings("dunning_project.settings.production", env)
    assert result.returncode != 0
    assert "ANYMAIL_WEBHOOK_SECRET (user:password) must be set" in result.stderr
    ok = _settings("dunning_project.settings.production", {**env, "ANYMAIL_WEBHOOK_SECRET": "hook:s3cret"})
    assert ok.returncode == 0, ok.stderr


# --- payment processor (§10, §14, T3) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("sandbox", "", "https://api.stripe.com")),
        ({"PAYMENT_PROCESSOR": "Stripe", "STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_API_BASE_URL": "http://127.0.0.1:9/"},
         ("stripe", "sk_test_1", "http://127.0.0.1:9")),
    ],
)  # fmt: skip
def test_the_processor_and_stripes_variables_come_from_the_environment(env, expected):
    config = payment_config(env)
    assert (config.processor, config.stripe_secret_key, config.stripe_api_base_url) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAYMENT_PROCESSOR": "square"}, "PAYMENT_PROCESSOR must be one of sandbox, stripe, got 'square'"),
        ({"PAYMENT_PROCESSOR": "stripe"}, "PAYMENT_PROCESSOR=stripe needs STRIPE_SECRET_KEY"),
        ({"PAYMENT_GATEWAY": "payments.gateway.SandboxGateway"}, "PAYMENT_GATEWAY is no longer read"),
    ],
)
def test_a_processor_without_what_it_needs_is_a_clear_start_up_error(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        payment_config(env)
    result = _settings("dunning_project.settings.local", env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_stripe_without_its_webhook_secret():
    """T3: a processor without the means to authenticate its webhook never starts in production."""
    env = {"SECRET_KEY": "k" * 50, "PAYMENT_PROCESSOR": "stripe", "STRIPE_SECRET_KEY": "sk_live_1"}
    result = _settings("dunning_project.settings.production", env)
    assert result.returncode != 0
    assert "STRIPE_WEBHOOK_SECRET must be set when PAYMENT_PROCESSOR=stripe" in result.stderr
    ok = _settings("dunning_project.settings.production", {**env, "STRIPE_WEBHOOK_SECRET": "whsec_1"})
    assert ok.returncode == 0, ok.stderr


def test_the_embedded_default_migrates_and_loads_the_demo_on_sqlite(tmp_path):
    """``make run``'s first steps on a fresh machine (no DATABASE_URL): every migration, data steps included,
    applies on SQLite, and the demo loads. The suite itself runs on PostgreSQL in CI, where a statement that
    only PostgreSQL knows (0008 once had ``SET CONSTRAINTS``) passes unnoticed."""
    env = {
        **_fresh_environment(),
        "VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "dunning_project.settings.local",
    }
    for command in (["migrate", "--noinput", "-v", "0"], ["setup_periodic_tasks"], ["seed_demo"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    # What the person running `make run` reads: the demo logins, in the database just made.
    assert "frontdesk" in result.stdout and "demo-pass-2026" in result.stdout, result.stdout
    assert (tmp_path / "db.sqlite3").stat().st_size > 0
